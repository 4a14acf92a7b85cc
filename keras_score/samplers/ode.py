"""Probability-flow ODE solvers (Song et al. 2021, Sec. 4.3; Karras et al. 2022, Alg. 1)."""

import keras
from keras import ops

from keras_score import backend
from keras_score.guidance import base as guidance_lib
from keras_score.samplers import dormand_prince, time_grids
from keras_score.samplers.base import Sampler, guided_denoiser, probability_flow
from keras_score.sde import expand_to
from keras_score.validation import check_int, check_positive_float


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
        def dx_dt(x, t):
            return probability_flow(schedule, x, t, denoise(x, t))

        if final:
            return x + (t_next - t_cur) * dx_dt(x, t_cur), state
        return heun_step(dx_dt, x, t_cur, t_next), state


def heun_step(dy_dt, y, t, t_next):
    """One step of Heun's method from (t, y) to t_next (either direction in time).

    y₁ = y + h·k₁ (Euler), then y + h·(k₁ + k₂)/2 with k₁ = F(t, y),
    k₂ = F(t_next, y₁), h = t_next − t (Karras et al. 2022, Alg. 1, lines 5-11).

    Args:
        dy_dt: callable `dy_dt(y, t)`.
        y: the state at `t`.
        t, t_next: scalar tensors.

    Returns:
        The state at `t_next`.
    """
    h = t_next - t
    d_cur = dy_dt(y, t)
    d_prime = dy_dt(y + h * d_cur, t_next)
    return y + h * (0.5 * d_cur + 0.5 * d_prime)


def denoising_step(denoise, schedule, x, t_cur, t_next):
    """x ← α(t_next)·D(x, t_cur): Euler in σ̃ = σ/α for a step that lands where σ = 0.

    On dx̃/dσ̃ = (x̃ − D)/σ̃ with x̃ = x/α (Karras et al. 2022, Eq. 4), an Euler
    step to σ̃ = 0 gives x̃ = D exactly; it never evaluates the denoiser at
    σ = 0, and unlike Euler in t it stays accurate where σ(t) → 0 like √t (VP).
    """
    return expand_to(schedule.alpha(t_next), x) * denoise(x, t_cur)


@keras.saving.register_keras_serializable(package="keras_score")
class RK4(Sampler):
    """The classical 4th-order Runge–Kutta method on the probability-flow ODE in t.

    k₁ = F(t, x), k₂ = F(t + h/2, x + h/2·k₁), k₃ = F(t + h/2, x + h/2·k₂),
    k₄ = F(t + h, x + h·k₃), x ← x + h/6·(k₁ + 2k₂ + 2k₃ + k₄), with
    F = dx/dt of Song et al. 2021, Eq. 13 and h = t_next − t < 0. k₄ would
    evaluate the denoiser at σ = 0 on a last step that lands there, so that
    step is the first-order `denoising_step` x ← α·D(x, t_{N−1}) instead: N
    steps cost 4N − 3 evaluations (4N when the grid ends at σ > 0).

    Example:
    >>> x = RK4().sample(denoise, x_T, schedule, steps=8)  # 29 evaluations

    Reference: Kutta, "Beitrag zur näherungsweisen Integration totaler
    Differentialgleichungen", 1901; Hairer, Nørsett & Wanner, "Solving Ordinary
    Differential Equations I", 1993, Sec. II.1.
    """

    name = "rk4"

    def num_function_evals(self, steps, ends_at_zero=True):
        return 4 * steps - 3 * int(ends_at_zero)

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        if final:
            return denoising_step(denoise, schedule, x, t_cur, t_next), state

        def dx_dt(x, t):
            return probability_flow(schedule, x, t, denoise(x, t))

        return rk4_step(dx_dt, x, t_cur, t_next), state


def rk4_step(dy_dt, y, t, t_next):
    """One step of the classical 4th-order Runge–Kutta method from (t, y) to t_next.

    Args:
        dy_dt: callable `dy_dt(y, t)`.
        y: the state at `t`.
        t, t_next: scalar tensors (either direction in time).

    Returns:
        The state at `t_next`.
    """
    h = t_next - t
    t_mid = t + 0.5 * h
    k1 = dy_dt(y, t)
    k2 = dy_dt(y + 0.5 * h * k1, t_mid)
    k3 = dy_dt(y + 0.5 * h * k2, t_mid)
    k4 = dy_dt(y + h * k3, t_next)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


