"""Parameterizations: how a raw network output F becomes the denoiser D(x, t).

Every parameterization here has the form (Karras et al. 2022, Eq. 7)

    D(x, t) = c_skip(t)·x + c_out(t)·F(c_in(t)·x, c_noise(t)),

written for x = α·x₀ + σ·ε. The network is trained to output the target
(x₀ − c_skip·x)/c_out, so its error times c_out is exactly the denoiser's
error. All parameterizations share c_in = 1/sqrt(α²σ_data² + σ²), which gives
the network inputs of unit variance, and c_noise = ¼·log(σ/α) = −λ/8, which
maps every schedule's noise levels into the same range (EDM's choice,
Karras et al. 2022, Table 1, extended to α ≠ 1).

| name    | network predicts          | c_skip              | c_out                        |
|---------|---------------------------|---------------------|------------------------------|
| epsilon | ε (DDPM)                  | 1/α                 | −σ/α                         |
| x0      | x₀                        | 0                   | 1                            |
| v       | α·ε − σ·x₀ (Salimans & Ho)| α/(α²+σ²)           | −σ/(α²+σ²)                   |
| score   | ∇log p = −ε/σ (NCSN)      | 1/α                 | σ²/α                         |
| edm     | F (Karras et al.)         | σ_d²/(α(σ̃²+σ_d²))   | σ̃·σ_d/sqrt(σ̃²+σ_d²), σ̃=σ/α |
"""

import keras
from keras import ops

from keras_score.registry import Configurable, resolve
from keras_score.validation import check_positive_float


@keras.saving.register_keras_serializable(package="keras_score")
class Parameterization(Configurable):
    """Base class: maps network outputs to the denoiser and back.

    Args:
        sigma_data: standard deviation of the (normalised) data, used by the
            input scaling c_in and by EDM's preconditioning.
    """

    name = None

    def __init__(self, sigma_data=1.0):
        self.sigma_data = check_positive_float(sigma_data, "sigma_data")

    def coefficients(self, alpha, sigma):
        """Returns (c_skip, c_out) at noise level (α, σ)."""
        raise NotImplementedError

    def c_in(self, alpha, sigma):
        return ops.rsqrt(alpha**2 * self.sigma_data**2 + sigma**2)

    def c_noise(self, alpha, sigma):
        return 0.25 * (ops.log(sigma) - ops.log(alpha))

    def denoise(self, x, output, alpha, sigma):
        """D = c_skip·x + c_out·F."""
        c_skip, c_out = self.coefficients(alpha, sigma)
        return c_skip * x + c_out * output

    def target(self, x0, noise, x, alpha, sigma):
        """The network's training target for clean data x₀, noise ε and x = αx₀ + σε."""
        c_skip, c_out = self.coefficients(alpha, sigma)
        return (x0 - c_skip * x) / c_out

    def get_config(self):
        return {"sigma_data": self.sigma_data}


@keras.saving.register_keras_serializable(package="keras_score")
class EpsilonPrediction(Parameterization):
    """The network predicts the noise ε (Ho et al. 2020)."""

    name = "epsilon"

    def coefficients(self, alpha, sigma):
        return 1.0 / alpha, -sigma / alpha

    def target(self, x0, noise, x, alpha, sigma):
        return noise


@keras.saving.register_keras_serializable(package="keras_score")
class DataPrediction(Parameterization):
    """The network predicts the clean data x₀ directly."""

    name = "x0"

    def coefficients(self, alpha, sigma):
        return ops.zeros_like(sigma), ops.ones_like(sigma)

    def target(self, x0, noise, x, alpha, sigma):
        return x0


@keras.saving.register_keras_serializable(package="keras_score")
class VelocityPrediction(Parameterization):
    """The network predicts v = α·ε − σ·x₀ (Salimans & Ho 2022, Sec. 4)."""

    name = "v"

    def coefficients(self, alpha, sigma):
        norm = alpha**2 + sigma**2
        return alpha / norm, -sigma / norm

    def target(self, x0, noise, x, alpha, sigma):
        return alpha * noise - sigma * x0


@keras.saving.register_keras_serializable(package="keras_score")
class ScorePrediction(Parameterization):
    """The network predicts the score ∇ₓ log p_t(x) = −ε/σ (Song & Ermon 2019)."""

    name = "score"

    def coefficients(self, alpha, sigma):
        return 1.0 / alpha, sigma**2 / alpha

    def target(self, x0, noise, x, alpha, sigma):
        return -noise / sigma


@keras.saving.register_keras_serializable(package="keras_score")
class EDMPreconditioning(Parameterization):
    """EDM preconditioning (Karras et al. 2022, Eq. 7 and Table 1), for any α.

    With σ̃ = σ/α the scaled input x/α = x₀ + σ̃·ε is an EDM variable, so
    c_skip = σ_d²/(σ̃² + σ_d²) and c_out = σ̃·σ_d/sqrt(σ̃² + σ_d²) act on it.

    Example:
    >>> p = EDMPreconditioning(sigma_data=0.5)
    >>> c_skip, c_out = p.coefficients(ops.ones(()), ops.ones(()))
    """

    name = "edm"

    def coefficients(self, alpha, sigma):
        sigma_tilde = sigma / alpha
        norm = sigma_tilde**2 + self.sigma_data**2
        return self.sigma_data**2 / (norm * alpha), sigma_tilde * self.sigma_data * ops.rsqrt(norm)


_PARAMETERIZATIONS = {
    cls.name: cls
    for cls in (
        EpsilonPrediction,
        DataPrediction,
        VelocityPrediction,
        ScorePrediction,
        EDMPreconditioning,
    )
}


def get(identifier, sigma_data=1.0):
    """Returns a `Parameterization` from a name ("epsilon", "x0", "v", "score", "edm"), config or instance."""
    return resolve(
        identifier, _PARAMETERIZATIONS, Parameterization, "parameterization", sigma_data=sigma_data
    )
