"""The `Sampler` base class: one compiled loop, subclasses write one step.

A sampler integrates from t = t_max to the end of a time grid, given any
denoiser `denoise(x, t) ≈ E[x₀ | x_t = x]` (a trained model or an exact
mixture's) and its `NoiseSchedule`. The loop runs inside `keras.ops.fori_loop`
and is compiled as a whole by `keras_score.backend.compile_function`, so JAX
and TensorFlow dispatch once per call, not once per step.
"""

import keras
import numpy as np
from keras import ops

from keras_score import backend
from keras_score.registry import Configurable
from keras_score.samplers import time_grids
from keras_score.sde import expand_to

_NOISE_DRAWS_PER_STEP = 16


def score_from_denoised(schedule, x, t, denoised):
    """∇log p_t(x) = (α·D − x)/σ²."""
    alpha = expand_to(schedule.alpha(t), x)
    sigma = expand_to(schedule.sigma(t), x)
    return (alpha * denoised - x) / sigma**2


def probability_flow(schedule, x, t, denoised):
    """dx/dt = f·x − ½·g²·∇log p_t(x) (Song et al. 2021, Eq. 13)."""
    f = expand_to(schedule.drift_coefficient(t), x)
    g2 = expand_to(schedule.diffusion_squared(t), x)
    return f * x - 0.5 * g2 * score_from_denoised(schedule, x, t, denoised)


def denoiser_from_score(score_fn, schedule):
    """Turns a score function s(x, t) into the denoiser D = (x + σ²·s)/α."""

    def denoise(x, t):
        alpha = expand_to(schedule.alpha(t), x)
        sigma = expand_to(schedule.sigma(t), x)
        return (x + sigma**2 * score_fn(x, t)) / alpha

    return denoise


def initial_noise(num_samples, shape, seed):
    """Standard normal noise whose row i depends only on (seed, i), not on `num_samples`.

    Drawn on the host with NumPy, so it is also identical on every backend.

    Args:
        num_samples: number of rows.
        shape: shape of one sample.
        seed: non-negative integer.

    Returns:
        float32 numpy array of shape (num_samples, *shape).
    """
    rows = [np.random.default_rng([seed, i]).standard_normal(shape) for i in range(num_samples)]
    return np.stack(rows).astype("float32") if rows else np.zeros((0, *shape), "float32")


class Sampler(Configurable):
    """Base class of samplers.

    Subclasses implement `step` (and `initial_state` when they carry
    information between steps, like multistep methods) and
    `num_function_evals`.

    Example:
    >>> from keras_score.samplers import Heun
    >>> from keras_score.schedules import EDMSchedule
    >>> schedule = EDMSchedule()
    >>> x = Heun().sample(lambda x, t: 0.0 * x, 80.0 * ops.ones((4, 2)), schedule, steps=8)
    """

    name = None
    stochastic = False

    def num_function_evals(self, steps, ends_at_zero=True):
        """Number of denoiser calls of a `steps`-step run."""
        return steps

    def initial_state(self, x, times):
        """Tensors carried from step to step (a tuple; empty by default).

        Args:
            x: the initial state.
            times: the whole time grid, shape (N + 1,).
        """
        return ()

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        """One step from `t_cur` to `t_next`.

        Args:
            denoise: the denoiser `denoise(x, t)`.
            schedule: the `NoiseSchedule`.
            x: the current state, at time `t_cur`.
            t_cur, t_next: scalar tensors, t_next < t_cur.
            state: the tuple returned by the previous step.
            noise: `noise(j=0)` returns fresh standard normal noise shaped like x.
            final: None for all but the last step; for the last step, True if
                it lands where σ = 0 and False otherwise.

        Returns:
            Tuple (x_next, state).
        """
        raise NotImplementedError

    def sample(
        self,
        denoise,
        x_init,
        schedule,
        steps=None,
        time_grid="karras",
        seed=0,
        return_trajectory=False,
        variables=(),
    ):
        """Integrates from `x_init` at t_max to the end of the time grid.

        Args:
            denoise: callable `denoise(x, t) -> E[x₀ | x_t = x]`; use
                `denoiser_from_score` to pass a score function.
            x_init: initial state at t_max, e.g. prior noise, shape (n, ...).
            schedule: the `NoiseSchedule` the denoiser belongs to.
            steps: number of steps N (not needed when `time_grid` is a list).
            time_grid: "karras", "uniform", "log_snr" or a decreasing list of times.
            seed: integer seed of the noise that stochastic samplers add.
            return_trajectory: also return the states at every grid time.
            variables: Keras variables read by `denoise` (`model.variables`),
                needed to compile stateless on JAX.

        Returns:
            The final samples, or `(samples, trajectory)` with the trajectory of
            shape (N + 1, n, ...).
        """
        times = time_grids.time_grid(schedule, steps, time_grid)
        zero_end = time_grids.lands_on_data(schedule, times)
        run = self.compile(denoise, schedule, zero_end, return_trajectory, variables)
        x_init = ops.convert_to_tensor(x_init, dtype=keras.config.floatx())
        seed = ops.convert_to_tensor(int(seed), dtype="int32")
        return run(x_init, ops.convert_to_tensor(times, dtype=keras.config.floatx()), seed)

    def compile(self, denoise, schedule, zero_end, return_trajectory=False, variables=()):
        """Returns the compiled `run(x_init, times, seed)` of this sampler."""

        def run(x, times, seed):
            num_steps = times.shape[0] - 1

            def advance(i, x, state, trajectory, final):
                def noise(j=0):
                    if not 0 <= j < _NOISE_DRAWS_PER_STEP:
                        raise ValueError(
                            f"A sampler step may draw at most {_NOISE_DRAWS_PER_STEP} noise tensors; "
                            f"draw {j} was requested."
                        )
                    counter = i * _NOISE_DRAWS_PER_STEP + j
                    return backend.stateless_normal(ops.shape(x), seed, counter, x.dtype)

                x, state = self.step(denoise, schedule, x, times[i], times[i + 1], state, noise, final)
                if return_trajectory:
                    trajectory = ops.slice_update(
                        trajectory, (i + 1,) + (0,) * len(x.shape), x[None]
                    )
                return x, state, trajectory

            trajectory = ()
            if return_trajectory:
                trajectory = ops.zeros((num_steps + 1,) + tuple(x.shape), dtype=x.dtype)
                trajectory = ops.slice_update(trajectory, (0,) * (len(x.shape) + 1), x[None])
            carry = (x, self.initial_state(x, times), trajectory)
            carry = ops.fori_loop(
                0, num_steps - 1, lambda i, c: advance(i, *c, final=None), carry
            )
            x, _, trajectory = advance(num_steps - 1, *carry, final=zero_end)
            return (x, trajectory) if return_trajectory else x

        return backend.compile_function(run, variables)


