"""Sliced score matching over many noise levels, as NCSN trains it.

Score matching (Hyvärinen 2005, Theorem 1) fits a score s to ∇log p without
knowing p, through

    J(s) = E_p[½‖s(x)‖² + tr ∇ₓs(x)] = ½·E_p‖s − ∇log p‖² − ½·E_p‖∇log p‖².

Sliced score matching (Song, Garg, Shi & Ermon 2019) replaces the trace,
which costs d derivative passes, by projections onto random vectors v with
E[v·vᵀ] = I: E_v[vᵀ∇ₓ(vᵀs)] = tr ∇ₓs, one vector–Jacobian product per v.

    SSM:     vᵀ∇ₓ(vᵀs) + ½(vᵀs)²
    SSM-VR:  vᵀ∇ₓ(vᵀs) + ½‖s‖²     (the second term's expectation over v, in closed form)

Both are unbiased estimates of the integrand of J. As NCSN does (Song &
Ermon 2019, Sec. 4.2 and their `anneal_sliced_score_estimation_vr`), the
score matched is that of the perturbed data x_t = α·x₀ + σ·ε at noise levels
t drawn from a distribution, with λ(t) weighing each level.

Scale. This library's weightings λ(t) act on the denoiser error mean‖D − x₀‖²
over the d coordinates (`keras_score.weighting`), and D − x₀ = (σ²/α)·(s − ∇log
p(x_t | x₀)). The per-example loss here is therefore

    λ(t)·(σ²/α)²·(2/d)·[vᵀ∇ₓ(vᵀs) + ½(vᵀs)²],

whose expectation for any s is the denoising score-matching loss with the
same λ minus the constant λ·σ²/α² (Vincent 2011): the two objectives have the
same gradients in expectation, and one learning rate serves both. With λ =
"snr" (α²/σ²) the weight on the score loss is σ², NCSN's λ(σ) = σ².
"""

import math

import keras
from keras import ops

from keras_score import backend
from keras_score.objectives.base import Objective
from keras_score.validation import check_bool, check_choice, check_int

PROJECTIONS = ("rademacher", "sphere", "gaussian")


def projected_score_matching(denoiser, x_t, t, condition, projections, variance_reduction, weight, training):
    """The weighted score-matching loss of every example, its trace estimated by projections.

    The M projections of all examples share one call of the denoiser on a
    batch repeated M times and one vector–Jacobian product
    (`keras_score.backend.vector_jacobian_product`), which stays
    differentiable with respect to the network's weights. On TensorFlow a
    denoiser with Keras normalisation layers is refused, since TensorFlow's
    second derivatives through them are wrong
    (`keras_score.backend.check_second_derivatives`).

    Args:
        denoiser: the `Denoiser`; its `score` is s.
        x_t: perturbed data, shape (batch, ...).
        t: times, shape (batch,).
        condition: None or the condition dict (tensors with a leading batch axis).
        projections: v, shape (M, batch, ...), with E[v·vᵀ] = I.
        variance_reduction: use ½‖s‖² (SSM-VR) instead of ½(vᵀs)² (SSM).
        weight: λ(t)·(σ²/α)², shape (batch,).
        training: whether the network runs in training mode.

    Returns:
        Tensor of shape (batch,): weight·(2/d)·mean over the M projections of
        [vᵀ∇ₓ(vᵀs) + ½(vᵀs)²] (or + ½‖s‖²).
    """
    backend.check_second_derivatives(denoiser)
    num_projections = projections.shape[0]
    data_axes = tuple(range(1, len(x_t.shape)))
    dim = math.prod(x_t.shape[1:])

    def repeat(a):
        return ops.tile(a, (num_projections,) + (1,) * (len(a.shape) - 1))

    t_repeated = repeat(t)
    condition_repeated = None if condition is None else {k: repeat(v) for k, v in condition.items()}
    v = ops.reshape(ops.cast(projections, x_t.dtype), (-1,) + tuple(x_t.shape[1:]))

    def score(x):
        return ops.cast(denoiser.score(x, t_repeated, condition_repeated, training=training), x.dtype)

    s, jacobian_v = backend.vector_jacobian_product(score, repeat(x_t), v)
    trace = ops.sum(v * jacobian_v, axis=data_axes)  # vᵀ∇ₓ(vᵀs) = vᵀ(∇ₓs)v
    if variance_reduction:
        square = 0.5 * ops.sum(ops.square(s), axis=data_axes)
    else:
        square = 0.5 * ops.square(ops.sum(v * s, axis=data_axes))
    per_projection = ops.reshape(trace + square, (num_projections, -1))
    return weight * (2.0 / dim) * ops.mean(per_projection, axis=0)


