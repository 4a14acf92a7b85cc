"""Conditions: dicts of tensors of any shapes, their specification and the default encoder.

A condition is a dict of per-example tensors — class labels, context
vectors, an observation history (batch, T, d), a stack of past frames
(batch, k, H, W, C), an action sequence. A `ScoreModel` declares what it
takes as a *condition spec* {name: {"shape": per-example shape, "dtype": …}}
and a trainable *condition encoder* maps the dict to one vector per example
for the network. The learned null condition ∅ of classifier-free guidance
belongs to the `Denoiser`, not to the encoder, so any Keras layer can be an
encoder (Ho & Salimans 2022, Alg. 1).

An image-shaped entry marked {"channels": True} — (H, W, c) or a stack of
k frames (k, H, W, C) — is not encoded: the `Denoiser` concatenates it to
the network's input along the channel axis (k·C channels for a stack), as
SR3 and DIAMOND condition on a low-resolution image or on past frames; its
null condition is zeros.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_score import validation

LABELS = "labels"


def condition_spec(conditions=None, num_classes=None, context_dim=None):
    """The normalised condition spec {name: {"shape": tuple, "dtype": str}}.

    Args:
        conditions: None or a dict from names to a per-example shape (a
            float condition) or to a dict {"shape": ..., "dtype": ...[,
            "channels": True]}; "channels" marks an (H, W, c) or (k, H, W,
            C) entry concatenated to the input image as channels.
        num_classes: adds "labels": int32 of shape () when given.
        context_dim: adds "context": floats of shape (context_dim,) when given.

    Returns:
        A dict, empty for an unconditional model.

    Example:
    >>> condition_spec({"history": (8, 4)}, num_classes=10)
    {'history': {'shape': (8, 4), 'dtype': 'float32'}, 'labels': {'shape': (), 'dtype': 'int32'}}
    """
    spec = {}
    for name, entry in (conditions or {}).items():
        if not isinstance(name, str) or name in ("x", "drop"):
            raise ValueError(f"Condition names must be strings other than 'x' and 'drop'; received {name!r}.")
        channels = False
        if isinstance(entry, dict):
            shape, dtype = entry.get("shape"), entry.get("dtype", keras.config.floatx())
            channels = validation.check_bool(entry.get("channels", False), f"conditions[{name!r}]['channels']")
        else:
            shape, dtype = entry, keras.config.floatx()
        try:
            shape = tuple(validation.check_int(d, f"conditions[{name!r}] shape", minimum=1) for d in shape)
        except TypeError:
            raise ValueError(
                f"`conditions[{name!r}]` must be a per-example shape (a tuple of positive integers) or a dict "
                f"{{'shape': ..., 'dtype': ...}}; received {entry!r}."
            ) from None
        spec[name] = {"shape": shape, "dtype": keras.backend.standardize_dtype(dtype)}
        if channels:
            if len(shape) not in (3, 4) or not keras.backend.is_float_dtype(spec[name]["dtype"]):
                raise ValueError(
                    f"`conditions[{name!r}]` with 'channels' must be float images of per-example shape (H, W, c) or "
                    f"a stack (k, H, W, C); received shape {shape} and dtype {spec[name]['dtype']}."
                )
            spec[name]["channels"] = True
    for name, value, entry in (
        (LABELS, num_classes, {"shape": (), "dtype": "int32"}),
        ("context", context_dim, {"shape": (context_dim,), "dtype": keras.config.floatx()}),
    ):
        if value is not None:
            validation.check_int(value, "num_classes" if name == LABELS else "context_dim", minimum=1)
            if name in spec:
                raise ValueError(f"`{name}` is given both in `conditions` and as `num_classes`/`context_dim`.")
            spec[name] = entry
    return spec


def spec_config(spec):
    """A condition spec as JSON-able config (shapes as lists); `condition_spec` reads it back."""
    return {name: {**entry, "shape": list(entry["shape"])} for name, entry in spec.items()}


def channel_entries(spec):
    """The names of the spec's entries concatenated to the input as channels, sorted."""
    return sorted(name for name, entry in spec.items() if entry.get("channels"))


def as_channels(value, entry):
    """A batch of a channels entry as (batch, H, W, channels): a stack (batch, k, H, W, C) becomes k·C channels.

    Args:
        value: tensor of shape (batch, *entry["shape"]).
        entry: its spec entry, with "channels".

    Returns:
        Tensor of shape (batch, H, W, c) or (batch, H, W, k·C).
    """
    shape = tuple(entry["shape"])
    if len(shape) == 3:
        return value
    k, height, width, channels = shape
    return ops.reshape(ops.transpose(value, (0, 2, 3, 1, 4)), (-1, height, width, k * channels))


