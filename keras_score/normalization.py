"""Data normalisations: the map from data units to the space a `ScoreModel` diffuses in.

`Standardization` fits per-feature statistics to the training data;
`PixelScaling` maps pixel levels 0…L−1 to [−1, 1] (Ho et al. 2020, Sec. 4).
Both are layers saved with the model, with `inverse` back to data units and
`log_abs_det_jacobian`, the log-volume change that `ScoreModel.log_prob`
adds to a density in the normalised space.
"""

import keras
import numpy as np
from keras import ops


def get(normalize, dtype=None):
    """The normalisation layer and flag for a model's `normalize` argument.

    Args:
        normalize: True (a fresh `Standardization`), False (none), a
            normalisation layer, or a layer's serialized config.
        dtype: the dtype policy of a fresh `Standardization`.

    Returns:
        `(layer, enabled)`: the layer the model holds (a `Standardization`,
        unused, when disabled) and whether it normalises.
    """
    if isinstance(normalize, dict):
        normalize = keras.saving.deserialize_keras_object(normalize)
    if isinstance(normalize, keras.layers.Layer):
        return normalize, True
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError(
            f"`normalize` must be True, False or a normalisation layer (e.g. PixelScaling(256)); received normalize={normalize!r}."
        )
    return Standardization(name="normalizer", dtype=dtype), bool(normalize)


def serialize(normalizer, enabled):
    """The `normalize` config entry: a bool for a standardisation (or none), else the layer's config."""
    if not enabled or isinstance(normalizer, Standardization):
        return enabled
    return keras.saving.serialize_keras_object(normalizer)


def same_space(a, b):
    """Whether two (layer, enabled) normalisations map data identically (same kind, settings and statistics)."""
    (layer_a, on_a), (layer_b, on_b) = a, b
    if on_a != on_b:
        return False
    if not on_a:
        return True
    if type(layer_a) is not type(layer_b) or serialize(layer_a, True) != serialize(layer_b, True):
        return False
    return all(np.allclose(x, y) for x, y in zip(layer_a.get_weights()[:2], layer_b.get_weights()[:2]))


def iterate_batches(data):
    """Yields numpy batches of the inputs x from arrays, `tf.data`, a `DataLoader` or any iterable.

    Elements that are tuples or lists contribute their first entry (x of
    `(x, y)`); dicts (and a dict of arrays) contribute their "x" entry.
    """
    if isinstance(data, dict):
        data = _dict_x(data)
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        yield np.asarray(ops.convert_to_numpy(data))
        return
    for batch in data:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        if isinstance(batch, dict):
            batch = _dict_x(batch)
        yield np.asarray(ops.convert_to_numpy(batch))


def _dict_x(batch):
    if "x" not in batch:
        raise ValueError(f"Dict inputs must hold the data under the key 'x'; received keys {sorted(batch)}.")
    return batch["x"]


@keras.saving.register_keras_serializable(package="keras_score")
class Standardization(keras.layers.Layer):
    """z = (x − mean)/std per feature (last axis), with `inverse` mapping back to data units.

    `adapt(data)` computes the statistics in float64 in one streaming pass
    over arrays, `tf.data` datasets or PyTorch `DataLoader`s. A feature with
    zero spread keeps std = 1.

    Example:
    >>> layer = Standardization()
    >>> layer.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]))
    >>> ops.convert_to_numpy(layer(np.array([[1.0, 20.0]])))
    array([[0., 0.]], dtype=float32)
    """

    def build(self, input_shape):
        features = (input_shape[-1],)
        self.mean = self.add_weight(name="mean", shape=features, initializer="zeros", trainable=False)
        self.std = self.add_weight(name="std", shape=features, initializer="ones", trainable=False)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False)

    @property
    def is_adapted(self):
        return self.built and float(ops.convert_to_numpy(self.count)) > 0

    def adapt(self, data):
        """Fits mean and std to `data` (array, `tf.data.Dataset`, `DataLoader` or iterable of batches)."""
        total = total_sq = None
        count = 0
        for batch in iterate_batches(data):
            flat = np.asarray(batch, dtype=np.float64).reshape(-1, batch.shape[-1])
            if not np.all(np.isfinite(flat)):
                raise ValueError(
                    f"Training data contains {int(np.sum(~np.isfinite(flat)))} NaN or Inf values."
                )
            total = flat.sum(0) if total is None else total + flat.sum(0)
            total_sq = (flat**2).sum(0) if total_sq is None else total_sq + (flat**2).sum(0)
            count += flat.shape[0]
            shape = batch.shape
        if count == 0:
            raise ValueError("Cannot fit the data normalisation: `data` yielded no examples.")
        if not self.built:
            self.build(shape)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        std[std < 1e-8] = 1.0
        self.mean.assign(mean.astype("float32"))
        self.std.assign(std.astype("float32"))
        self.count.assign(float(count))

    def call(self, x):
        return (ops.cast(x, self.compute_dtype) - self.mean) / self.std

    def inverse(self, z):
        return z * self.std + self.mean

    def log_abs_det_jacobian(self, data_shape):
        """log |dz/dx| of one example of shape `data_shape`: −Σ log std over its elements."""
        std = ops.convert_to_numpy(self.std).astype(np.float64)
        return -float(np.sum(np.log(np.broadcast_to(std, tuple(data_shape)))))

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_score")
class PixelScaling(keras.layers.Layer):
    """z = 2·x/(L − 1) − 1: pixel levels 0…L−1 (uint8 or float) to [−1, 1], with `inverse` and `to_levels`.

    The fixed scaling of DDPM and EDM images: nothing is fitted, so a model
    with it trains on a dataset streamed once. `to_levels` maps model
    samples back to the data's levels (rounded and clipped).

    Args:
        levels: the number of pixel levels L (256 for 8-bit images, 17 for
            scikit-learn's digits).

    Example:
    >>> layer = PixelScaling(256)
    >>> ops.convert_to_numpy(layer(np.array([0, 255], dtype="uint8")))
    array([-1.,  1.], dtype=float32)

    Reference: Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020, Sec. 4.
    """

    def __init__(self, levels=256, **kwargs):
        super().__init__(**kwargs)
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 2:
            raise ValueError(f"`levels` must be an integer ≥ 2 (the number of pixel values); received levels={levels!r}.")
        self.levels = int(levels)

    @property
    def is_adapted(self):
        return True

    def adapt(self, data):
        """Nothing to fit: the scaling is fixed by `levels`."""

    @property
    def scale(self):
        return 2.0 / (self.levels - 1)

    def call(self, x):
        return ops.cast(x, self.compute_dtype) * self.scale - 1.0

    def inverse(self, z):
        return (z + 1.0) / self.scale

    def to_levels(self, x):
        """Pixel values rounded to the levels 0…L−1 (uint8 for L ≤ 256, else int32), as numpy."""
        dtype = "uint8" if self.levels <= 256 else "int32"
        return np.clip(np.rint(np.asarray(x, dtype=np.float64)), 0, self.levels - 1).astype(dtype)

    def log_abs_det_jacobian(self, data_shape):
        """log |dz/dx| of one example: D·log(2/(L − 1)) for D = prod(data_shape) elements."""
        return float(np.prod(data_shape)) * float(np.log(self.scale))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}
