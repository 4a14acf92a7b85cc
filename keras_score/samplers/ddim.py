"""DDIM (Song, Meng & Ermon 2021) for any schedule α(t), σ(t)."""

import keras
from keras import ops

from keras_score.samplers.base import Sampler
from keras_score.sde import expand_to
from keras_score.validation import check_float


def snr_ratio_complement(schedule, t_cur, t_next):
    """1 − SNR(t_cur)/SNR(t_next) = −expm1(λ(t_cur) − λ(t_next)), in (0, 1].

    With SNR = α²/σ² and t_next < t_cur, σ(t_cur)²·(this) is the variance of
    the forward transition x_{t_cur} | x_{t_next}, and σ(t_next)²·(this) the
    variance of the posterior x_{t_next} | x_{t_cur}, x₀. It is 1 where
    σ(t_next) = 0 (λ = +∞), and accurate for small steps.
    """
    return -ops.expm1(schedule.log_snr(t_cur) - schedule.log_snr(t_next))


@keras.saving.register_keras_serializable(package="keras_score")
class DDIM(Sampler):
    """Denoising diffusion implicit models, generalized to any α/σ schedule.

    Song, Meng & Ermon (2021), Eq. 12, with x̂₀ = D(x, t) and
    ε̂ = (x − α_t·x̂₀)/σ_t, stepping from t to s < t:

        x_s = α_s·x̂₀ + sqrt(σ_s² − c²)·ε̂ + c·z,
        c = η·σ_s·sqrt(1 − SNR_t/SNR_s),   SNR = α²/σ².

    c is Eq. 16's σ_t(η) = η·sqrt((1 − ᾱ_s)/(1 − ᾱ_t))·sqrt(1 − ᾱ_t/ᾱ_s)
    written for any schedule (for VP, ᾱ = α² and σ² = 1 − ᾱ give exactly
    Eq. 16). η = 0 is deterministic, a first-order solver of the
    probability-flow ODE (exact for its linear part); η = 1 samples the exact
    Gaussian posterior q(x_s | x_t, x₀ = x̂₀), i.e. DDPM ancestral sampling
    (Ho et al. 2020, Eqs. 6-7). A step landing at σ = 0 returns x̂₀.

    Args:
        eta: η in [0, 1], the fraction of the posterior noise kept.

    Example:
    >>> x = DDIM(eta=0.0).sample(denoise, x_T, schedule, steps=50, time_grid="uniform")

    Reference: Song, Meng & Ermon, "Denoising Diffusion Implicit Models",
    ICLR 2021, Eqs. 12 and 16.
    """

    name = "ddim"

    def __init__(self, eta=0.0):
        self.eta = check_float(eta, "eta", minimum=0.0, maximum=1.0)

    @property
    def stochastic(self):
        return self.eta > 0

    def step(self, denoise, schedule, x, t_cur, t_next, state, noise, final):
        denoised = denoise(x, t_cur)
        alpha_cur = expand_to(schedule.alpha(t_cur), x)
        sigma_cur = expand_to(schedule.sigma(t_cur), x)
        alpha_next = expand_to(schedule.alpha(t_next), x)
        sigma_next = expand_to(schedule.sigma(t_next), x)
        fraction = expand_to(snr_ratio_complement(schedule, t_cur, t_next), x)
        eps = (x - alpha_cur * denoised) / sigma_cur
        # sqrt(σ_s² − c²) = σ_s·sqrt(1 − η²·(1 − SNR_t/SNR_s)).
        x_next = alpha_next * denoised + sigma_next * ops.sqrt(1.0 - self.eta**2 * fraction) * eps
        if self.stochastic and not final:  # c = 0 where σ_s = 0.
            x_next = x_next + self.eta * sigma_next * ops.sqrt(fraction) * noise()
        return x_next, state

    def get_config(self):
        return {"eta": self.eta}
