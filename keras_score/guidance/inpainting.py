"""Inpainting and imputation: sampling the unknown coordinates given the known ones."""

import keras
import numpy as np
from keras import ops

from keras_score.guidance.base import Guidance
from keras_score.sde import expand_to


@keras.saving.register_keras_serializable(package="keras_score")
class Inpainting(Guidance):
    """Replacement guidance: after every step, the known coordinates are set to their noised value.

    After a step that lands at time t, x ← m ⊙ (α(t)·v + σ(t)·ε) + (1 − m) ⊙ x
    with fresh noise ε, the known values v and the mask m (1 = known); the
    unknown coordinates follow the sampler and see the known ones through the
    denoiser (Song et al. 2021, App. I.2; the "replacement" method); the
    sampler's last step ends on the known values themselves. With
    the `PredictorCorrector` sampler the replacement also follows every
    corrector step, which is Song et al.'s predictor–corrector inpainter;
    with any other sampler it follows every step. Samples return the known
    values exactly.

    Works for images (mask per pixel), table rows with missing cells (mask
    per cell; unknown cells may hold NaN) and trajectories with fixed start
    and goal (mask per time step). Values and mask travel as tensors, so one
    compiled loop serves every inpainting of the same data shape.

    Args:
        values: known values in data units, shape (num_samples, *data_shape)
            or data_shape (the same for every sample); entries where the mask
            is 0 are ignored (may be NaN).
        mask: 1/True where a value is known, broadcastable to `values`'
            shape; by default the finite entries of `values`.

    Example:
    >>> rows = np.array([[1.0, np.nan, 3.0]])  # one table row, middle cell missing
    >>> completed = model.generate(1, guidance=Inpainting(rows))

    Reference: Song et al., "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021, App. I.2.
    """

    name = "inpainting"

    def __init__(self, values, mask=None):
        self.values = np.asarray(values, dtype="float32")
        mask = np.isfinite(self.values) if mask is None else np.asarray(mask)
        if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
            raise ValueError("`mask` must hold only 0/1 or False/True values.")
        try:
            self.mask = np.broadcast_to(mask.astype("float32"), self.values.shape).copy()
        except ValueError:
            raise ValueError(
                f"`mask` of shape {mask.shape} does not broadcast to `values` of shape {self.values.shape}."
            ) from None
        if not np.all(np.isfinite(self.values[self.mask == 1])):
            raise ValueError("`values` must be finite wherever `mask` is 1.")

    @property
    def signature(self):
        """The class alone: the values and the mask are tensors of `prepare` ("values", "mask")."""
        return (self._class_path(),)

    @property
    def projects(self):
        return True

    def prepare(self, num_samples, data_shape, labels=None, normalize=None):
        data_shape = tuple(data_shape)
        values, mask = self.values, self.mask
        if values.shape == data_shape:
            values, mask = values[None], mask[None]
        if values.shape[1:] != data_shape or values.shape[0] not in (1, num_samples):
            raise ValueError(
                f"Inpainting `values` and `mask` must have shape {data_shape} or "
                f"({num_samples}, {', '.join(map(str, data_shape))}) to match the data; "
                f"received {self.values.shape}."
            )
        values = np.where(mask == 1, values, 0.0).astype("float32")
        if normalize is not None:
            values = np.asarray(normalize(values), dtype="float32")
        shape = (num_samples, *data_shape)
        return {
            "values": np.ascontiguousarray(np.broadcast_to(values, shape)),
            "mask": np.ascontiguousarray(np.broadcast_to(mask, shape)),
        }

    def project(self, x, t, schedule, conditions, noise):
        values = ops.cast(conditions["values"], x.dtype)
        mask = ops.cast(conditions["mask"], x.dtype)
        if t is None:
            return mask * values + (1.0 - mask) * x
        alpha = expand_to(schedule.alpha(t), x)
        sigma = expand_to(schedule.sigma(t), x)
        known = alpha * values + sigma * noise()
        return mask * known + (1.0 - mask) * x

    def get_config(self):
        return {"values": self.values.tolist(), "mask": self.mask.tolist()}
