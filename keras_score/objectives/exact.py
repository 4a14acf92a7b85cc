"""Exact score matching over many noise levels: Hyvärinen's objective with the whole trace.

    J(s) = E_p[½‖s(x)‖² + tr ∇ₓs(x)]   (Hyvärinen 2005, Theorem 1)

The trace is computed exactly, as the d projections onto the scaled
coordinate axes √d·e_i: (1/d)·Σ_i (√d·e_i)ᵀ∇ₓs(√d·e_i) = Σ_i ∂s_i/∂x_i. That is
sliced score matching with variance reduction whose projections are the
whole basis instead of random vectors (`keras_score.objectives.sliced`), so
the loss is on the same scale as SSM and DSM and costs one denoiser call on
a batch d times larger: meant for small d.
"""

import math

import keras
from keras import ops

from keras_score.objectives.base import Objective
from keras_score.objectives.sliced import projected_score_matching, score_weight


@keras.saving.register_keras_serializable(package="keras_score")
class ExactScoreMatching(Objective):
    """Noise-conditional exact score matching, the trace of ∇ₓs computed in full.

    Per example, at t from `noise_distribution` and x_t = α·x₀ + σ·ε, with
    s = `denoiser.score(x_t, t, condition)`,

        λ(t)·(σ²/α)²·(2/d)·[½‖s‖² + tr ∇ₓs],

    the integrand of Hyvärinen's J for the perturbed data, on the scale of
    `SlicedScoreMatching` (whose expectation it is) and of
    `DenoisingScoreMatching` (whose expectation it is up to the constant
    λσ²/α²). The trace takes the derivatives of all d outputs, from one
    denoiser call on the batch repeated d times.

    Args:
        weighting: `Weighting` or name of λ(t) on the denoiser error ("snr",
            the default, is NCSN's σ² on the score).
        noise_distribution: `NoiseLevelDistribution` or name ("log_normal",
            "uniform", "discrete") of t.

    Example:
    >>> model = ScoreModel(MLP(), objective=ExactScoreMatching(weighting="snr"))

    Reference: Hyvärinen, "Estimation of Non-Normalized Statistical Models by
    Score Matching", JMLR 2005, Theorem 1; Song & Ermon, "Generative Modeling
    by Estimating Gradients of the Data Distribution", NeurIPS 2019
    (noise-conditional training, λ(σ) = σ²).
    """

    name = "exact_sm"

    def __init__(self, weighting="snr", noise_distribution="log_normal"):
        super().__init__(weighting, noise_distribution)

    def __call__(self, denoiser, x0, condition=None, seed=None, training=True):
        t, _, x_t = self.perturb(denoiser, x0, seed)
        data_shape = tuple(x0.shape[1:])
        dim = math.prod(data_shape)
        axes = ops.reshape(math.sqrt(dim) * ops.eye(dim, dtype=x0.dtype), (dim, 1) + data_shape)
        projections = ops.broadcast_to(axes, (dim, ops.shape(x0)[0]) + data_shape)
        weight = score_weight(self.weighting, t, denoiser.schedule, denoiser.parameterization.sigma_data, x0.dtype)
        return projected_score_matching(denoiser, x_t, t, condition, projections, True, weight, training)
