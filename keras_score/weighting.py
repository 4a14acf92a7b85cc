"""Loss weightings λ(t) of the denoising score-matching objective.

All weightings are expressed on the denoiser error, E λ(t)·‖D(x_t, t) − x₀‖².
Since the score error is α·(D − x₀)/σ², a weighting λ_s(t) on the score error
is λ(t) = λ_s(t)·α²/σ⁴ here. With c_out² folded in (see
`keras_score.losses`) the network sees λ(t)·c_out²·‖F − target‖².

| name       | λ(t) on ‖D − x₀‖²        | origin                                             |
|------------|---------------------------|----------------------------------------------------|
| snr        | α²/σ²                     | NCSN's σ² on the score (Song & Ermon 2019); DDPM's ε-MSE |
| likelihood | g(t)²·α²/σ⁴               | g² on the score: ELBO bound (Song et al. 2021b, Thm. 1) |
| edm        | (σ̃² + σ_d²)/(σ̃·σ_d)²     | Karras et al. 2022, Eq. 8, σ̃ = σ/α                 |
| min_snr    | min(α²/σ², γ)             | Hang et al. 2023, γ = 5                            |
| uniform    | 1                         | plain x₀-MSE                                       |
"""

import keras
from keras import ops

from keras_score.registry import Configurable, resolve
from keras_score.validation import check_positive_float


@keras.saving.register_keras_serializable(package="keras_score")
class Weighting(Configurable):
    """Base class: `weighting(t, schedule, sigma_data)` returns λ(t) on the denoiser error."""

    name = None

    def __call__(self, t, schedule, sigma_data):
        raise NotImplementedError


def _snr(t, schedule):
    return ops.exp(schedule.log_snr(t))


@keras.saving.register_keras_serializable(package="keras_score")
class SNRWeighting(Weighting):
    """λ = α²/σ²: NCSN's σ²-weighted score loss, equal to DDPM's ε-MSE."""

    name = "snr"

    def __call__(self, t, schedule, sigma_data):
        return _snr(t, schedule)


@keras.saving.register_keras_serializable(package="keras_score")
class LikelihoodWeighting(Weighting):
    """λ = g²·α²/σ⁴: the score loss weighted by g², which bounds the NLL (Song et al. 2021b)."""

    name = "likelihood"

    def __call__(self, t, schedule, sigma_data):
        return schedule.diffusion_squared(t) * _snr(t, schedule) / schedule.sigma(t) ** 2


@keras.saving.register_keras_serializable(package="keras_score")
class EDMWeighting(Weighting):
    """λ = (σ̃² + σ_d²)/(σ̃·σ_d)², σ̃ = σ/α (Karras et al. 2022, Eq. 8)."""

    name = "edm"

    def __call__(self, t, schedule, sigma_data):
        sigma_tilde2 = 1.0 / _snr(t, schedule)
        return (sigma_tilde2 + sigma_data**2) / (sigma_tilde2 * sigma_data**2)


@keras.saving.register_keras_serializable(package="keras_score")
class MinSNRWeighting(Weighting):
    """λ = min(α²/σ², γ) (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting").

    Args:
        gamma: the SNR clamp γ.
    """

    name = "min_snr"

    def __init__(self, gamma=5.0):
        self.gamma = check_positive_float(gamma, "gamma")

    def __call__(self, t, schedule, sigma_data):
        return ops.minimum(_snr(t, schedule), self.gamma)

    def get_config(self):
        return {"gamma": self.gamma}


@keras.saving.register_keras_serializable(package="keras_score")
class UniformWeighting(Weighting):
    """λ = 1: the plain mean squared error of the denoiser."""

    name = "uniform"

    def __call__(self, t, schedule, sigma_data):
        return ops.ones_like(ops.convert_to_tensor(t, dtype=keras.config.floatx()))


_WEIGHTINGS = {
    cls.name: cls
    for cls in (SNRWeighting, LikelihoodWeighting, EDMWeighting, MinSNRWeighting, UniformWeighting)
}


def get(identifier):
    """Returns a `Weighting` from a name ("snr", "likelihood", "edm", "min_snr", "uniform"), config or instance."""
    return resolve(identifier, _WEIGHTINGS, Weighting, "weighting")
