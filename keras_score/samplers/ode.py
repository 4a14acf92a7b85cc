"""Probability-flow ODE solvers (Song et al. 2021, Sec. 4.3; Karras et al. 2022, Alg. 1)."""

import keras
from keras import ops

from keras_score import backend
from keras_score.guidance import base as guidance_lib
from keras_score.samplers import time_grids
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


# Dormand & Prince 1980, RK5(4)7M (Hairer et al., Table II.5.2): nodes c, coefficients a (the last
# row, the 5th-order weights, is the first same as last: its stage k₇ is k₁ of
# the next step) and e = b − b̂, the 5th- minus the embedded 4th-order weights.
_DOPRI_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_DOPRI_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DOPRI_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


def _tableau_tensor(rows):
    """The rows of coefficients as a (len(rows), 7) tensor, zero-padded."""
    padded = [tuple(row) + (0.0,) * (len(_DOPRI_C) - len(row)) for row in rows]
    return ops.convert_to_tensor(padded, dtype=keras.config.floatx())


def error_norm(v):
    """The largest per-sample RMS norm, so that every sample meets the tolerance."""
    axes = tuple(range(1, len(v.shape)))
    return ops.max(ops.sqrt(ops.mean(ops.square(v), axis=axes)))


def dormand_prince_step(dy_dt, y, t, h, d_cur):
    """One Dormand–Prince 5(4) step from (t, y) to t + h, with its error estimate.

    Args:
        dy_dt: callable `dy_dt(y, t)`.
        y: the state at `t`.
        t: scalar tensor.
        h: the step, a scalar tensor of either sign.
        d_cur: `dy_dt(y, t)` (the last stage of the previous step: FSAL).

    Returns:
        Tuple (y_new, error, d_new): the 5th-order solution, its difference
        from the embedded 4th-order one and `dy_dt(y_new, t + h)`; 6 calls of `dy_dt`.
    """
    nodes = ops.convert_to_tensor(_DOPRI_C, dtype=keras.config.floatx())
    coefficients = _tableau_tensor(_DOPRI_A)
    zeros = (0,) * len(y.shape)

    def stage(i, stages):
        increment = ops.tensordot(ops.take(coefficients, i, axis=0), stages, axes=1)
        k = dy_dt(y + h * increment, t + ops.take(nodes, i) * h)
        return ops.slice_update(stages, (i,) + zeros, ops.cast(k, stages.dtype)[None])

    stages = ops.zeros((len(_DOPRI_C),) + tuple(y.shape), dtype=y.dtype)
    stages = ops.slice_update(stages, (0,) + zeros, d_cur[None])
    # One traced call of `dy_dt` for the six new stages: a loop, not six copies, to compile fast.
    stages = ops.fori_loop(1, len(_DOPRI_C), stage, stages)
    weights = _tableau_tensor((_DOPRI_A[-1], _DOPRI_E))
    y_new = y + h * ops.tensordot(weights[0], stages, axes=1)
    return y_new, h * ops.tensordot(weights[1], stages, axes=1), stages[-1]


def step_size_factor(err):
    """The next step over this one: min(10, max(0.2, 0.9·err^(−1/5))) (Hairer et al., Eq. II.4.13)."""
    return ops.clip(_SAFETY * ops.power(err, -0.2), _MIN_FACTOR, _MAX_FACTOR)


