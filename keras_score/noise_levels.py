"""Distributions of the training noise level t.

Each returns times t of shape (batch,) inside the schedule's [t_min, t_max].

- `UniformTime`: t ~ U(t_min, t_max) (Song et al. 2021).
- `LogNormalSigma`: log σ̃ ~ N(P_mean, P_std²) with σ̃ = σ/α, mapped to t by the
  schedule's inverse log-SNR (Karras et al. 2022, Sec. 5), so it works for
  every schedule.
- `DiscreteTimes`: t = k/N·t_max for k uniform in {1, …, N} (Ho et al. 2020).
- `AntitheticTime`: one uniform offset u per batch, tᵢ at (u + i/B) mod 1 of
  [t_min, t_max]: uniform marginals, low discrepancy (Kingma et al. 2021).
"""

import keras
from keras import ops

from keras_score.registry import Configurable, resolve
from keras_score.validation import check_float, check_int, check_positive_float


@keras.saving.register_keras_serializable(package="keras_score")
class NoiseLevelDistribution(Configurable):
    """Base class: `sample(batch_size, schedule, seed)` returns t of shape (batch_size,)."""

    name = None

    def sample(self, batch_size, schedule, seed=None):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_score")
class UniformTime(NoiseLevelDistribution):
    """t ~ U(t_min, t_max) of the schedule."""

    name = "uniform"

    def sample(self, batch_size, schedule, seed=None):
        return keras.random.uniform(
            (batch_size,), minval=schedule.t_min, maxval=schedule.t_max, seed=seed
        )


@keras.saving.register_keras_serializable(package="keras_score")
class LogNormalSigma(NoiseLevelDistribution):
    """log(σ/α) ~ N(mean, std²) (EDM's P_mean = −1.2, P_std = 1.2), clipped to the schedule.

    Args:
        mean: P_mean.
        std: P_std.
    """

    name = "log_normal"

    def __init__(self, mean=-1.2, std=1.2):
        self.mean = check_float(mean, "mean")
        self.std = check_positive_float(std, "std")

    def sample(self, batch_size, schedule, seed=None):
        log_sigma = self.mean + self.std * keras.random.normal((batch_size,), seed=seed)
        t = schedule.t_from_log_snr(-2.0 * log_sigma)
        return ops.clip(t, schedule.t_min, schedule.t_max)

    def get_config(self):
        return {"mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="keras_score")
class DiscreteTimes(NoiseLevelDistribution):
    """t = k/N·t_max with k uniform in {1, …, N}, clipped below at t_min (DDPM).

    Args:
        num_steps: N, the number of discrete noise levels.
    """

    name = "discrete"

    def __init__(self, num_steps=1000):
        self.num_steps = check_int(num_steps, "num_steps", minimum=1)

    def sample(self, batch_size, schedule, seed=None):
        k = keras.random.randint((batch_size,), 1, self.num_steps + 1, seed=seed)
        t = ops.cast(k, keras.config.floatx()) * (schedule.t_max / self.num_steps)
        return ops.maximum(t, schedule.t_min)

    def get_config(self):
        return {"num_steps": self.num_steps}


@keras.saving.register_keras_serializable(package="keras_score")
class AntitheticTime(NoiseLevelDistribution):
    """tᵢ = t_min + (t_max − t_min)·((u + i/B) mod 1), i = 0…B−1, with one u ~ U(0, 1) per batch.

    Each tᵢ is uniform on [t_min, t_max], and the batch covers the interval
    evenly, so a Monte Carlo estimate of ∫ over t (VDM's continuous-time
    loss) has a far smaller variance than with independent times.

    Example:
    >>> t = AntitheticTime().sample(4, schedules.get("vp"))

    Reference: Kingma et al., "Variational Diffusion Models", NeurIPS 2021, App. I.1.
    """

    name = "antithetic"

    def sample(self, batch_size, schedule, seed=None):
        offset = keras.random.uniform((), seed=seed)
        steps = ops.cast(ops.arange(batch_size), keras.config.floatx()) / ops.cast(batch_size, keras.config.floatx())
        fraction = ops.mod(offset + steps, 1.0)
        return schedule.t_min + (schedule.t_max - schedule.t_min) * fraction


_DISTRIBUTIONS = {cls.name: cls for cls in (UniformTime, LogNormalSigma, DiscreteTimes, AntitheticTime)}


def get(identifier):
    """A `NoiseLevelDistribution` from a name ("uniform", "log_normal", "discrete", "antithetic"), config, instance."""
    return resolve(identifier, _DISTRIBUTIONS, NoiseLevelDistribution, "noise_distribution")
