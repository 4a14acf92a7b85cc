"""Per-feature standardisation fitted to the training data and saved with the model."""

import keras
import numpy as np
from keras import ops


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

    def compute_output_shape(self, input_shape):
        return input_shape
