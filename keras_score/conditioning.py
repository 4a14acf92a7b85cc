"""Conditioning a score model on class labels and context vectors, with a null condition.

One network learns the conditional denoiser D(x, t | c) and, through the
null condition ∅, the unconditional D(x, t): during training the condition
of each example is replaced by ∅ with probability `p_uncond` (Ho & Salimans
2022, Alg. 1). Labels use a learned embedding with one extra row for ∅;
context vectors a learned projection, and ∅ a learned vector in its place.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_score")
class ConditionEmbedding(keras.layers.Layer):
    """Embeds (labels, context, drop) into one vector per example for the network.

    Args:
        num_classes: number of classes K (labels 0…K−1; row K is the null
            class), or None for no labels.
        context_dim: size of the context vectors, or None for no context.
        units: size of the embedding.

    Call arguments:
        condition: dict with "labels" (int, shape (batch,)) when `num_classes`
            is set, "context" (shape (batch, context_dim)) when `context_dim`
            is set, and "drop" (bool, shape (batch,)): True replaces the
            example's condition by the null condition.

    Returns:
        Tensor of shape (batch, units).

    Example:
    >>> embed = ConditionEmbedding(num_classes=10, units=8)
    >>> embed({"labels": ops.zeros((4,), "int32"), "drop": ops.zeros((4,), "bool")}).shape
    (4, 8)

    Reference: Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022.
    """

    def __init__(self, num_classes=None, context_dim=None, units=64, **kwargs):
        super().__init__(**kwargs)
        if num_classes is None and context_dim is None:
            raise ValueError("`ConditionEmbedding` needs `num_classes`, `context_dim` or both.")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.context_dim = None if context_dim is None else int(context_dim)
        self.units = int(units)
        if self.num_classes is not None:
            self.label_embedding = keras.layers.Embedding(self.num_classes + 1, self.units, name="labels")
        if self.context_dim is not None:
            self.context_projection = keras.layers.Dense(self.units, name="context")

    def build(self, input_shape=None):
        if self.num_classes is not None:
            self.label_embedding.build((None,))
        if self.context_dim is not None:
            self.context_projection.build((None, self.context_dim))
            self.null_context = self.add_weight(
                name="null_context", shape=(self.units,), initializer="random_normal"
            )
        self.built = True

    def call(self, condition):
        drop = ops.expand_dims(ops.cast(condition["drop"], "bool"), -1)
        parts = []
        if self.num_classes is not None:
            labels = ops.cast(condition["labels"], "int32")
            labels = ops.where(drop[:, 0], self.num_classes, labels)
            parts.append(self.label_embedding(labels))
        if self.context_dim is not None:
            context = self.context_projection(ops.cast(condition["context"], self.compute_dtype))
            parts.append(ops.where(drop, ops.cast(self.null_context, context.dtype), context))
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def compute_output_shape(self, input_shape):
        return (None, self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "context_dim": self.context_dim,
            "units": self.units,
        }


def check_labels(labels, num_classes, num_samples):
    """Validates labels on the host; returns int32 labels of shape (num_samples,).

    Args:
        labels: an int (one class for every sample) or an array of shape (num_samples,).
        num_classes: K; labels must lie in 0…K−1.
        num_samples: the number of samples.

    Returns:
        numpy int32 array of shape (num_samples,).
    """
    array = np.asarray(labels)
    if array.ndim == 0:
        array = np.full((num_samples,), array)
    if array.shape != (num_samples,):
        raise ValueError(
            f"`labels` must be an int or an array of shape ({num_samples},); received shape {array.shape}."
        )
    if array.dtype.kind not in "iu" and not (array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise ValueError(f"`labels` must be integers; received dtype {array.dtype}.")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"`labels` must lie in [0, {num_classes - 1}] (num_classes={num_classes}); "
            f"received values in [{array.min()}, {array.max()}]."
        )
    return array.astype("int32")


def check_context(context, context_dim, num_samples):
    """Validates context vectors on the host; returns float32 of shape (num_samples, context_dim).

    Args:
        context: an array of shape (context_dim,) (shared by every sample) or
            (num_samples, context_dim).
        context_dim: the model's context size.
        num_samples: the number of samples.

    Returns:
        numpy float32 array of shape (num_samples, context_dim).
    """
    array = np.asarray(context, dtype="float32")
    if array.shape == (context_dim,):
        array = np.broadcast_to(array, (num_samples, context_dim))
    if array.shape != (num_samples, context_dim):
        raise ValueError(
            f"`context` must have shape ({context_dim},) or ({num_samples}, {context_dim}); "
            f"received shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("`context` contains NaN or Inf values.")
    return np.ascontiguousarray(array)
