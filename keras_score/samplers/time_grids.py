"""Time grids t₀ = t_max > t₁ > … > t_N for samplers.

Grids are placed in σ̃ = σ/α (the EDM noise level) or in t and mapped to t
through the schedule's inverse log-SNR. Where σ(0) = 0 (VP, sub-VP, cosine,
EDM) the grid has N points in [t_min, t_max] and ends with t_N = 0, where
the last step lands on clean data, as in k-diffusion and EDM. Where σ(0) > 0
(VE) the grid has N + 1 points in [t_min, t_max].

- "uniform": uniform in t.
- "karras": σ̃_i = (σ̃_max^{1/ρ} + i/(N−1)·(σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ
  (Karras et al. 2022, Eq. 5), ρ = 7.
- "log_snr": uniform in λ = log(α²/σ²) (Lu et al. 2022, DPM-Solver).
- a list or array of times: used as given, after checks.
"""

import keras
import numpy as np
from keras import ops

from keras_score.validation import check_int, check_positive_float

GRIDS = ("uniform", "karras", "log_snr")


def ends_at_zero(schedule):
    """Whether σ(0) = 0, so that the grid can end on clean data."""
    return float(ops.convert_to_numpy(schedule.sigma(0.0))) == 0.0


def lands_on_data(schedule, times):
    """Whether a grid's last time has σ = 0, so the last step must not evaluate the denoiser there."""
    return float(ops.convert_to_numpy(schedule.sigma(float(times[-1])))) == 0.0


def _to_numpy(values):
    return np.asarray(ops.convert_to_numpy(values), dtype=np.float64)


def time_grid(schedule, steps, spacing="karras", rho=7.0):
    """Returns the decreasing times of an N-step sampler as a float64 numpy array.

    The times are computed in the working precision `keras.config.floatx()`
    (the schedule's log-SNR and its inverse), so they are exact to float64
    under `keras.config.set_floatx("float64")`.

    Args:
        schedule: a `NoiseSchedule`.
        steps: N ≥ 1, the number of steps (the grid has N + 1 points).
        spacing: "uniform", "karras", "log_snr", or a sequence of times.
        rho: ρ of the Karras grid.

    Returns:
        numpy array of shape (N + 1,).

    Example:
    >>> from keras_score.schedules import EDMSchedule
    >>> time_grid(EDMSchedule(), 2, "karras")
    array([8.e+01, 2.e-03, 0.e+00])
    """
    if not isinstance(spacing, str):
        return validate_time_grid(spacing, schedule)
    steps = check_int(steps, "steps", minimum=1)
    rho = check_positive_float(rho, "rho")
    if spacing not in GRIDS:
        raise ValueError(
            f"Unknown time grid {spacing!r}; expected one of {list(GRIDS)} or a sequence of times."
        )
    zero_end = ends_at_zero(schedule)
    n = steps if zero_end else steps + 1
    fraction = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    if spacing == "uniform":
        times = schedule.t_max + fraction * (schedule.t_min - schedule.t_max)
    else:
        lam_max, lam_min = _to_numpy(schedule.log_snr(np.array([schedule.t_min, schedule.t_max])))
        if spacing == "karras":
            s_max, s_min = np.exp(-0.5 * lam_min), np.exp(-0.5 * lam_max)
            inv = s_max ** (1 / rho) + fraction * (s_min ** (1 / rho) - s_max ** (1 / rho))
            lam = -2.0 * rho * np.log(inv)
        else:
            lam = lam_min + fraction * (lam_max - lam_min)
        times = _to_numpy(schedule.t_from_log_snr(lam.astype(keras.config.floatx())))
        times[0], times[-1] = schedule.t_max, schedule.t_min
    if zero_end:
        times = np.append(times, 0.0)
    return validate_time_grid(times, schedule)


def validate_time_grid(times, schedule=None):
    """Checks that `times` is a 1-D, finite, strictly decreasing grid of at least 2 points."""
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.shape[0] < 2:
        raise ValueError(
            f"A time grid must be a 1-D sequence of at least 2 times; received shape {times.shape}."
        )
    if not np.all(np.isfinite(times)):
        raise ValueError("A time grid must be finite; received NaN or Inf.")
    if not np.all(np.diff(times) < 0):
        raise ValueError(
            f"A time grid must be strictly decreasing (from t_max towards 0); received {times.tolist()}."
        )
    if schedule is not None and (times[0] > schedule.t_max * (1 + 1e-6) or times[-1] < 0):
        raise ValueError(
            f"A time grid must lie in [0, t_max={schedule.t_max}]; received "
            f"[{times[-1]}, {times[0]}]."
        )
    return times
