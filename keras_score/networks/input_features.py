"""Fourier features of the network's input: sin and cos of 2^k·2π·z, appended to z (VDM)."""

import math

import keras
from keras import ops

from keras_score import validation


@keras.saving.register_keras_serializable(package="keras_score")
class Base2FourierFeatures(keras.layers.Layer):
    """[sin(2^k·2π·z), cos(2^k·2π·z)] for k in range(start, stop, step), per element of the last axis.

    High frequencies (VDM uses k = 6, 7 on [−1, 1] images) let a network
    resolve the fine detail of the input at low noise, where the likelihood
    is decided: a change of one level in 256 turns the phase of 2⁷·2π·z by
    2π. `MLP` and `UNet` append them to their input with
    `input_fourier_features=(start, stop)`.

    Args:
        start: the first exponent k.
        stop: the end of the range of exponents (excluded).
        step: the step between exponents.

    Call arguments:
        z: tensor of shape (..., C).

    Returns:
        Tensor of shape (..., 2·n·C), n = len(range(start, stop, step)).

    Example:
    >>> Base2FourierFeatures(6, 8)(ops.zeros((2, 8, 8, 3))).shape
    (2, 8, 8, 12)

    Reference: Kingma et al., "Variational Diffusion Models", NeurIPS 2021, Sec. 3.3 and App. C
    (google-research/vdm `Base2FourierFeatures`).
    """

    def __init__(self, start=6, stop=8, step=1, **kwargs):
        super().__init__(**kwargs)
        self.start = validation.check_int(start, "start")
        self.stop = validation.check_int(stop, "stop", minimum=self.start + 1)
        self.step = validation.check_int(step, "step", minimum=1)
        self.exponents = list(range(self.start, self.stop, self.step))

    def call(self, z):
        frequencies = ops.convert_to_tensor([2.0**k * 2.0 * math.pi for k in self.exponents], dtype=z.dtype)
        angles = ops.expand_dims(z, -1) * frequencies
        shape = (*ops.shape(z)[:-1], ops.shape(z)[-1] * len(self.exponents))
        return ops.concatenate([ops.reshape(ops.sin(angles), shape), ops.reshape(ops.cos(angles), shape)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * len(self.exponents) * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop, "step": self.step}


def get(features):
    """`Base2FourierFeatures` from None (none), a (start, stop[, step]) sequence or a layer."""
    if features is None or isinstance(features, Base2FourierFeatures):
        return features
    try:
        return Base2FourierFeatures(*features)
    except TypeError:
        raise ValueError(
            "`input_fourier_features` must be None, (start, stop[, step]) or a Base2FourierFeatures layer; "
            f"received input_fourier_features={features!r}."
        ) from None


def config(layer):
    """The `input_fourier_features` entry of a network's config: None or [start, stop, step]."""
    return None if layer is None else [layer.start, layer.stop, layer.step]


def appended_shape(layer, shape):
    """The shape of `append(layer, z)` for z of `shape`."""
    return tuple(shape) if layer is None else (*shape[:-1], shape[-1] * (1 + 2 * len(layer.exponents)))


def append(layer, z):
    """z with its Fourier features appended on the last axis (z itself without a layer)."""
    return z if layer is None else ops.concatenate([z, layer(z)], axis=-1)
