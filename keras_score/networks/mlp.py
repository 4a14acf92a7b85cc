"""A residual MLP denoiser for points and tables."""

import math

import keras
from keras import layers
from keras import ops

from keras_score import validation
from keras_score.networks import embeddings, input_features
from keras_score.networks.layer_norm import LayerNorm


@keras.saving.register_keras_serializable(package="keras_score")
class MLP(keras.layers.Layer):
    """Residual MLP F(x, c_noise) with a noise-level embedding added in every block.

    Each block is h ← h + W₂·SiLU(W₁·LayerNorm(h) + E_i(emb)), the MLP
    analogue of the DDPM UNet's residual blocks (Ho et al. 2020, App. B).
    Inputs of any shape (batch, ...) are flattened and the output has the
    input's shape. The output layer starts at zero, so an untrained model's
    denoiser is c_skip·x. Its layer normalisation (`LayerNorm`) has correct
    second derivatives on every backend, as score matching needs.

    Args:
        hidden_units: width of the residual stream.
        num_blocks: number of residual blocks.
        embedding: "fourier", "sinusoidal" or a Keras layer mapping (batch,) to (batch, k).
        embedding_dim: dimension of the noise embedding.
        output_units: None for an output shaped like x (a denoiser); an
            integer k for an output of shape (batch, k), e.g. the logits of a
            `NoisyClassifier`.
        input_fourier_features: None, or (start, stop) to append
            `Base2FourierFeatures(start, stop)` of the input (VDM's (6, 8)).

    Call arguments:
        inputs: tuple `(x, noise)` with x of shape (batch, ...) and noise of
            shape (batch,), or `(x, noise, condition)` with a condition
            embedding of shape (batch, k) (from a conditional `ScoreModel`),
            which is added to the noise embedding.

    Returns:
        Tensor with the shape of x.

    Example:
    >>> net = MLP(hidden_units=32, num_blocks=2)
    >>> net((ops.zeros((4, 2)), ops.zeros((4,)))).shape
    (4, 2)
    """

    def __init__(
        self,
        hidden_units=256,
        num_blocks=3,
        embedding="fourier",
        embedding_dim=64,
        output_units=None,
        input_fourier_features=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_features = input_features.get(input_fourier_features)
        self.hidden_units = validation.check_int(hidden_units, "hidden_units", minimum=1)
        self.num_blocks = validation.check_int(num_blocks, "num_blocks", minimum=1)
        self.embedding_dim = validation.check_int(embedding_dim, "embedding_dim", minimum=2)
        self.output_units = None if output_units is None else validation.check_int(output_units, "output_units", 1)
        self.embedding = embeddings.get(embedding, self.embedding_dim)
        self.embedding_projection = layers.Dense(self.hidden_units, activation="silu")
        self.input_projection = layers.Dense(self.hidden_units)
        self.norms = [LayerNorm() for _ in range(self.num_blocks)]
        self.condition_projections = [layers.Dense(self.hidden_units) for _ in range(self.num_blocks)]
        self.inner = [layers.Dense(self.hidden_units) for _ in range(self.num_blocks)]
        self.outer = [layers.Dense(self.hidden_units) for _ in range(self.num_blocks)]
        self.output_norm = LayerNorm()

    def build(self, input_shape):
        x_shape, noise_shape = input_shape[:2]
        self.input_dim = math.prod(x_shape[1:])
        flat = (x_shape[0], self.input_dim)
        hidden = (x_shape[0], self.hidden_units)
        if not self.embedding.built:
            self.embedding.build(noise_shape)
        self.embedding_projection.build(self.embedding.compute_output_shape(noise_shape))
        if len(input_shape) == 3:
            self.condition_embedding_projection = layers.Dense(self.hidden_units, activation="silu")
            self.condition_embedding_projection.build(input_shape[2])
        self.input_projection.build(input_features.appended_shape(self.input_features, flat))
        for norm, cond, inner, outer in zip(
            self.norms, self.condition_projections, self.inner, self.outer
        ):
            norm.build(hidden)
            cond.build(hidden)
            inner.build(hidden)
            outer.build(hidden)
        self.output_norm.build(hidden)
        outputs = self.input_dim if self.output_units is None else self.output_units
        self.output_projection = layers.Dense(outputs, kernel_initializer="zeros")
        self.output_projection.build(hidden)

    def call(self, inputs):
        x, noise = inputs[:2]
        shape = ops.shape(x)
        flat = ops.reshape(x, (shape[0], self.input_dim))
        h = self.input_projection(input_features.append(self.input_features, flat))
        emb = self.embedding_projection(self.embedding(noise))
        if len(inputs) == 3:
            emb = emb + self.condition_embedding_projection(inputs[2])
        for norm, cond, inner, outer in zip(
            self.norms, self.condition_projections, self.inner, self.outer
        ):
            h = h + outer(ops.silu(inner(norm(h)) + cond(emb)))
        out = self.output_projection(ops.silu(self.output_norm(h)))
        return out if self.output_units is not None else ops.reshape(out, shape)

    def compute_output_shape(self, input_shape):
        if self.output_units is not None:
            return (input_shape[0][0], self.output_units)
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "num_blocks": self.num_blocks,
            "embedding": keras.saving.serialize_keras_object(self.embedding),
            "embedding_dim": self.embedding_dim,
            "output_units": self.output_units,
            "input_fourier_features": input_features.config(self.input_features),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**embeddings.deserialize_in(config))
