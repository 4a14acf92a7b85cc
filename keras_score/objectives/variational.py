"""The variational bound of a diffusion model: VDM's continuous-time negative ELBO, per dimension.

−log p(x) ≤ L_recon + L_prior + L_diffusion (Kingma et al. 2021, Eqs. 11-17):

- diffusion: ½·∫ −λ'(t)·e^{λ(t)}·‖x₀ − D(x_t, t)‖² dt over [t_min, t_max],
  estimated at uniform (by default antithetic) times; with λ = −γ and the
  ε-error it is VDM's ½·γ'(t)·‖ε − ε̂‖², and −λ'·e^λ is the likelihood
  weighting g²·SNR/σ² of `keras_score.weighting` for any schedule, so the
  same loss trains a fixed or a learned schedule;
- prior: KL(q(x_T | x₀) ‖ N(0, σ(T)²·I)) = ½·e^{λ(T)}·‖x₀‖², the prior the
  samplers and `log_prob` start from;
- reconstruction at t_min, from z₀ = α₀·x₀ + σ₀·ε₀: for continuous data the
  Gaussian decoder N(x; z₀/α₀, e^{−λ₀}), whose expected negative
  log-density is ½·(1 + log 2π − λ₀) per dimension; for data on L levels
  VDM's per-pixel categorical, p(x = k | z₀) ∝ exp(−½·e^{λ₀}·(z₀/α₀ − x_k)²).

The sum is divided by the number of dimensions D: the loss is in nats per
dimension of the model's normalised space (for discrete data, of the data
itself), and `ScoreModel`'s `fit` reports it in bits per dimension as
"bits_per_dim".
"""

import math

import keras
import numpy as np
from keras import ops

from keras_score.objectives.denoising import DenoisingScoreMatching
from keras_score.validation import check_bool, check_float, check_int


@keras.saving.register_keras_serializable(package="keras_score")
class VariationalBound(DenoisingScoreMatching):
    """VDM's continuous-time negative ELBO in nats per dimension: reconstruction + prior + diffusion.

    The diffusion term is `DenoisingScoreMatching` with the likelihood
    weighting at uniform (antithetic) times, times ½·(t_max − t_min).

    For discrete data, give `levels`: the data must lie on `levels` evenly
    spaced values from `low` to `high` in the model's normalised space, as
    `keras_score.normalization.PixelScaling(levels)` (the default of
    `keras_score.images.ImageModel`) puts pixel levels on [−1, 1]; the
    reconstruction term is then the categorical decoder over those values
    and the bound is on −log P(x) of the discrete data. Without `levels`
    the data is continuous and the bound is on −log p(x) in the normalised
    space (add log|det| of the normalisation for data units, as
    `bits_per_dim` does).

    Args:
        levels: None for continuous data, or the number L ≥ 2 of values of
            each dimension (17 for scikit-learn's digits, 256 for 8-bit images).
        low: the normalised value of level 0.
        high: the normalised value of level L − 1.
        antithetic: draw the batch's times antithetically
            (`keras_score.noise_levels.AntitheticTime`, VDM's low-discrepancy
            sampler) rather than independently.

    Example:
    ```python
    model = ScoreModel(UNet(channels=32), schedule=LearnedSchedule(), parameterization="epsilon",
                       normalize=PixelScaling(17), objective=VariationalBound(levels=17))
    model.compile(optimizer="adam")
    model.fit(images, epochs=10)  # logs loss and bits_per_dim
    ```

    Reference: Kingma, Salimans, Poole & Ho, "Variational Diffusion Models",
    NeurIPS 2021, Eqs. 11-17 and App. C (google-research/vdm `model_vdm.py`).
    """

    name = "vdm"
    is_likelihood_bound = True

    def __init__(self, levels=None, low=-1.0, high=1.0, antithetic=True):
        self.antithetic = check_bool(antithetic, "antithetic")
        super().__init__(weighting="likelihood", noise_distribution="antithetic" if self.antithetic else "uniform")
        self.levels = None if levels is None else check_int(levels, "levels", minimum=2)
        self.low = check_float(low, "low")
        self.high = check_float(high, "high", minimum=self.low, exclusive_minimum=True)

    def __call__(self, denoiser, x0, condition=None, seed=None, training=True):
        schedule = denoiser.schedule
        dims = float(np.prod(x0.shape[1:]))
        # DSM with the likelihood weighting at uniform times is the per-dimension mean of the integrand.
        per_dimension = super().__call__(denoiser, x0, condition, seed, training)
        diffusion = 0.5 * (schedule.t_max - schedule.t_min) * per_dimension
        axes = tuple(range(1, len(x0.shape)))
        prior = 0.5 * ops.exp(schedule.log_snr(schedule.t_max)) * ops.sum(ops.square(x0), axes)
        return (self.reconstruction(schedule, x0, seed) + prior) / dims + diffusion

    def reconstruction(self, schedule, x0, seed=None):
        """−log p(x₀ | z₀) of each example, summed over dimensions (an expectation for continuous data).

        Args:
            schedule: the `NoiseSchedule`; z₀ is drawn at its t_min.
            x0: clean data in the normalised space, shape (batch, ...).
            seed: a `keras.random.SeedGenerator` for ε₀ (discrete data).

        Returns:
            Tensor of shape (batch,).
        """
        axes = tuple(range(1, len(x0.shape)))
        log_snr = ops.cast(schedule.log_snr(schedule.t_min), x0.dtype)
        if self.levels is None:
            per_dimension = 0.5 * (1.0 + math.log(2.0 * math.pi) - log_snr)
            return ops.sum(ops.ones_like(x0), axes) * per_dimension
        values = ops.linspace(self.low, self.high, self.levels, dtype=x0.dtype)
        step = (self.high - self.low) / (self.levels - 1)
        index = ops.cast(ops.clip(ops.round((x0 - self.low) / step), 0, self.levels - 1), "int32")
        rescaled = x0 + ops.exp(-0.5 * log_snr) * keras.random.normal(ops.shape(x0), seed=seed, dtype=x0.dtype)
        logits = -0.5 * ops.square((ops.expand_dims(rescaled, -1) - values) * ops.exp(0.5 * log_snr))
        log_probs = ops.log_softmax(logits, axis=-1)
        chosen = ops.sum(log_probs * ops.one_hot(index, self.levels, dtype=x0.dtype), axis=-1)
        return -ops.sum(chosen, axes)

    def get_config(self):
        return {"levels": self.levels, "low": self.low, "high": self.high, "antithetic": self.antithetic}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