def score_weight(weighting, t, schedule, sigma_data, dtype):
    """λ(t)·(σ²/α)²: a weighting of the denoiser error carried over to the score error."""
    t = ops.cast(t, dtype)
    return ops.cast(weighting(t, schedule, sigma_data), dtype) * ops.square(schedule.sigma(t) ** 2 / schedule.alpha(t))


@keras.saving.register_keras_serializable(package="keras_score")
class SlicedScoreMatching(Objective):
    """Noise-conditional sliced score matching (SSM, or SSM-VR with `variance_reduction`).

    Per example, at t from `noise_distribution` and x_t = α·x₀ + σ·ε, with
    s = `denoiser.score(x_t, t, condition)` and M projections v₁…v_M,

        λ(t)·(σ²/α)²·(2/d)·(1/M)·Σ_m [v_mᵀ∇ₓ(v_mᵀs) + ½(v_mᵀs)²]

    (SSM), or with ½‖s‖² in place of ½(v_mᵀs)² (SSM-VR). Both are unbiased
    for the score-matching loss J of the perturbed data; its expectation
    differs from that of `DenoisingScoreMatching` with the same weighting by
    λσ²/α², a constant (see the module docstring). One class serves both
    variants: SSM-VR is SSM with the projected square averaged over v in
    closed form, which needs E[vvᵀ] = I only, so it takes every projection
    distribution (the paper uses Gaussian vectors for SSM-VR).

    Args:
        projections: the distribution of v: "rademacher" (entries ±1),
            "sphere" (uniform on the sphere of radius √d) or "gaussian"
            (N(0, I)); each has E[vvᵀ] = I.
        num_projections: M, projections per example (the denoiser runs on a
            batch M times larger).
        variance_reduction: SSM-VR's ½‖s‖² instead of ½(vᵀs)².
        weighting: `Weighting` or name of λ(t) on the denoiser error ("snr",
            the default, is NCSN's σ² on the score).
        noise_distribution: `NoiseLevelDistribution` or name ("log_normal",
            "uniform", "discrete") of t. NCSN's is "uniform" on a
            `VESchedule` (noise levels uniform in log σ).

    Example:
    >>> model = ScoreModel(MLP(), schedule="ve", objective=SlicedScoreMatching(projections="gaussian", variance_reduction=True))

    Reference: Song, Garg, Shi & Ermon, "Sliced Score Matching: A Scalable
    Approach to Density and Score Estimation", UAI 2019 (SSM and SSM-VR);
    Song & Ermon, "Generative Modeling by Estimating Gradients of the Data
    Distribution", NeurIPS 2019 (noise-conditional training, λ(σ) = σ²).
    """

    name = "ssm"

    def __init__(
        self,
        projections="rademacher",
        num_projections=1,
        variance_reduction=False,
        weighting="snr",
        noise_distribution="log_normal",
    ):
        self.projections = check_choice(projections, "projections", PROJECTIONS)
        self.num_projections = check_int(num_projections, "num_projections", minimum=1)
        self.variance_reduction = check_bool(variance_reduction, "variance_reduction")
        super().__init__(weighting, noise_distribution)

    def sample_projections(self, shape, seed=None, dtype="float32"):
        """M projection vectors per example with E[vvᵀ] = I.

        Args:
            shape: (batch, ...), the shape of the data.
            seed: a `keras.random.SeedGenerator`, or None.
            dtype: the dtype of the vectors.

        Returns:
            Tensor of shape (M, batch, ...).
        """
        shape = (self.num_projections, *shape)
        if self.projections == "rademacher":
            return ops.cast(2 * keras.random.randint(shape, 0, 2, seed=seed) - 1, dtype)
        v = keras.random.normal(shape, seed=seed, dtype=dtype)
        if self.projections == "gaussian":
            return v
        data_axes = tuple(range(2, len(shape)))
        dim = math.prod(shape[2:])
        return v * ops.rsqrt(ops.sum(ops.square(v), axis=data_axes, keepdims=True) / dim)

    def __call__(self, denoiser, x0, condition=None, seed=None, training=True):
        t, _, x_t = self.perturb(denoiser, x0, seed)
        projections = self.sample_projections(ops.shape(x0), seed, x0.dtype)
        weight = score_weight(self.weighting, t, denoiser.schedule, denoiser.parameterization.sigma_data, x0.dtype)
        return projected_score_matching(
            denoiser, x_t, t, condition, projections, self.variance_reduction, weight, training
        )

    def get_config(self):
        return {
            **super().get_config(),
            "projections": self.projections,
            "num_projections": self.num_projections,
            "variance_reduction": self.variance_reduction,
        }
