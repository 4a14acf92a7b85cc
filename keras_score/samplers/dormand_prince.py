"""Adaptive Dormand–Prince 5(4) integration inside the compiled graph: one driver for sampling and likelihoods.

`solve` integrates dy/dt = F(y, t) through every time of a grid, forward or
backward in t, in one `keras.ops.while_loop`: the `RK45` sampler runs it
backward on the probability-flow ODE, `keras_score.likelihood.log_prob`
forward on the ODE augmented with ∫∇·F dt. The step control is that of
Hairer et al. (Sec. II.4): the error of the embedded 4th-order solution,
measured per example as ‖e/(atol + rtol·max(|y|, |y_new|))‖_RMS (Eq. II.4.11),
the largest over the batch, must be ≤ 1 for a step to be accepted, and the
next step is h·min(10, max(0.2, 0.9·err^(−1/5))) (Eq. II.4.13).

Reference: Dormand & Prince, "A family of embedded Runge-Kutta formulae",
J. Comput. Appl. Math. 6, 1980; Hairer, Nørsett & Wanner, "Solving Ordinary
Differential Equations I", 1993, Sec. II.4 and Table II.5.2.
"""

from keras import ops

# RK5(4)7M (Hairer et al., Table II.5.2): nodes c, coefficients a (the last
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


def _tableau_tensor(rows, dtype):
    """The rows of coefficients as a (len(rows), 7) tensor, zero-padded."""
    padded = [tuple(row) + (0.0,) * (len(_DOPRI_C) - len(row)) for row in rows]
    return ops.convert_to_tensor(padded, dtype=dtype)


# Keras' type promotion on PyTorch rounds the results of `ops.tensordot`,
# `ops.minimum` and `ops.maximum` of float64 tensors to float32; the three
# helpers below keep a float64 integration in float64 on every backend.


def _combine(weights, stages):
    """Σ_j weights[j]·stages[j] over the first axis of `stages` (`ops.tensordot(weights, stages, 1)`)."""
    return ops.sum(ops.reshape(weights, (-1,) + (1,) * (len(stages.shape) - 1)) * stages, axis=0)


def _minimum(a, b):
    """Elementwise min(a, b), NaN in `a` propagated."""
    return ops.where(a > b, b, a)


def _maximum(a, b):
    """Elementwise max(a, b), NaN in `a` propagated."""
    return ops.where(a < b, b, a)