@keras.saving.register_keras_serializable(package="keras_score")
class RK45(Sampler):
    """Adaptive Dormand–Prince 5(4) on the probability-flow ODE in t, inside the compiled graph.

    The reference solver of the ODE samplers (as score_sde's RK45 with
    rtol = atol = 1e-5), run by `keras_score.samplers.dormand_prince.solve`,
    the driver `keras_score.likelihood.log_prob` uses too. Each attempted
    step costs 6 evaluations (the 7th stage is the first of the next step);
    its error is estimated by the embedded 4th-order solution, measured per
    sample as ‖e/(atol + rtol·max(|x|, |x_new|))‖_RMS (Hairer et al.,
    Eq. II.4.11) and the step is accepted when the largest over the batch is
    ≤ 1; the next step is h·min(10, max(0.2, 0.9·err^(−1/5))). The whole
    integration is one `keras.ops.while_loop`, compiled with the rest (eager
    on PyTorch).

    The ODE is integrated from the grid's first time, stopping exactly at
    every grid time (for `return_trajectory`), to its last time with σ > 0;
    where the grid ends at σ = 0 the last step is the `denoising_step`
    x ← α·D(x, t_{N−1}), the limit of the ODE's solution over [0, t_{N−1}]
    taken by Karras et al.'s and DPM-Solver's last steps too. Without
    `steps`, the grid is [t_max, t_min] (and 0 where σ(0) = 0).

    The number of evaluations is known only once the run is over: it comes
    back with the samples (`sample(..., return_num_function_evals=True)`, or
    the result of `compile`'s run), and `num_function_evals` raises a
    `RuntimeError`. A run that does not reach the end within `max_steps`
    steps raises a `RuntimeError`.

    Args:
        rtol: relative tolerance, > 0; with float32 keep it ≥ 1e-6.
        atol: absolute tolerance, > 0.
        max_steps: largest number of attempted steps (accepted or rejected).
        first_step: size of the first step in t; None chooses it from the
            first two derivatives (Hairer et al., Sec. II.4, one more evaluation).

    Example:
    >>> x, nfe = RK45(rtol=1e-5, atol=1e-5).sample(denoise, x_T, schedule, return_num_function_evals=True)

    Reference: Dormand & Prince, "A family of embedded Runge-Kutta formulae",
    J. Comput. Appl. Math. 6, 1980; Hairer, Nørsett & Wanner, "Solving
    Ordinary Differential Equations I", 1993, Sec. II.4 and Table II.5.2;
    Song et al. 2021, Sec. 4.3 (probability-flow ODE solved with RK45).
    """

    name = "rk45"

    def __init__(self, rtol=1e-5, atol=1e-5, max_steps=10_000, first_step=None):
        self.rtol = check_positive_float(rtol, "rtol")
        self.atol = check_positive_float(atol, "atol")
        self.max_steps = check_int(max_steps, "max_steps", minimum=1)
        self.first_step = None if first_step is None else check_positive_float(first_step, "first_step")

    def num_function_evals(self, steps=None, ends_at_zero=True):
        """Raises a `RuntimeError`: the step control, not the grid, sets the number of evaluations."""
        raise RuntimeError(
            "RK45 is adaptive: its number of evaluations is known only after a run. Read it from the run's "
            'result, `result["num_function_evals"]` of `compile`\'s run or `sample(..., return_num_function_evals=True)`.'
        )

    def make_time_grid(self, schedule, steps, time_grid):
        """As `Sampler.make_time_grid`; without `steps` the ODE is solved from t_max to t_min (then 0)."""
        if steps is None and isinstance(time_grid, str):
            time_grid = [schedule.t_max, schedule.t_min] + [0.0] * time_grids.ends_at_zero(schedule)
        return super().make_time_grid(schedule, steps, time_grid)

    def compile(self, denoise, schedule, zero_end, return_trajectory=False, variables=(), guidance=None):
        """Returns `run(x_init, times, seed, conditions=None) -> dict`, as `Sampler.compile`.

        "num_function_evals" of the result counts the evaluations of this
        run. A guidance that projects the state (inpainting) is applied to
        the result of every attempted step (kept where the step is
        accepted), where the derivative is then evaluated again (one more
        evaluation per attempt), and at the end. `run` raises a
        `RuntimeError` when `max_steps` ran out before the end of the grid.
        """
        guidance = guidance_lib.get(guidance)

        def integrate(x, times, seed, conditions):
            guided, project = guided_denoiser(denoise, schedule, guidance, conditions, seed)

            def dx_dt(x, t):
                return probability_flow(schedule, x, t, guided(x, t))

            last = times.shape[0] - 1 - int(zero_end)  # index of the last time with σ > 0
            solution = dormand_prince.solve(
                dx_dt,
                project(x, times[0], 0),
                times[: last + 1],
                self.rtol,
                self.atol,
                self.max_steps,
                self.first_step,
                project if guidance.projects else None,
                return_trajectory,
            )
            x, nfe = solution["y"], solution["num_function_evals"]
            if zero_end:
                x = denoising_step(guided, schedule, x, times[last], times[last + 1])
                nfe = nfe + 1
            x = project(x, None, 0)
            result = {"x": x, "num_function_evals": nfe}
            if return_trajectory:
                trajectory = solution["trajectory"]
                result["trajectory"] = ops.concatenate([trajectory, x[None]], axis=0) if zero_end else trajectory
            return result, {key: solution[key] for key in ("next_index", "t")}

        compiled = backend.compile_function(integrate, variables)

        def run(x, times, seed=0, conditions=None):  # `seed` only seeds a guidance's noise.
            seed = ops.convert_to_tensor(seed, dtype="int32")
            result, reached = compiled(x, times, seed, conditions or {})
            dormand_prince.check_solved(reached, times[: times.shape[0] - int(zero_end)], self.max_steps)
            return result

        return run

    def get_config(self):
        return {"rtol": self.rtol, "atol": self.atol, "max_steps": self.max_steps, "first_step": self.first_step}
