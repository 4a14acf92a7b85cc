"""The blocks of `UNet`: a residual block that takes the noise embedding, and a self-attention block."""

import math

import keras
from keras import layers
from keras import ops

from keras_score import validation

EMBEDDING_MODES = ("film", "add")


@keras.saving.register_keras_serializable(package="keras_score")
class ResidualBlock(keras.layers.Layer):
    """h + Conv(Dropout(SiLU(N(Conv(SiLU(GroupNorm(h))), emb)))), the DDPM / ADM residual block.

    The noise embedding enters between the two convolutions, by
    `embedding_mode`: "film" normalises and then scales and shifts,
    GroupNorm(h)·(1 + s) + b with (s, b) = Dense(SiLU(emb)) (ADM's adaptive
    group norm, as in DIAMOND); "add" adds Dense(SiLU(emb)) before the
    normalisation (DDPM, DDPM++). The second convolution starts at zero, so
    a new block is the identity (or its 1×1 skip projection).

    Args:
        channels: output channels.
        groups: GroupNorm groups; must divide the input and output channels.
        dropout: dropout rate before the second convolution.
        embedding_mode: "film" or "add".

    Call arguments:
        inputs: tuple (h, emb) of feature maps (batch, H, W, C_in) and the
            embedding (batch, k).
        training: enables dropout.

    Returns:
        Feature maps (batch, H, W, channels).

    Example:
    >>> block = ResidualBlock(8, groups=4)
    >>> block((ops.ones((2, 4, 4, 4)), ops.ones((2, 16)))).shape
    (2, 4, 4, 8)

    Reference: Ho et al. 2020, App. B; Dhariwal & Nichol 2021, §3 (adaptive group normalisation).
    """

    def __init__(self, channels, groups=8, dropout=0.0, embedding_mode="film", **kwargs):
        super().__init__(**kwargs)
        self.channels, self.groups, self.dropout = channels, groups, dropout
        self.embedding_mode = validation.check_choice(embedding_mode, "embedding_mode", EMBEDDING_MODES)
        self.norm_in = layers.GroupNormalization(groups)
        self.conv_in = layers.Conv2D(channels, 3, padding="same")
        self.embedding_projection = layers.Dense(2 * channels if embedding_mode == "film" else channels)
        self.norm_out = layers.GroupNormalization(groups)
        self.drop = layers.Dropout(dropout)
        self.conv_out = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros")
        self.skip = None

    def build(self, input_shape):
        h_shape, emb_shape = input_shape
        self.norm_in.build(h_shape)
        self.conv_in.build(h_shape)
        self.embedding_projection.build(emb_shape)
        out_shape = (*h_shape[:-1], self.channels)
        self.norm_out.build(out_shape)
        self.conv_out.build(out_shape)
        if h_shape[-1] != self.channels:
            self.skip = layers.Conv2D(self.channels, 1)
            self.skip.build(h_shape)

    def call(self, inputs, training=False):
        h, emb = inputs
        x = self.conv_in(ops.silu(self.norm_in(h)))
        e = self.embedding_projection(ops.silu(emb))[:, None, None, :]
        if self.embedding_mode == "film":
            scale, shift = ops.split(e, 2, axis=-1)
            x = self.norm_out(x) * (1.0 + scale) + shift
        else:
            x = self.norm_out(x + e)
        x = self.conv_out(self.drop(ops.silu(x), training=training))
        return (h if self.skip is None else self.skip(h)) + x

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "groups": self.groups,
            "dropout": self.dropout,
            "embedding_mode": self.embedding_mode,
        }


@keras.saving.register_keras_serializable(package="keras_score")
class AttentionBlock(keras.layers.Layer):
    """h + W_o·Attention(GroupNorm(h)): multi-head self-attention over the H·W positions.

    The output projection starts at zero, so a new block is the identity.

    Args:
        num_heads: attention heads; must divide the channels.
        groups: GroupNorm groups.

    Call arguments:
        h: feature maps (batch, H, W, C).

    Returns:
        Feature maps of the same shape.

    Example:
    >>> AttentionBlock(num_heads=2, groups=4)(ops.ones((2, 4, 4, 8))).shape
    (2, 4, 4, 8)

    Reference: Ho et al. 2020, App. B (self-attention at 16 × 16); Vaswani et al. 2017.
    """

    def __init__(self, num_heads=1, groups=8, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.groups = num_heads, groups
        self.norm = layers.GroupNormalization(groups)
        self.qkv = None
        self.output_projection = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.num_heads:
            raise ValueError(f"`num_heads` ({self.num_heads}) must divide the attention block's {channels} channels.")
        self.norm.build(input_shape)
        self.qkv = layers.Dense(3 * channels)
        self.qkv.build(input_shape)
        self.output_projection = layers.Dense(channels, kernel_initializer="zeros")
        self.output_projection.build(input_shape)

    def call(self, h):
        _, height, width, channels = h.shape
        head_dim = channels // self.num_heads
        qkv = ops.reshape(self.qkv(self.norm(h)), (-1, height * width, 3, self.num_heads, head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        weights = ops.softmax(ops.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head_dim), axis=-1)
        attended = ops.reshape(ops.einsum("bhqk,bkhd->bqhd", weights, v), (-1, height, width, channels))
        return h + self.output_projection(attended)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "groups": self.groups}
