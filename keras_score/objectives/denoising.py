"""Denoising score matching over many noise levels.

The objective of NCSN, DDPM, score SDEs and EDM in one form (Vincent 2011;
Song & Ermon 2019, Eq. 2; Karras et al. 2022, Eq. 8):

    E_{t, x₀, ε} λ(t)·‖D(α·x₀ + σ·ε, t) − x₀‖²,

computed on the network output as λ·c_out²·‖F − target‖², which is the same
number without dividing by a c_out that may be tiny.
"""

import keras
from keras import ops

from keras_score.objectives.base import Objective
from keras_score.sde import expand_to


@keras.saving.register_keras_serializable(package="keras_score")
class DenoisingScoreMatching(Objective):
    """Weighted denoising score matching, λ(t)·c_out²·mean‖F − target‖² per example.

    Args:
        weighting: `Weighting` or name ("edm", "snr", "likelihood", "min_snr", "uniform").
        noise_distribution: `NoiseLevelDistribution` or name
            ("log_normal", "uniform", "discrete") of the training times t.

    Example:
    >>> model = ScoreModel(MLP(), objective=DenoisingScoreMatching(weighting="snr", noise_distribution="uniform"))

    Reference: Vincent, "A Connection Between Score Matching and Denoising
    Autoencoders", 2011; Karras et al., "Elucidating the Design Space of
    Diffusion-Based Generative Models", NeurIPS 2022, Eq. 8.
    """

    name = "dsm"

    def __call__(self, denoiser, x0, condition=None, seed=None, training=True):
        schedule, parameterization = denoiser.schedule, denoiser.parameterization
        t, noise, x_t = self.perturb(denoiser, x0, seed)
        alpha = expand_to(schedule.alpha(t), x0)
        sigma = expand_to(schedule.sigma(t), x0)
        output = denoiser.network_output(x_t, t, condition, training=training)
        target = parameterization.target(x0, noise, x_t, alpha, sigma)
        _, c_out = parameterization.coefficients(alpha, sigma)
        weight = self.weighting(t, schedule, parameterization.sigma_data)
        error = ops.square(c_out * (ops.cast(output, x0.dtype) - target))
        return weight * ops.mean(error, axis=tuple(range(1, len(x0.shape))))
