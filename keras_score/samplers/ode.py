"""Probability-flow ODE solvers (Song et al. 2021, Sec. 4.3; Karras et al. 2022, Alg. 1)."""

import keras

from keras_score.samplers.base import Sampler, probability_flow


@keras.saving.register_keras_serializable(package="keras_score")
class Euler(Sampler):
    """Explicit Euler on the probability-flow ODE: x ← x + (t_next − t)·dx/dt. First order."""

    name = "euler"

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        d_cur = probability_flow(schedule, x, t_cur, denoise(x, t_cur))
        return x + (t_next - t_cur) * d_cur, state


@keras.saving.register_keras_serializable(package="keras_score")
class Heun(Sampler):
    """Heun's 2nd-order method on the probability-flow ODE (Karras et al. 2022, Alg. 1).

    The last step is an Euler step when it lands at σ = 0, where the
    denoiser cannot be evaluated, so N steps cost 2N − 1 evaluations.

    Example:
    >>> x = Heun().sample(denoise, x_T, schedule, steps=18)
    """

    name = "heun"

    def num_function_evals(self, steps, ends_at_zero=True):
        return 2 * steps - int(ends_at_zero)

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        h = t_next - t_cur
        d_cur = probability_flow(schedule, x, t_cur, denoise(x, t_cur))
        x_next = x + h * d_cur
        if final:
            return x_next, state
        # Second-order correction (Alg. 1, lines 9-11).
        d_prime = probability_flow(schedule, x_next, t_next, denoise(x_next, t_next))
        return x + h * (0.5 * d_cur + 0.5 * d_prime), state
