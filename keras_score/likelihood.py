"""Exact log-likelihood through the probability-flow ODE, and bits per dimension.

The probability-flow ODE dx/dt = F(x, t) = f(t)·x − ½·g(t)²·∇log p_t(x)
carries the data distribution at t ≈ 0 to the prior at t = T. Along one of
its trajectories the instantaneous change of variables gives
d log p_t(x(t))/dt = −∇·F(x(t), t), so

    log p_{t_min}(x) = log p_T(x(T)) + ∫_{t_min}^T ∇·F(x(t), t) dt,

where x(t) solves the ODE from x(t_min) = x. `log_prob` integrates x and the
integral together, in one compiled loop, with the divergence computed
exactly (one Jacobian-vector product per unit vector) or with Hutchinson's
estimator εᵀ(∂F/∂x)ε, whose probes ε stay fixed over the whole trajectory.

Reference: Song et al., "Score-Based Generative Modeling through Stochastic
Differential Equations", ICLR 2021, Sec. 4.3 and App. D.2; Chen et al.,
"Neural Ordinary Differential Equations", 2018 (instantaneous change of
variables); Grathwohl et al., "FFJORD", ICLR 2019 and Hutchinson, "A
stochastic estimator of the trace of the influence matrix", 1989 (trace
estimator); Theis et al., "A note on the evaluation of generative models",
ICLR 2016 and Ho et al., "Flow++", 2019 (uniform dequantization).
"""

import math

import keras
import numpy as np
from keras import ops

from keras_score import backend
from keras_score import schedules as schedules_lib
from keras_score.samplers.base import probability_flow
from keras_score.samplers import dormand_prince
from keras_score.samplers.ode import heun_step, rk4_step
from keras_score.sde import SDE
from keras_score.validation import check_bool, check_choice, check_float, check_int, check_positive_float

SOLVERS = ("rk45", "heun", "rk4")
DIVERGENCES = ("exact", "hutchinson")
PROBE_DISTRIBUTIONS = ("rademacher", "gaussian")
_EVALS_PER_STEP = {"heun": 2, "rk4": 4}


def _start_time(schedule, t_min):
    """The time where integration starts: `t_min` or the schedule's, checked to have σ > 0."""
    t_min = schedule.t_min if t_min is None else t_min
    t_min = check_float(t_min, "t_min", minimum=0.0, maximum=schedule.t_max, exclusive_maximum=True)
    if not float(ops.convert_to_numpy(schedule.sigma(t_min))) > 0:
        raise ValueError(
            f"`t_min` must have σ(t_min) > 0, where the score is finite; received t_min={t_min!r} "
            f"with σ(t_min) = 0 (try t_min={schedule.t_min})."
        )
    return float(t_min)


def fixed_time_grid(schedule, t_min, steps):
    """Increasing times t_min = t₀ < … < t_N = t_max, uniform in log-SNR λ(t).

    Uniform in λ = log(α²/σ²) is uniform in log σ for VE and EDM; it places
    the fixed steps of Heun and RK4 where the drift changes fastest.

    Args:
        schedule: the `NoiseSchedule`.
        t_min: the first time, with σ(t_min) > 0.
        steps: the number of steps N ≥ 1.

    Returns:
        float64 numpy array of shape (N + 1,), computed in `keras.config.floatx()`.
    """
    dtype = keras.config.floatx()
    ends = np.array([t_min, schedule.t_max], dtype=dtype)
    lam_start, lam_end = np.asarray(ops.convert_to_numpy(schedule.log_snr(ends)), dtype=np.float64)
    lam = np.linspace(lam_start, lam_end, steps + 1).astype(dtype)
    times = np.asarray(ops.convert_to_numpy(schedule.t_from_log_snr(lam)), dtype=np.float64)
    times[0], times[-1] = t_min, schedule.t_max
    if not np.all(np.diff(times) > 0):
        raise ValueError(
            f"`steps`={steps} places two steps at the same time in {dtype} between t_min={t_min} "
            f"and t_max={schedule.t_max}; use fewer steps."
        )
    return times