def check_condition(name, value, spec, num_samples, num_classes=None):
    """Validates one condition entry on the host; returns it with a leading axis of `num_samples`.

    A value with the per-example shape is shared by every sample.

    Args:
        name: the condition's name.
        value: array-like of shape spec["shape"] or (num_samples, *spec["shape"]).
        spec: its entry of the condition spec.
        num_samples: the number of examples.
        num_classes: for "labels", the number of classes K (values 0…K−1).

    Returns:
        numpy array of shape (num_samples, *spec["shape"]) and the spec's dtype.
    """
    shape = tuple(spec["shape"])
    integer = keras.backend.standardize_dtype(spec["dtype"]).startswith(("int", "uint"))
    array = np.asarray(value)
    if array.shape == shape:
        array = np.broadcast_to(array, (num_samples, *shape))
    if array.shape != (num_samples, *shape):
        expected = f"{shape} or {(num_samples, *shape)}" if shape else f"an int or shape ({num_samples},)"
        raise ValueError(f"`{name}` must have shape {expected}; received shape {array.shape}.")
    if integer:
        if array.dtype.kind not in "iu" and not (
            array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array))
        ):
            raise ValueError(f"`{name}` must be integers; received dtype {array.dtype}.")
        if num_classes is not None and array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(
                f"`{name}` must lie in [0, {num_classes - 1}] (num_classes={num_classes}); "
                f"received values in [{array.min()}, {array.max()}]."
            )
    elif array.dtype.kind not in "biuf" or not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must hold finite numbers.")
    return np.ascontiguousarray(array.astype(spec["dtype"]))


def check_labels(labels, num_classes, num_samples):
    """Validates class labels on the host; returns int32 labels of shape (num_samples,).

    Args:
        labels: an int (one class for every sample) or an array of shape (num_samples,).
        num_classes: K; labels must lie in 0…K−1.
        num_samples: the number of samples.

    Returns:
        numpy int32 array of shape (num_samples,).
    """
    return check_condition(LABELS, labels, {"shape": (), "dtype": "int32"}, num_samples, num_classes)


@keras.saving.register_keras_serializable(package="keras_score")
class ConditionEmbedding(keras.layers.Layer):
    """The default condition encoder: a sum of one learned embedding per condition entry.

    Class labels (the entry "labels") get a learned embedding table; every
    other entry, of any shape, is flattened and projected by a learned
    linear map. The sum is one vector per example.

    Args:
        num_classes: number of classes K of the "labels" entry, or None.
        units: size of the embedding.

    Call arguments:
        condition: dict of tensors with a leading batch axis.

    Returns:
        Tensor of shape (batch, units).

    Example:
    >>> embed = ConditionEmbedding(num_classes=10, units=8)
    >>> embed({"labels": ops.zeros((4,), "int32"), "history": ops.zeros((4, 3, 2))}).shape
    (4, 8)

    Reference: Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022.
    """

    def __init__(self, num_classes=None, units=64, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = None if num_classes is None else validation.check_int(num_classes, "num_classes", 1)
        self.units = validation.check_int(units, "units", minimum=1)
        self.label_embedding = None
        if self.num_classes is not None:
            self.label_embedding = keras.layers.Embedding(self.num_classes, self.units, name="labels")
        self.projections = {}

    def build(self, input_shape):
        for name in sorted(input_shape):
            if name == LABELS and self.label_embedding is not None:
                self.label_embedding.build((None,))
                continue
            projection = keras.layers.Dense(self.units, name=f"project_{name}")
            projection.build((None, math.prod(input_shape[name][1:])))
            self.projections[name] = projection
        self.built = True

    def call(self, condition):
        parts = []
        for name in sorted(condition):
            value = condition[name]
            if name == LABELS and self.label_embedding is not None:
                parts.append(self.label_embedding(ops.cast(value, "int32")))
            else:
                flat = ops.reshape(ops.cast(value, self.compute_dtype), (ops.shape(value)[0], -1))
                parts.append(self.projections[name](flat))
        return sum(parts[1:], parts[0])

    def compute_output_shape(self, input_shape):
        return (next(iter(input_shape.values()))[0], self.units)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "units": self.units}