def initial_step_size(dy_dt, y, t, d_cur, span, rtol, atol, direction):
    """Starting step size of Hairer et al., Sec. II.4 ("Starting Step Size"), at most `span`.

    Args:
        dy_dt: callable `dy_dt(y, t)`; called once.
        y: the initial state at `t`.
        t: scalar tensor.
        d_cur: `dy_dt(y, t)`.
        span: length of the interval to integrate, > 0.
        rtol, atol: the tolerances.
        direction: +1.0 to integrate forward in t, −1.0 backward.

    Returns:
        The size |h| > 0 of the first step, a scalar tensor.
    """
    scale = atol + rtol * ops.abs(y)
    d0 = error_norm(y / scale)
    d1 = error_norm(d_cur / scale)
    h0 = ops.where(ops.logical_or(d0 < 1e-5, d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
    h0 = ops.minimum(h0, span)
    d2 = error_norm((dy_dt(y + (direction * h0) * d_cur, t + direction * h0) - d_cur) / scale) / h0
    largest = ops.maximum(d1, d2)
    h1 = ops.where(largest <= 1e-15, ops.maximum(1e-6, 1e-3 * h0), ops.power(0.01 / largest, 0.2))
    return ops.minimum(ops.minimum(100.0 * h0, h1), span)


@keras.saving.register_keras_serializable(package="keras_score")
class RK45(Sampler):
    """Adaptive Dormand–Prince 5(4) on the probability-flow ODE in t, inside the compiled graph.

    The reference solver of the ODE samplers (as score_sde's RK45 with
    rtol = atol = 1e-5). Each attempted step costs 6 evaluations (the 7th
    stage is the first of the next step); its error is estimated by the
    embedded 4th-order solution, measured per sample as
    ‖e/(atol + rtol·max(|x|, |x_new|))‖_RMS (Hairer et al., Eq. II.4.11) and
    the step is accepted when the largest over the batch is ≤ 1; the next
    step is h·min(10, max(0.2, 0.9·err^(−1/5))). The whole integration is one
    `keras.ops.while_loop`, compiled with the rest (eager on PyTorch).

    The ODE is integrated from the grid's first time, stopping exactly at
    every grid time (for `return_trajectory`), to its last time with σ > 0;
    where the grid ends at σ = 0 the last step is the `denoising_step`
    x ← α·D(x, t_{N−1}), the limit of the ODE's solution over [0, t_{N−1}]
    taken by Karras et al.'s and DPM-Solver's last steps too. Without
    `steps`, the grid is [t_max, t_min] (and 0 where σ(0) = 0).

    The number of evaluations of the last run is `last_num_function_evals`
    (also returned by `num_function_evals`); a run that does not reach the
    end within `max_steps` steps raises a `RuntimeError`.

    Args:
        rtol: relative tolerance, > 0; with float32 keep it ≥ 1e-6.
        atol: absolute tolerance, > 0.
        max_steps: largest number of attempted steps (accepted or rejected).
        first_step: size of the first step in t; None chooses it from the
            first two derivatives (Hairer et al., Sec. II.4, one more evaluation).

    Example:
    >>> solver = RK45(rtol=1e-5, atol=1e-5)
    >>> x = solver.sample(denoise, x_T, schedule)
    >>> solver.last_num_function_evals

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
        self.last_num_function_evals = None

    def num_function_evals(self, steps=None, ends_at_zero=True):
        """Evaluations used by the last run (adaptive: not known before)."""
        if self.last_num_function_evals is None:
            raise RuntimeError("RK45 is adaptive: its number of evaluations is known after `sample` only.")
        return self.last_num_function_evals

    def make_time_grid(self, schedule, steps, time_grid):
        """As `Sampler.make_time_grid`; without `steps` the ODE is solved from t_max to t_min (then 0)."""
        if steps is None and isinstance(time_grid, str):
            time_grid = [schedule.t_max, schedule.t_min] + [0.0] * time_grids.ends_at_zero(schedule)
        return super().make_time_grid(schedule, steps, time_grid)

    def compile(self, denoise, schedule, zero_end, return_trajectory=False, variables=(), guidance=None):
        """Returns `run(x_init, times, seed, conditions=None)`; it sets `last_num_function_evals`.

        A guidance that projects the state (inpainting) is applied after
        every accepted step, which then re-evaluates the derivative there
        (one more evaluation per step), and at the end.
        """
        guidance = guidance_lib.get(guidance)

        def integrate(x, times, seed, conditions):
            guided, project = guided_denoiser(denoise, schedule, guidance, conditions, seed)

            def dx_dt(x, t):
                return probability_flow(schedule, x, t, guided(x, t))

            last = times.shape[0] - 1 - int(zero_end)  # index of the last time with σ > 0
            t = times[0]
            x = project(x, t, 0)
            d_cur = dx_dt(x, t)
            if self.first_step is None:
                h = initial_step_size(dx_dt, x, t, d_cur, t - times[last], self.rtol, self.atol, -1.0)
                nfe = 2
            else:
                h = ops.convert_to_tensor(self.first_step, dtype=x.dtype)
                nfe = 1
            index = ops.convert_to_tensor(1, dtype="int32")  # of the next grid time to stop at
            carry = (index, t, x, d_cur, h, ops.convert_to_tensor(nfe, dtype="int32"))
            if return_trajectory:
                trajectory = ops.zeros((times.shape[0],) + tuple(x.shape), dtype=x.dtype)
                carry += (ops.slice_update(trajectory, (0,) * (len(x.shape) + 1), x[None]),)

            def attempt(index, t, x, d_cur, h, nfe, *trajectory):
                target = times[index]
                lands = h >= t - target
                h = ops.minimum(h, t - target)
                x_new, error, d_new = dormand_prince_step(dx_dt, x, t, -h, d_cur)
                err = error_norm(error / (self.atol + self.rtol * ops.maximum(ops.abs(x), ops.abs(x_new))))
                accept = err <= 1.0
                stop = ops.logical_and(accept, lands)
                if guidance.projects:
                    t_new = ops.where(lands, target, t - h)
                    x_new = project(x_new, t_new, nfe + 1)
                    d_new = dx_dt(x_new, t_new)
                    nfe = nfe + 1
                if return_trajectory:
                    row = ops.slice_update(trajectory[0], (index,) + (0,) * len(x.shape), x_new[None])
                    trajectory = (ops.where(stop, row, trajectory[0]),)
                return (
                    index + ops.cast(stop, "int32"),
                    ops.where(accept, ops.where(lands, target, t - h), t),
                    ops.where(accept, x_new, x),
                    ops.where(accept, d_new, d_cur),
                    h * step_size_factor(err),
                    nfe + 6,
                    *trajectory,
                )

            carry = ops.while_loop(
                lambda index, *_: index <= last, attempt, carry, maximum_iterations=self.max_steps
            )
            index, t, x, _, _, nfe = carry[:6]
            trajectory = carry[6:]
            if zero_end:
                x = denoising_step(guided, schedule, x, times[last], times[last + 1])
                nfe = nfe + 1
            x = project(x, None, 0)
            if zero_end:
                if return_trajectory:
                    trajectory = (ops.slice_update(trajectory[0], (last + 1,) + (0,) * len(x.shape), x[None]),)
            return (x, *trajectory, nfe, index, t)

        compiled = backend.compile_function(integrate, variables)

        def run(x, times, seed=0, conditions=None):  # `seed` only seeds a guidance's noise.
            seed = ops.convert_to_tensor(seed, dtype="int32")
            *outputs, nfe, index, t = compiled(x, times, seed, conditions or {})
            last = times.shape[0] - 1 - int(zero_end)
            if int(ops.convert_to_numpy(index)) <= last:
                raise RuntimeError(
                    f"RK45 stopped at t={float(ops.convert_to_numpy(t)):.6g} after max_steps={self.max_steps} "
                    f"steps, before t={float(ops.convert_to_numpy(times[last])):.6g}; raise `max_steps` "
                    "or loosen `rtol`/`atol`."
                )
            self.last_num_function_evals = int(ops.convert_to_numpy(nfe))
            return tuple(outputs) if return_trajectory else outputs[0]

        return run

    def get_config(self):
        return {"rtol": self.rtol, "atol": self.atol, "max_steps": self.max_steps, "first_step": self.first_step}