def error_norm(v):
    """The largest per-example RMS norm, so that every example meets the tolerance."""
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

    Example:
    >>> y, error, d = dormand_prince_step(lambda y, t: -y, ops.ones((1, 1)), 0.0, 0.1, -ops.ones((1, 1)))
    """
    nodes = ops.convert_to_tensor(_DOPRI_C, dtype=y.dtype)
    coefficients = _tableau_tensor(_DOPRI_A, y.dtype)
    zeros = (0,) * len(y.shape)

    def stage(i, stages):
        increment = _combine(ops.take(coefficients, i, axis=0), stages)
        k = dy_dt(y + h * increment, t + ops.take(nodes, i) * h)
        return ops.slice_update(stages, (i,) + zeros, ops.cast(k, stages.dtype)[None])

    stages = ops.zeros((len(_DOPRI_C),) + tuple(y.shape), dtype=y.dtype)
    stages = ops.slice_update(stages, (0,) + zeros, d_cur[None])
    # One traced call of `dy_dt` for the six new stages: a loop, not six copies, to compile fast.
    stages = ops.fori_loop(1, len(_DOPRI_C), stage, stages)
    weights = _tableau_tensor((_DOPRI_A[-1], _DOPRI_E), y.dtype)
    y_new = y + h * _combine(weights[0], stages)
    return y_new, h * _combine(weights[1], stages), stages[-1]


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
        direction: +1 to integrate forward in t, −1 backward (a number or scalar tensor).

    Returns:
        The size |h| > 0 of the first step, a scalar tensor.
    """
    scale = atol + rtol * ops.abs(y)
    d0 = error_norm(y / scale)
    d1 = error_norm(d_cur / scale)
    h0 = ops.where(ops.logical_or(d0 < 1e-5, d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
    h0 = _minimum(h0, span)
    d2 = error_norm((dy_dt(y + (direction * h0) * d_cur, t + direction * h0) - d_cur) / scale) / h0
    largest = _maximum(d1, d2)
    h1 = ops.where(largest <= 1e-15, _maximum(1e-3 * h0, 1e-6), ops.power(0.01 / largest, 0.2))
    return _minimum(_minimum(100.0 * h0, h1), span)


def solve(dy_dt, y, times, rtol, atol, max_steps, first_step=None, project=None, return_trajectory=False):
    """Adaptive Dormand–Prince 5(4) from `times[0]` through every time of `times`, in one `while_loop`.

    Steps are shortened to land exactly on each time of the grid (for a
    trajectory); the grid may increase or decrease. Each attempted step
    costs 6 evaluations (the 7th stage is the first of the next step).

    Args:
        dy_dt: callable `dy_dt(y, t)`.
        y: the state at `times[0]`, shape (n, ...); the error is measured per example.
        times: 1-D tensor of at least 2 strictly monotone times (static length).
        rtol, atol: relative and absolute tolerances, > 0.
        max_steps: the most attempted steps (accepted or rejected).
        first_step: size |h| of the first step, or None to choose it from the
            first two derivatives (`initial_step_size`, one more evaluation).
        project: None, or `project(y, t, counter)` applied to the result of
            every attempted step (e.g. a guidance's projection onto known
            values), after which `dy_dt` is evaluated there again (one more
            evaluation); `counter` is the evaluation count before the step plus 1.
        return_trajectory: also return the state at every time of `times`.

    Returns:
        Dict with "y" (the state reached), "num_function_evals" (int32
        scalar), "next_index" (int32: the index of the first time not
        reached, `len(times)` when the integration is complete), "t" (the
        time reached) and, with `return_trajectory`, "trajectory" of shape
        (len(times), n, ...) (zero rows for times not reached).

    Example:
    >>> solution = solve(lambda y, t: -y, ops.ones((2, 1)), ops.convert_to_tensor([0.0, 1.0]), 1e-6, 1e-6, 100)
    >>> ops.convert_to_numpy(solution["y"])  # e^{-1}
    """
    num_times = times.shape[0]
    t = times[0]
    direction = ops.sign(times[-1] - t)
    d_cur = dy_dt(y, t)
    if first_step is None:
        h = initial_step_size(dy_dt, y, t, d_cur, direction * (times[-1] - t), rtol, atol, direction)
        nfe = 2
    else:
        h = ops.convert_to_tensor(first_step, dtype=y.dtype)
        nfe = 1
    index = ops.convert_to_tensor(1, dtype="int32")  # of the next grid time to stop at
    carry = (index, t, y, d_cur, h, ops.convert_to_tensor(nfe, dtype="int32"))
    zeros = (0,) * len(y.shape)
    if return_trajectory:
        trajectory = ops.zeros((num_times,) + tuple(y.shape), dtype=y.dtype)
        carry += (ops.slice_update(trajectory, (0,) + zeros, y[None]),)

    def attempt(index, t, y, d_cur, h, nfe, *trajectory):
        target = times[index]
        remaining = direction * (target - t)
        lands = h >= remaining
        h = _minimum(h, remaining)
        y_new, error, d_new = dormand_prince_step(dy_dt, y, t, direction * h, d_cur)
        err = error_norm(error / (atol + rtol * _maximum(ops.abs(y), ops.abs(y_new))))
        accept = err <= 1.0
        stop = ops.logical_and(accept, lands)
        t_new = ops.where(lands, target, t + direction * h)
        if project is not None:
            y_new = project(y_new, t_new, nfe + 1)
            d_new = dy_dt(y_new, t_new)
            nfe = nfe + 1
        if return_trajectory:
            # A mask, not `slice_update`, whose start indices would mix int32 and int64 under JAX's x64.
            row = ops.logical_and(stop, ops.arange(num_times, dtype="int32") == index)
            trajectory = (ops.where(ops.reshape(row, (num_times,) + (1,) * len(y.shape)), y_new[None], trajectory[0]),)
        return (
            index + ops.cast(stop, "int32"),
            ops.where(accept, t_new, t),
            ops.where(accept, y_new, y),
            ops.where(accept, d_new, d_cur),
            h * step_size_factor(err),
            nfe + 6,
            *trajectory,
        )

    carry = ops.while_loop(lambda index, *_: index < num_times, attempt, carry, maximum_iterations=max_steps)
    solution = {"y": carry[2], "num_function_evals": carry[5], "next_index": carry[0], "t": carry[1]}
    if return_trajectory:
        solution["trajectory"] = carry[6]
    return solution


def check_solved(solution, times, max_steps):
    """Raises a `RuntimeError` on the host when `solve` ran out of `max_steps` before the last time.

    Args:
        solution: the dict returned by `solve` (its "next_index" and "t").
        times: the grid given to `solve`.
        max_steps: its `max_steps`.
    """
    times = ops.convert_to_numpy(times)
    if int(ops.convert_to_numpy(solution["next_index"])) < times.shape[0]:
        raise RuntimeError(
            f"RK45 stopped at t={float(ops.convert_to_numpy(solution['t'])):.6g} after max_steps={max_steps} "
            f"steps, before t={float(times[-1]):.6g}; raise `max_steps` or loosen `rtol`/`atol`."
        )
