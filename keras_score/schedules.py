"""Noise schedules: the pair α(t), σ(t) with x_t = α(t)·x₀ + σ(t)·ε.

Every Gaussian diffusion in keras_score is described by one `NoiseSchedule`.
The forward SDE, its reverse and its probability-flow ODE are derived from it
in `keras_score.sde`; samplers place their steps with its log-SNR and inverse.

Reference: Song et al., "Score-Based Generative Modeling through Stochastic
Differential Equations", ICLR 2021 (VE, VP and sub-VP SDEs, Eqs. 9-11);
Nichol & Dhariwal 2021 (cosine); Karras et al. 2022 (EDM, σ(t) = t).
"""

import math

import keras
from keras import ops

from keras_score.registry import Configurable, resolve
from keras_score.validation import check_float, check_positive_float

_PACKAGE = "keras_score"


def _as_tensor(t):
    return ops.convert_to_tensor(t, dtype=keras.config.floatx())


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NoiseSchedule(Configurable):
    """Base class: α(t) and σ(t) on t ∈ [t_min, t_max] and what follows.

    Subclasses implement `log_alpha`, `sigma`, their time derivatives
    `dlog_alpha_dt` and `dsigma_dt`, and `t_from_log_snr`. Everything else
    (log-SNR, SDE drift and diffusion coefficients) is derived here, so a new
    schedule is five short formulas.

    Args:
        t_min: smallest time used in training and sampling.
        t_max: largest time; the prior lives at `t_max`.
    """

    def __init__(self, t_min, t_max):
        self.t_min = check_float(t_min, "t_min")
        self.t_max = check_float(t_max, "t_max", minimum=self.t_min, exclusive_minimum=True)

    def log_alpha(self, t):
        raise NotImplementedError

    def sigma(self, t):
        raise NotImplementedError

    def dlog_alpha_dt(self, t):
        raise NotImplementedError

    def dsigma_dt(self, t):
        raise NotImplementedError

    def t_from_log_snr(self, log_snr):
        """Inverse of `log_snr`: the time at which log(α²/σ²) = `log_snr`."""
        raise NotImplementedError

    def alpha(self, t):
        return ops.exp(self.log_alpha(t))

    def log_snr(self, t):
        """λ(t) = log(α(t)² / σ(t)²), decreasing in t."""
        return 2.0 * self.log_alpha(t) - 2.0 * ops.log(self.sigma(t))

    def dlog_snr_dt(self, t):
        """dλ/dt = 2·(d log α/dt − (dσ/dt)/σ), negative; −dλ/dt·e^λ weighs the continuous-time ELBO."""
        return 2.0 * (self.dlog_alpha_dt(t) - self.dsigma_dt(t) / self.sigma(t))

    @property
    def weight_layers(self):
        """Keras layers holding the schedule's weights (a learned schedule's γ); the `Denoiser` tracks them."""
        return ()

    def frozen_copy(self):
        """This schedule with its weights copied and frozen (itself when it has none), e.g. for a classifier."""
        return self

    def signature(self):
        """What two schedules must share to be the same process (their config; a learned one's γ by its form)."""
        return keras.saving.serialize_keras_object(self)

    def drift_coefficient(self, t):
        """f(t) = d log α / dt, the drift of dx = f(t)·x dt + g(t) dw."""
        return self.dlog_alpha_dt(t)

    def diffusion_squared(self, t):
        """g(t)² = dσ²/dt − 2·f(t)·σ², the squared diffusion coefficient."""
        sigma = self.sigma(t)
        return 2.0 * sigma * self.dsigma_dt(t) - 2.0 * self.dlog_alpha_dt(t) * sigma**2

    def get_config(self):
        return {"t_min": self.t_min, "t_max": self.t_max}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VESchedule(NoiseSchedule):
    """Variance exploding: α = 1, σ(t) = σ_min·(σ_max/σ_min)^t (NCSN's geometric ladder).

    The continuous limit of the geometric σ ladder of NCSN; its SDE is
    dx = σ(t)·sqrt(2·log(σ_max/σ_min)) dw (Song et al. 2021, Eq. 30).

    Args:
        sigma_min: smallest noise level σ(0).
        sigma_max: largest noise level σ(1); pick about the largest distance
            between two training points.

    Example:
    >>> schedule = VESchedule(sigma_min=0.01, sigma_max=50.0)
    >>> float(schedule.sigma(1.0))
    50.0
    """

    def __init__(self, sigma_min=0.01, sigma_max=50.0, t_min=0.0, t_max=1.0):
        super().__init__(t_min, t_max)
        self.sigma_min = check_positive_float(sigma_min, "sigma_min")
        self.sigma_max = check_float(sigma_max, "sigma_max", minimum=self.sigma_min, exclusive_minimum=True)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def log_alpha(self, t):
        return ops.zeros_like(_as_tensor(t))

    def sigma(self, t):
        return self.sigma_min * ops.exp(self._log_ratio * _as_tensor(t))

    def dlog_alpha_dt(self, t):
        return ops.zeros_like(_as_tensor(t))

    def dsigma_dt(self, t):
        return self._log_ratio * self.sigma(t)

    def t_from_log_snr(self, log_snr):
        log_sigma = -0.5 * _as_tensor(log_snr)
        return (log_sigma - math.log(self.sigma_min)) / self._log_ratio

    def get_config(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, **super().get_config()}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VPSchedule(NoiseSchedule):
    """Variance preserving with linear β(t) (DDPM, VP-SDE).

    β(t) = β_min + t·(β_max − β_min), log α(t) = −¼t²(β_max − β_min) − ½t·β_min,
    σ² = 1 − α². The SDE is dx = −½β(t)x dt + sqrt(β(t)) dw (Song et al. 2021,
    Eq. 11); with β_min = 0.1, β_max = 20 it is the limit of DDPM's 1000 steps.

    Args:
        beta_min: β(0).
        beta_max: β(1).

    Example:
    >>> schedule = VPSchedule()
    >>> round(float(schedule.alpha(1.0) ** 2 + schedule.sigma(1.0) ** 2), 6)
    1.0
    """

    def __init__(self, beta_min=0.1, beta_max=20.0, t_min=1e-3, t_max=1.0):
        super().__init__(t_min, t_max)
        self.beta_min = check_float(beta_min, "beta_min", minimum=0.0)
        self.beta_max = check_float(beta_max, "beta_max", minimum=self.beta_min, exclusive_minimum=True)

    def beta(self, t):
        return self.beta_min + _as_tensor(t) * (self.beta_max - self.beta_min)

    def log_alpha(self, t):
        t = _as_tensor(t)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def sigma(self, t):
        return ops.sqrt(-ops.expm1(2.0 * self.log_alpha(t)))

    def dlog_alpha_dt(self, t):
        return -0.5 * self.beta(t)

    def dsigma_dt(self, t):
        sigma = self.sigma(t)
        return -ops.exp(2.0 * self.log_alpha(t)) * self.dlog_alpha_dt(t) / sigma

    def _t_from_log_alpha(self, log_alpha):
        # Root of ¼Δ·t² + ½β_min·t + log α = 0 with Δ = β_max − β_min.
        delta = self.beta_max - self.beta_min
        disc = 0.25 * self.beta_min**2 - delta * log_alpha
        return (ops.sqrt(disc) - 0.5 * self.beta_min) / (0.5 * delta)

    def t_from_log_snr(self, log_snr):
        # α² = sigmoid(λ)  ⇒  log α = −½·softplus(−λ).
        return self._t_from_log_alpha(-0.5 * ops.softplus(-_as_tensor(log_snr)))

    def get_config(self):
        return {"beta_min": self.beta_min, "beta_max": self.beta_max, **super().get_config()}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SubVPSchedule(VPSchedule):
    """Sub-variance preserving: α as in VP, σ(t) = 1 − α(t)².

    Its SDE dx = −½β(t)x dt + sqrt(β(t)(1 − e^{−2∫β})) dw has a diffusion
    bounded by the VP one (Song et al. 2021, Eq. 12).

    Example:
    >>> schedule = SubVPSchedule()
    >>> bool(schedule.sigma(0.5) < VPSchedule().sigma(0.5))
    True
    """

    def sigma(self, t):
        return -ops.expm1(2.0 * self.log_alpha(t))

    def dsigma_dt(self, t):
        return -2.0 * ops.exp(2.0 * self.log_alpha(t)) * self.dlog_alpha_dt(t)

    def t_from_log_snr(self, log_snr):
        # r = α/σ = α/(1 − α²)  ⇒  α = 2r / (1 + sqrt(1 + 4r²)).
        r = ops.exp(0.5 * _as_tensor(log_snr))
        alpha = 2.0 * r / (1.0 + ops.sqrt(1.0 + 4.0 * r**2))
        return self._t_from_log_alpha(ops.log(alpha))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CosineSchedule(NoiseSchedule):
    """Cosine schedule: α(t) = cos(φ(t))/cos(φ(0)), φ(t) = (t + s)/(1 + s)·π/2.

    σ² = 1 − α². The continuous form of Nichol & Dhariwal's ᾱ_t (2021, Eq. 17);
    `t_max` stops just short of t = 1 where α = 0 and the log-SNR is −∞.

    Args:
        s: small offset that keeps σ from vanishing too fast near t = 0.

    Example:
    >>> schedule = CosineSchedule()
    >>> float(schedule.alpha(0.0))
    1.0
    """

    def __init__(self, s=0.008, t_min=1e-3, t_max=0.999):
        super().__init__(t_min, t_max)
        self.s = check_float(s, "s", minimum=0.0)
        self._cos_phi0 = math.cos(self.s / (1.0 + self.s) * math.pi / 2)

    def _phi(self, t):
        return (_as_tensor(t) + self.s) / (1.0 + self.s) * (math.pi / 2)

    def log_alpha(self, t):
        return ops.log(ops.cos(self._phi(t)) / self._cos_phi0)

    def sigma(self, t):
        return ops.sqrt(-ops.expm1(2.0 * self.log_alpha(t)))

    def dlog_alpha_dt(self, t):
        return -ops.tan(self._phi(t)) * (math.pi / 2) / (1.0 + self.s)

    def dsigma_dt(self, t):
        return -ops.exp(2.0 * self.log_alpha(t)) * self.dlog_alpha_dt(t) / self.sigma(t)

    def t_from_log_snr(self, log_snr):
        alpha = ops.sqrt(ops.sigmoid(_as_tensor(log_snr)))
        phi = ops.arccos(alpha * self._cos_phi0)
        return phi * 2.0 * (1.0 + self.s) / math.pi - self.s

    def get_config(self):
        return {"s": self.s, **super().get_config()}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EDMSchedule(NoiseSchedule):
    """EDM: α = 1, σ(t) = t on [σ_min, σ_max] (Karras et al. 2022, Table 1).

    The probability-flow ODE is then dx/dt = (x − D(x, t))/t.

    Example:
    >>> schedule = EDMSchedule()
    >>> float(schedule.sigma(3.0))
    3.0
    """

    def __init__(self, sigma_min=0.002, sigma_max=80.0):
        self.sigma_min = check_positive_float(sigma_min, "sigma_min")
        self.sigma_max = check_float(sigma_max, "sigma_max", minimum=self.sigma_min, exclusive_minimum=True)
        super().__init__(self.sigma_min, self.sigma_max)

    def log_alpha(self, t):
        return ops.zeros_like(_as_tensor(t))

    def sigma(self, t):
        return _as_tensor(t)

    def dlog_alpha_dt(self, t):
        return ops.zeros_like(_as_tensor(t))

    def dsigma_dt(self, t):
        return ops.ones_like(_as_tensor(t))

    def t_from_log_snr(self, log_snr):
        return ops.exp(-0.5 * _as_tensor(log_snr))

    def get_config(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


_SCHEDULES = {
    "ve": VESchedule,
    "vp": VPSchedule,
    "sub_vp": SubVPSchedule,
    "cosine": CosineSchedule,
    "edm": EDMSchedule,
}


def get(identifier):
    """Returns a `NoiseSchedule` from a name, a config dict or an instance.

    Args:
        identifier: one of "ve", "vp", "sub_vp", "cosine", "edm", "learned"
            (`keras_score.learned_schedules.LearnedSchedule`, VDM's), a dict
            produced by `keras.saving.serialize_keras_object`, or a schedule.

    Returns:
        A `NoiseSchedule` instance.

    Example:
    >>> get("vp")
    VPSchedule(beta_min=0.1, beta_max=20.0, t_min=0.001, t_max=1.0)
    """
    from keras_score.learned_schedules import LearnedSchedule  # it imports this module

    return resolve(identifier, {**_SCHEDULES, "learned": LearnedSchedule}, NoiseSchedule, "schedule")