def divergence_probes(num_examples, data_shape, divergence, probes=1, distribution="rademacher", seed=0, start=0):
    """The vectors v whose Jacobian products Σᵥ vᵀ(∂F/∂x)v give the divergence.

    "exact": the D = prod(data_shape) unit vectors, shared by all examples
    (Σᵢ eᵢᵀJeᵢ = tr J). "hutchinson": `probes` vectors per example with
    E[vvᵀ] = I, Rademacher (±1) or standard normal, so that E[vᵀJv] = tr J;
    row i depends only on (seed, start + i), not on the batch it falls in.

    Args:
        num_examples: number of examples n.
        data_shape: shape of one example.
        divergence: "exact" or "hutchinson".
        probes: probes per example (Hutchinson).
        distribution: "rademacher" or "gaussian" (Hutchinson).
        seed: integer seed (Hutchinson).
        start: index of the first example in the whole data (Hutchinson).

    Returns:
        numpy array of shape (1, D, *data_shape) ("exact") or
        (n, probes, *data_shape) ("hutchinson"), of dtype `keras.config.floatx()`.

    Example:
    >>> divergence_probes(4, (2,), "exact")[0]
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    data_shape = tuple(data_shape)
    dtype = keras.config.floatx()
    if divergence == "exact":
        dim = math.prod(data_shape)
        return np.eye(dim, dtype=dtype).reshape((1, dim) + data_shape)
    rows = []
    for i in range(start, start + num_examples):
        rng = np.random.default_rng([seed, i])
        if distribution == "rademacher":
            rows.append(2.0 * rng.integers(0, 2, size=(probes,) + data_shape) - 1.0)
        else:
            rows.append(rng.standard_normal((probes,) + data_shape))
    return np.stack(rows).astype(dtype)


def augmented_drift(denoise, schedule, probes, data_shape, divergence):
    """The drift of y = (x flattened, ∫∇·F dt): dy/dt = (F(x, t), ∇·F(x, t)).

    Each example is repeated once per probe and a single `keras.ops.jvp` of
    the probability-flow drift F gives F and every product J·v at once; the
    divergence is Σᵥ vᵀJv, averaged over the probes for Hutchinson. This
    needs a denoiser that treats examples independently (no batch statistics).

    Args:
        denoise: `denoise(x, t)`.
        schedule: its `NoiseSchedule`.
        probes: tensor (1 or n, m, *data_shape) from `divergence_probes`.
        data_shape: shape of one example.
        divergence: "exact" (sum over the unit vectors) or "hutchinson"
            (mean over the probes).

    Returns:
        `dy_dt(y, t)` on states y of shape (n, D + 1).
    """
    data_shape = tuple(data_shape)
    num_probes = probes.shape[1]
    weight = 1.0 if divergence == "exact" else 1.0 / num_probes

    def dy_dt(y, t):
        n = y.shape[0]
        x = ops.reshape(y[:, :-1], (n, 1) + data_shape)
        repeated = (n * num_probes,) + data_shape
        x = ops.reshape(ops.broadcast_to(x, (n, num_probes) + data_shape), repeated)
        v = ops.reshape(ops.broadcast_to(probes, (n, num_probes) + data_shape), repeated)
        drift, jv = ops.jvp(lambda z: probability_flow(schedule, z, t, denoise(z, t)), (x,), (v,))
        div = weight * ops.sum(ops.reshape(v * jv, (n, -1)), axis=1)
        drift = ops.reshape(drift, (n, num_probes, -1))[:, 0]
        return ops.concatenate([drift, div[:, None]], axis=1)

    return dy_dt


def fixed_step_solve(dy_dt, y, times, method):
    """Heun's or the RK4 method on the increasing grid `times`, in a `fori_loop`.

    Args:
        dy_dt: callable `dy_dt(y, t)`, e.g. from `augmented_drift`.
        y: the state at `times[0]`.
        times: 1-D tensor of increasing times.
        method: "heun" or "rk4".

    Returns:
        Dict with "y" (the state at `times[-1]`) and "num_function_evals"
        (int32 scalar), as `keras_score.samplers.dormand_prince.solve`.
    """
    step = heun_step if method == "heun" else rk4_step
    num_steps = times.shape[0] - 1
    y = ops.fori_loop(0, num_steps, lambda i, y: step(dy_dt, y, times[i], times[i + 1]), y)
    return {"y": y, "num_function_evals": ops.convert_to_tensor(_EVALS_PER_STEP[method] * num_steps, dtype="int32")}


def log_prob(
    denoise,
    schedule,
    x,
    solver="rk45",
    steps=None,
    rtol=1e-5,
    atol=1e-5,
    divergence="exact",
    probes=1,
    probe_distribution="rademacher",
    seed=0,
    t_min=None,
    prior_log_prob=None,
    batch_size=None,
    max_steps=10_000,
    variables=(),
    verbose=False,
    return_details=False,
    cache=None,
):
    """Log-density of each example, in nats, by the probability-flow ODE (Song et al. 2021, Sec. 4.3).

    Integrates the probability-flow ODE of `denoise` forward from x at
    `t_min` to t_max together with ∫∇·F dt, and returns
    log p_T(x(T)) + ∫_{t_min}^{T} ∇·F dt. This is exactly log p_{t_min}(x), the
    density of the data after noising to σ(t_min), for an exact denoiser, an
    exact solver and the exact p_T; the prior N(0, σ(T)²I) of
    `keras_score.SDE` is p_T up to the data's contribution at T (relative
    size ≈ α(T)²·E‖x₀‖²/σ(T)²). The integration of each batch is one call of
    a function compiled by `keras_score.backend.compile_function`.

    Args:
        denoise: `denoise(x, t) -> E[x₀ | x_t = x]`, examples treated
            independently (e.g. `model.denoise` or an exact mixture's).
        schedule: the `NoiseSchedule` (or its name) the denoiser belongs to.
        x: data, array of shape (n, ...), in the denoiser's units.
        solver: "rk45" (adaptive Dormand–Prince), "heun" or "rk4" (fixed
            steps, uniform in log-SNR).
        steps: number of steps of "heun" and "rk4"; not used by "rk45".
        rtol, atol: tolerances of "rk45", on x and on the integral.
        divergence: "exact" (D Jacobian-vector products per evaluation, for
            small D) or "hutchinson" (`probes` products: unbiased, FFJORD).
        probes: probes per example for "hutchinson"; 1 for "exact".
        probe_distribution: "rademacher" or "gaussian" probes for "hutchinson".
        seed: seed of the Hutchinson probes; example i's depend on (seed, i) only.
        t_min: start time, σ(t_min) > 0; default the schedule's `t_min`.
        prior_log_prob: callable `prior_log_prob(x_T) -> (n,)` log p_T;
            default `SDE(schedule).prior_log_prob`.
        batch_size: examples per compiled call (default: all at once).
        max_steps: most step attempts of "rk45" before a `RuntimeError`.
        variables: Keras variables read by `denoise` (`model.variables`).
        verbose: show a `keras.utils.Progbar` over the batches.
        return_details: also return a dict with "prior_log_prob" and
            "delta_log_prob" (the integral), shape (n,), "latent" x(T) and
            "num_function_evals" (drift evaluations, summed over batches).
        cache: a dict in which the compiled integration is kept between
            calls with the same `denoise`, solver settings and data shape
            (as `ScoreModel.log_prob` does), or None to compile afresh.

    Returns:
        float64 numpy array of shape (n,) of log p_{t_min}(x) in nats, or
        `(log_prob, details)` with `return_details`.

    Example:
    >>> mixture = keras_score.datasets.GaussianMixture.ring()
    >>> schedule = keras_score.EDMSchedule()
    >>> x = mixture.sample(64, seed=0)
    >>> log_p = log_prob(lambda x, t: mixture.denoise(x, t, schedule), schedule, x)
    >>> exact = mixture.log_prob(x, schedule.t_min, schedule)  # agree to ~1e-4 nats
    """
    schedule = schedules_lib.get(schedule)
    x = np.asarray(ops.convert_to_numpy(x), dtype=keras.config.floatx())
    if x.ndim < 2 or x.shape[0] < 1 or x.size == 0:
        raise ValueError(f"`x` must have shape (n, ...) with n >= 1 examples; received shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`x` contains {int(np.sum(~np.isfinite(x)))} NaN or Inf values.")
    check_choice(solver, "solver", SOLVERS)
    check_choice(divergence, "divergence", DIVERGENCES)
    check_choice(probe_distribution, "probe_distribution", PROBE_DISTRIBUTIONS)
    probes = check_int(probes, "probes", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    return_details = check_bool(return_details, "return_details")
    if divergence == "exact" and probes != 1:
        raise ValueError(f"`probes` applies to divergence='hutchinson' only; received probes={probes}.")
    if solver == "rk45":
        if steps is not None:
            raise ValueError(
                f"`steps` is for the fixed-step solvers; solver='rk45' is adaptive (received steps={steps!r})."
            )
        rtol, atol = check_positive_float(rtol, "rtol"), check_positive_float(atol, "atol")
        max_steps = check_int(max_steps, "max_steps", minimum=1)
    elif steps is None:
        raise ValueError(f"`steps` is required with solver={solver!r}.")
    else:
        steps = check_int(steps, "steps", minimum=1)
    batch_size = x.shape[0] if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
    backend.check_batches(x.shape[0], batch_size, "len(x)")
    start_time = _start_time(schedule, t_min)
    if solver == "rk45":
        times = np.array([start_time, schedule.t_max])
    else:
        times = fixed_time_grid(schedule, start_time, steps)
    prior_log_prob = SDE(schedule).prior_log_prob if prior_log_prob is None else prior_log_prob

    data_shape = x.shape[1:]

    def run(x, v, times):
        dy_dt = augmented_drift(denoise, schedule, v, data_shape, divergence)
        y = ops.concatenate([ops.reshape(x, (x.shape[0], -1)), ops.zeros((x.shape[0], 1), x.dtype)], axis=1)
        if solver == "rk45":
            solution = dormand_prince.solve(dy_dt, y, times, rtol, atol, max_steps)
        else:
            solution = fixed_step_solve(dy_dt, y, times, solver)
        y = solution.pop("y")
        return ops.reshape(y[:, :-1], x.shape), y[:, -1], solution

    key = (solver, rtol, atol, max_steps, divergence, data_shape)
    compiled = None if cache is None else cache.get(key)
    if compiled is None:
        compiled = backend.compile_function(run, variables)
        if cache is not None:
            cache[key] = compiled
    times = ops.convert_to_tensor(times, dtype=keras.config.floatx())
    shared_probes = divergence_probes(1, data_shape, divergence) if divergence == "exact" else None
    progbar = keras.utils.Progbar(x.shape[0]) if verbose else None
    outputs = {"prior_log_prob": [], "delta_log_prob": [], "latent": []}
    total_nfe = 0
    for start in range(0, x.shape[0], batch_size):
        batch = x[start : start + batch_size]
        v = shared_probes
        if v is None:
            v = divergence_probes(len(batch), data_shape, divergence, probes, probe_distribution, seed, start)
        batch, v = backend.distribute_batch((ops.convert_to_tensor(batch), ops.convert_to_tensor(v)), len(batch))
        latent, delta, solution = compiled(batch, v, times)
        if solver == "rk45":
            dormand_prince.check_solved(solution, times, max_steps)
        for key, value in zip(outputs, (prior_log_prob(latent), delta, latent)):
            outputs[key].append(np.asarray(ops.convert_to_numpy(value), dtype=np.float64))
        total_nfe += int(ops.convert_to_numpy(solution["num_function_evals"]))
        if progbar is not None:
            progbar.add(len(batch))
    details = {key: np.concatenate(values) for key, values in outputs.items()}
    details["num_function_evals"] = total_nfe
    result = details["prior_log_prob"] + details["delta_log_prob"]
    return (result, details) if return_details else result


def dequantize(x, num_levels=256, data_range=(-1.0, 1.0), seed=0):
    """Uniform dequantization: integers k ∈ {0, …, K−1} to lo + (k + u)/K·(hi − lo), u ~ U[0, 1).

    With x_int = 0, …, 255 and the default range this is x = (x_int + u)/256·2 − 1
    ∈ [−1, 1): each integer owns a bin of width (hi − lo)/K. Any density p on
    the bins then bounds the discrete probability from below (Jensen):
    log P(x_int) ≥ E_u[log p(x)] + D·log((hi − lo)/K), as `bits_per_dim` counts.

    Args:
        x: integer array with values in {0, …, num_levels − 1}.
        num_levels: number of levels K (256 for 8-bit data).
        data_range: (lo, hi), the interval the levels are mapped onto.
        seed: seed of the uniform noise u.

    Returns:
        numpy array shaped like `x`, of dtype `keras.config.floatx()`.

    Example:
    >>> dequantize(np.array([[0, 255]]), seed=0).round(2)  # in [-1, -0.992) and [0.992, 1)
    """
    num_levels = check_int(num_levels, "num_levels", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    lo, hi = _data_range(data_range)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer) or x.size and (x.min() < 0 or x.max() >= num_levels):
        raise ValueError(
            f"`x` must hold integers in {{0, ..., {num_levels - 1}}} (num_levels={num_levels}); "
            f"received dtype {x.dtype}" + (f", values in [{x.min()}, {x.max()}]." if x.size else ".")
        )
    u = np.random.default_rng(seed).uniform(size=x.shape)
    return (lo + (x + u) / num_levels * (hi - lo)).astype(keras.config.floatx())


def _data_range(data_range):
    """(lo, hi) as floats: a pair of finite numbers with lo < hi."""
    try:
        lo, hi = data_range
    except (TypeError, ValueError):
        raise ValueError(f"`data_range` must be a pair (lo, hi); received data_range={data_range!r}.") from None
    lo, hi = check_float(lo, "data_range[0]"), check_float(hi, "data_range[1]")
    if not lo < hi:
        raise ValueError(f"`data_range` must satisfy lo < hi; received data_range={data_range!r}.")
    return lo, hi


def bits_per_dim(log_prob, num_dims, num_levels=None, data_range=(-1.0, 1.0)):
    """Converts log-densities in nats to bits per dimension, −log p/(D·ln 2).

    For discrete data dequantized with `dequantize` (K levels on
    [lo, hi]), the density p of x is a density on bins of width
    (hi − lo)/K, and the discrete probability satisfies
    log P(x_int) ≥ log p(x) + D·log((hi − lo)/K) on average over u; with
    `num_levels` that bound is converted: bpd = −(log p(x) + D·log((hi − lo)/K))/(D·ln 2).
    For 8-bit data on [−1, 1] that adds log₂(256/2) = 7 bits to the
    continuous value, so the uniform density 2^−D on [−1, 1]^D gives exactly
    8 bits per dimension.

    Args:
        log_prob: log-densities in nats, e.g. from `log_prob`.
        num_dims: number of dimensions D per example.
        num_levels: K for discrete data, or None for a continuous density.
        data_range: (lo, hi), the interval the K levels were mapped onto.

    Returns:
        float64 numpy array shaped like `log_prob`.

    Example:
    >>> float(bits_per_dim(-3 * np.log(2.0), 3, num_levels=256))
    8.0
    """
    num_dims = check_int(num_dims, "num_dims", minimum=1)
    log_prob = np.asarray(ops.convert_to_numpy(log_prob), dtype=np.float64)
    if num_levels is not None:
        num_levels = check_int(num_levels, "num_levels", minimum=1)
        lo, hi = _data_range(data_range)
        log_prob = log_prob + num_dims * math.log((hi - lo) / num_levels)
    return -log_prob / (num_dims * math.log(2.0))
