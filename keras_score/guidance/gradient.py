"""Gradient guidance from the log-likelihood of a measurement, for inverse problems."""

import keras
import numpy as np
from keras import ops

from keras_score.guidance.base import Guidance, add_gradient_to_score
from keras_score.validation import check_bool, check_float


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

    With `measurements`, the function also receives the batch's measurements
    y as its last argument, `log_likelihood(x, t, y)` or `log_likelihood(x0, y)`.
    They travel as tensors (`prepare` gives "measurements"), as does the
    scale ("scale", shape (num_samples,)), so one compiled loop serves every
    measurement and every scale; the graph depends only on the function,
    `through_denoiser` and whether measurements are given (`signature`).
    Without `measurements`, y lives inside the function.

    Functions see x in the sampler's space: for a `ScoreModel` with
    `normalize=True` that is the standardised space (apply
    `model.denormalize_data` inside to work in data units). The measurements
    are in their own units, given to the function as they are: they are
    never standardised. Functions return one value per example, shape
    (batch,). Gradients come from the backend's autodiff
    (`keras_score.backend.gradient`).

    Args:
        log_likelihood: the differentiable log-likelihood, see above.
        scale: guidance scale (1 = the posterior).
        through_denoiser: evaluate `log_likelihood` at D(x, t) (DPS).
        measurements: None, or the measurements y: shape
            (num_samples, *measurement_shape) with one row per sample, or
            (1, *measurement_shape) for one measurement shared by all
            samples; a scalar is one shared scalar measurement (the function
            then sees y of shape (batch,)). Must be finite.

    Example:
    >>> A = ops.convert_to_tensor([[1.0, 0.0]]); noise_std = 0.1
    >>> log_lik = lambda x0, y: -0.5 * ops.sum((x0 @ ops.transpose(A) - y) ** 2, axis=-1) / noise_std**2
    >>> y = np.array([[2.0]])  # one measurement A·x₀ + noise, shared by all samples
    >>> guidance = GradientGuidance(log_lik, through_denoiser=True, measurements=y)
    >>> samples = model.generate(500, guidance=guidance)

    References: Song et al., "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021, Sec. 5; Chung et al.,
    "Diffusion Posterior Sampling for General Noisy Inverse Problems", ICLR 2023.
    """

    name = "gradient"

    def __init__(self, log_likelihood, scale=1.0, through_denoiser=False, measurements=None):
        if not callable(log_likelihood):
            raise ValueError(f"`log_likelihood` must be callable; received {log_likelihood!r}.")
        self.log_likelihood = log_likelihood
        self.scale = check_float(scale, "scale")
        self.through_denoiser = check_bool(through_denoiser, "through_denoiser")
        self.measurements = None
        if measurements is not None:
            self.measurements = np.asarray(measurements, dtype="float32")
            if self.measurements.ndim == 0:
                self.measurements = self.measurements[None]
            if not np.all(np.isfinite(self.measurements)):
                raise ValueError(
                    f"`measurements` must be finite; received {int(np.sum(~np.isfinite(self.measurements)))} "
                    "NaN or Inf values."
                )

    @property
    def signature(self):
        """(class, id of `log_likelihood`, `through_denoiser`, whether measurements are given)."""
        return (self._class_path(), id(self.log_likelihood), self.through_denoiser, self.measurements is not None)

    def prepare(self, num_samples, data_shape, labels=None, normalize=None):
        conditions = {"scale": np.full((num_samples,), self.scale, dtype="float32")}
        if self.measurements is not None:
            if self.measurements.shape[0] not in (1, num_samples):
                raise ValueError(
                    f"`measurements` must have {num_samples} rows (one per sample) or 1 (shared by all "
                    f"samples) on their first axis; received shape {self.measurements.shape}."
                )
            shape = (num_samples, *self.measurements.shape[1:])
            conditions["measurements"] = np.ascontiguousarray(np.broadcast_to(self.measurements, shape))
        return conditions

    def denoiser(self, denoise, schedule, conditions):
        def measured(x):
            return (ops.cast(conditions["measurements"], x.dtype),) if self.measurements is not None else ()

        if self.through_denoiser:

            def log_likelihood(x, t):
                return self.log_likelihood(denoise(x, t), *measured(x))

        else:

            def log_likelihood(x, t):
                return self.log_likelihood(x, t, *measured(x))

        return add_gradient_to_score(denoise, schedule, log_likelihood, conditions["scale"])

    def get_config(self):
        return {
            "log_likelihood": keras.saving.serialize_keras_object(self.log_likelihood),
            "scale": self.scale,
            "through_denoiser": self.through_denoiser,
            "measurements": None if self.measurements is None else self.measurements.tolist(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["log_likelihood"] = keras.saving.deserialize_keras_object(config["log_likelihood"])
        return cls(**config)
