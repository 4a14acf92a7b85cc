"""Gradient guidance from the log-likelihood of a measurement, for inverse problems."""

import keras

from keras_score import backend
from keras_score.guidance.base import Guidance, add_to_score


@keras.saving.register_keras_serializable(package="keras_score")
class GradientGuidance(Guidance):
    """Adds scale·∇ₓ log p(y | x_t) to the score, for a measurement y of the data.

    The posterior score is ∇log p_t(x | y) = ∇log p_t(x) + ∇log p(y | x_t)
    (Song et al. 2021, Eq. 14); sampling with it draws from p(x₀ | y). Two
    ways to get the second term:

    - `through_denoiser=False`: `log_likelihood(x, t)` is log p(y | x_t = x)
      itself, exact where it is known in closed form (e.g. a linear-Gaussian
      measurement of a Gaussian prior);
    - `through_denoiser=True` (DPS, Chung et al. 2023): `log_likelihood(x0)`
      is log p(y | x₀), the measurement model, evaluated at the denoised
      estimate: ∇ₓ log p(y | x₀ = D(x, t)), differentiated through the
      denoiser; an approximation that costs one more denoiser evaluation
      and its backward pass per call.

    Functions see x in the sampler's space: for a `ScoreModel` with
    `normalize=True` that is the standardised space (apply
    `model.denormalize_data` inside to work in data units). They return one
    value per example, shape (batch,). Gradients come from the backend's
    autodiff (`keras_score.backend.gradient`).

    Args:
        log_likelihood: the differentiable log-likelihood, see above.
        scale: guidance scale (1 = the posterior).
        through_denoiser: evaluate `log_likelihood` at D(x, t) (DPS).

    Example:
    >>> A = ops.convert_to_tensor([[1.0, 0.0]]); y = 2.0; noise_std = 0.1
    >>> log_lik = lambda x0: -0.5 * ops.sum((x0 @ ops.transpose(A) - y) ** 2, axis=-1) / noise_std**2
    >>> samples = model.generate(500, guidance=GradientGuidance(log_lik, through_denoiser=True))

    References: Song et al., "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021, Sec. 5; Chung et al.,
    "Diffusion Posterior Sampling for General Noisy Inverse Problems", ICLR 2023.
    """

    name = "gradient"

    def __init__(self, log_likelihood, scale=1.0, through_denoiser=False):
        if not callable(log_likelihood):
            raise ValueError(f"`log_likelihood` must be callable; received {log_likelihood!r}.")
        self.log_likelihood = log_likelihood
        self.scale = float(scale)
        self.through_denoiser = bool(through_denoiser)

    def denoiser(self, denoise, schedule, conditions):
        if self.through_denoiser:

            def term(x, t):
                return self.scale * backend.gradient(lambda z: self.log_likelihood(denoise(z, t)), x)

        else:

            def term(x, t):
                return self.scale * backend.gradient(lambda z: self.log_likelihood(z, t), x)

        return add_to_score(denoise, schedule, term)

    def get_config(self):
        return {
            "log_likelihood": keras.saving.serialize_keras_object(self.log_likelihood),
            "scale": self.scale,
            "through_denoiser": self.through_denoiser,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["log_likelihood"] = keras.saving.deserialize_keras_object(config["log_likelihood"])
        return cls(**config)
