"""Noise-level embeddings: map the scalar c_noise(t) to a feature vector."""

import math

import keras
from keras import ops

from keras_score import validation


@keras.saving.register_keras_serializable(package="keras_score")
class SinusoidalEmbedding(keras.layers.Layer):
    """[cos(c·f_k), sin(c·f_k)] with frequencies f_k geometric from 1 to `max_frequency`.

    The transformer position embedding (Vaswani et al. 2017) used by DDPM
    (Ho et al. 2020), with frequencies suited to c_noise ∈ [−2, 2].

    Args:
        dim: output dimension (even).
        max_frequency: highest frequency.

    Call arguments:
        noise: tensor of shape (batch,).

    Returns:
        Tensor of shape (batch, dim).

    Example:
    >>> SinusoidalEmbedding(16)(ops.zeros((3,))).shape
    (3, 16)
    """

    def __init__(self, dim=64, max_frequency=64.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = _even_dim(dim)
        self.max_frequency = validation.check_positive_float(max_frequency, "max_frequency")

    def call(self, noise):
        half = self.dim // 2
        exponents = ops.arange(half, dtype=self.compute_dtype) / max(half - 1, 1)
        frequencies = ops.exp(exponents * math.log(self.max_frequency))
        angles = ops.cast(noise, self.compute_dtype)[:, None] * frequencies[None, :]
        return ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_frequency": self.max_frequency}


@keras.saving.register_keras_serializable(package="keras_score")
class FourierEmbedding(keras.layers.Layer):
    """Random Fourier features [sin(2π·c·w_k), cos(2π·c·w_k)], w_k ~ N(0, scale²), fixed.

    The Gaussian Fourier projection of Song et al. 2021 (after Tancik et al. 2020).

    Args:
        dim: output dimension (even).
        scale: standard deviation of the frequencies.
        seed: seed of the frequencies.

    Example:
    >>> FourierEmbedding(16)(ops.zeros((3,))).shape
    (3, 16)
    """

    def __init__(self, dim=64, scale=4.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.dim = _even_dim(dim)
        self.scale = validation.check_positive_float(scale, "scale")
        self.seed = validation.check_seed(seed)

    def build(self, input_shape):
        self.frequencies = self.add_weight(
            name="frequencies",
            shape=(self.dim // 2,),
            initializer=keras.initializers.RandomNormal(stddev=self.scale, seed=self.seed),
            trainable=False,
        )

    def call(self, noise):
        angles = 2 * math.pi * ops.cast(noise, self.compute_dtype)[:, None] * self.frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale, "seed": self.seed}


def get(identifier, dim):
    """Returns an embedding layer from "fourier", "sinusoidal" or a layer."""
    if isinstance(identifier, keras.layers.Layer):
        return identifier
    layers = {"fourier": FourierEmbedding, "sinusoidal": SinusoidalEmbedding}
    if identifier not in layers:
        raise ValueError(
            f"Unknown embedding {identifier!r}; expected one of {sorted(layers)} or a Keras layer."
        )
    return layers[identifier](dim)


def build_with_mlp(embedding, mlp, noise_shape):
    """Builds a noise embedding and the Dense layers after it; returns the shape they output (batch, units)."""
    if not embedding.built:
        embedding.build(noise_shape)
    shape = embedding.compute_output_shape(noise_shape)
    for dense in mlp:
        dense.build(shape)
        shape = (shape[0], dense.units)
    return shape


def deserialize_in(config):
    """A network's config with its serialized `embedding` entry turned back into a layer (for `from_config`)."""
    return {**config, "embedding": keras.saving.deserialize_keras_object(config["embedding"])}


def _even_dim(dim):
    dim = validation.check_int(dim, "dim", minimum=2)
    if dim % 2:
        raise ValueError(f"`dim` must be an even integer >= 2; received dim={dim!r}.")
    return dim
