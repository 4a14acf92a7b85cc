"""A 1-D UNet over action sequences with FiLM conditioning: Diffusion Policy's ConditionalUnet1D."""

import keras
from keras import layers
from keras import ops

from keras_score import validation
from keras_score.networks import embeddings


class _SequenceLayer(keras.layers.Layer):
    """Shared arguments of the 1-D blocks: output channels, convolution width, GroupNorm groups."""

    def __init__(self, channels, kernel_size=5, groups=8, **kwargs):
        super().__init__(**kwargs)
        self.channels = validation.check_int(channels, "channels", minimum=1)
        self.kernel_size = validation.check_int(kernel_size, "kernel_size", minimum=1)
        self.groups = validation.check_int(groups, "groups", minimum=1)
        if self.channels % self.groups:
            raise ValueError(f"`groups` ({self.groups}) must divide the block's channels ({self.channels}).")

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "groups": self.groups,
        }


@keras.saving.register_keras_serializable(package="keras_score")
class Conv1DBlock(_SequenceLayer):
    """Conv1D → GroupNorm → Mish over (batch, T, C) sequences.

    Args:
        channels: output channels.
        kernel_size: convolution width ("same" padding).
        groups: GroupNorm groups; must divide `channels`.

    Example:
    >>> Conv1DBlock(16, groups=8)(ops.zeros((2, 8, 3))).shape
    (2, 8, 16)
    """

    def __init__(self, channels, kernel_size=5, groups=8, **kwargs):
        super().__init__(channels, kernel_size, groups, **kwargs)
        self.conv = layers.Conv1D(self.channels, self.kernel_size, padding="same")
        self.norm = layers.GroupNormalization(self.groups)

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build((*input_shape[:-1], self.channels))

    def call(self, x):
        return keras.activations.mish(self.norm(self.conv(x)))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)


@keras.saving.register_keras_serializable(package="keras_score")
class ConditionalResidualBlock1D(_SequenceLayer):
    """Block₂(γ·Block₁(x) + β) + skip(x), with (γ, β) = Dense(Mish(cond)): a FiLM residual block.

    Args:
        channels: output channels.
        kernel_size: convolution width.
        groups: GroupNorm groups.

    Call arguments:
        inputs: tuple (x, cond) of sequences (batch, T, C_in) and the
            conditioning vector (batch, k) (noise embedding and global condition).

    Returns:
        Sequences (batch, T, channels).

    Example:
    >>> block = ConditionalResidualBlock1D(16, groups=8)
    >>> block((ops.zeros((2, 8, 3)), ops.zeros((2, 10)))).shape
    (2, 8, 16)

    Reference: Chi et al., "Diffusion Policy", RSS 2023, Sec. III-B (FiLM; Perez et al. 2018).
    """

    def __init__(self, channels, kernel_size=5, groups=8, **kwargs):
        super().__init__(channels, kernel_size, groups, **kwargs)
        self.first = Conv1DBlock(self.channels, self.kernel_size, self.groups)
        self.second = Conv1DBlock(self.channels, self.kernel_size, self.groups)
        self.film = layers.Dense(2 * self.channels)
        self.skip = None

    def build(self, input_shape):
        x_shape, cond_shape = input_shape
        self.first.build(x_shape)
        out_shape = (*x_shape[:-1], self.channels)
        self.second.build(out_shape)
        self.film.build(cond_shape)
        if x_shape[-1] != self.channels:
            self.skip = layers.Conv1D(self.channels, 1)
            self.skip.build(x_shape)

    def call(self, inputs):
        x, cond = inputs
        scale, shift = ops.split(ops.expand_dims(self.film(keras.activations.mish(cond)), 1), 2, axis=-1)
        h = self.second(scale * self.first(x) + shift)
        return h + (x if self.skip is None else self.skip(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], self.channels)


@keras.saving.register_keras_serializable(package="keras_score")
class TemporalUNet(keras.layers.Layer):
    """F(x, c_noise[, e]) for action sequences x of shape (batch, horizon, action_dim): Diffusion Policy's 1-D UNet.

    Down the levels (widths `down_dims`), two `ConditionalResidualBlock1D`
    each and a stride-2 convolution between levels; two middle blocks; up
    the levels, the features concatenated with the skip connection of the
    same length, two blocks and a stride-2 transposed convolution; a
    Conv1DBlock and a 1×1 convolution to the action dimension (the paper's
    code leaves the skip of the full-length level unused, and so does this).
    Every residual block takes its FiLM scale and shift from [noise
    embedding, e]: the noise features of
    c_noise through Dense(4k, Mish) → Dense(k), and e the condition
    embedding (the observation history, by the `ScoreModel`'s condition
    encoder), as the paper concatenates the step embedding and the
    flattened observations.

    Args:
        down_dims: widths of the levels (the paper: 256, 512, 1024).
        kernel_size: convolution width (the paper: 5).
        groups: GroupNorm groups (the paper: 8); must divide every width.
        embedding: "sinusoidal", "fourier" or a Keras layer for c_noise.
        embedding_dim: k, the size of the noise embedding (the paper: 256).

    Call arguments:
        inputs: `(x, noise)` or `(x, noise, condition)` with x of shape
            (batch, horizon, action_dim), noise (batch,) and the condition
            embedding (batch, units). The horizon must be divisible by
            2^(len(down_dims) − 1).

    Returns:
        Tensor shaped like x.

    Example:
    >>> net = TemporalUNet(down_dims=(16, 32), embedding_dim=16)
    >>> net((ops.zeros((2, 16, 2)), ops.zeros((2,)))).shape
    (2, 16, 2)
    >>> default = TemporalUNet()
    >>> _ = default((ops.zeros((1, 16, 2)), ops.zeros((1,)), ops.zeros((1, 64))))
    >>> default.count_params()  # the paper's widths, on 16 steps of 2-D actions and a 64-d condition
    66127362

    Reference: Chi et al., "Diffusion Policy: Visuomotor Policy Learning via
    Action Diffusion", RSS 2023 (real-stanford/diffusion_policy,
    `conditional_unet1d.py`).
    """

    def __init__(
        self, down_dims=(256, 512, 1024), kernel_size=5, groups=8, embedding="sinusoidal", embedding_dim=256, **kwargs
    ):
        super().__init__(**kwargs)
        try:
            self.down_dims = tuple(validation.check_int(d, "down_dims", minimum=1) for d in down_dims)
        except TypeError:
            raise ValueError(f"`down_dims` must be a sequence of positive integers; received {down_dims!r}.") from None
        if not self.down_dims:
            raise ValueError("`down_dims` must name at least one level; received ().")
        self.kernel_size = validation.check_int(kernel_size, "kernel_size", minimum=1)
        self.groups = validation.check_int(groups, "groups", minimum=1)
        bad = [d for d in self.down_dims if d % self.groups]
        if bad:
            raise ValueError(f"`groups` ({self.groups}) must divide every width of `down_dims`; {bad} are not.")
        self.embedding_dim = validation.check_int(embedding_dim, "embedding_dim", minimum=2)
        self.embedding = embeddings.get(embedding, self.embedding_dim)
        self.embedding_mlp = [layers.Dense(4 * self.embedding_dim), layers.Dense(self.embedding_dim)]
        block = dict(kernel_size=self.kernel_size, groups=self.groups)
        self.down = [[ConditionalResidualBlock1D(d, **block) for _ in range(2)] for d in self.down_dims]
        self.downsample = [layers.Conv1D(d, 3, strides=2, padding="same") for d in self.down_dims[:-1]]
        self.middle = [ConditionalResidualBlock1D(self.down_dims[-1], **block) for _ in range(2)]
        widths = list(reversed(self.down_dims[:-1]))
        self.up = [[ConditionalResidualBlock1D(d, **block) for _ in range(2)] for d in widths]
        self.upsample = [layers.Conv1DTranspose(d, 4, strides=2, padding="same") for d in widths]
        self.final_block = Conv1DBlock(self.down_dims[0], self.kernel_size, self.groups)
        self.output_conv = None

    def build(self, input_shape):
        x_shape, noise_shape = input_shape[:2]
        if len(x_shape) != 3:
            raise ValueError(
                "TemporalUNet takes sequences of shape (batch, horizon, action_dim); "
                f"received x of shape {tuple(x_shape)}."
            )
        horizon, action_dim = x_shape[1:]
        divisor = 2 ** (len(self.down_dims) - 1)
        if horizon % divisor:
            raise ValueError(
                f"TemporalUNet with {len(self.down_dims)} levels needs a horizon divisible by {divisor}; "
                f"received horizon={horizon}."
            )
        batch = x_shape[0]
        embeddings.build_with_mlp(self.embedding, self.embedding_mlp, noise_shape)
        cond_shape = (batch, self.embedding_dim + (input_shape[2][-1] if len(input_shape) == 3 else 0))
        shape, skips = x_shape, []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                block.build((shape, cond_shape))
                shape = block.compute_output_shape((shape, cond_shape))
            skips.append(shape)
            if level < len(self.downsample):
                self.downsample[level].build(shape)
                shape = (batch, shape[1] // 2, shape[2])
        for block in self.middle:
            block.build((shape, cond_shape))
        for level, blocks in enumerate(self.up):
            shape = (*shape[:-1], shape[-1] + skips.pop()[-1])
            for block in blocks:
                block.build((shape, cond_shape))
                shape = block.compute_output_shape((shape, cond_shape))
            self.upsample[level].build(shape)
            shape = (batch, shape[1] * 2, shape[2])
        shape = (batch, horizon, self.down_dims[0])
        self.final_block.build(shape)
        self.output_conv = layers.Conv1D(action_dim, 1)
        self.output_conv.build(shape)

    def call(self, inputs):
        x, noise = inputs[:2]
        cond = self.embedding(noise)
        cond = self.embedding_mlp[1](keras.activations.mish(self.embedding_mlp[0](cond)))
        if len(inputs) == 3:
            cond = ops.concatenate([cond, ops.cast(inputs[2], cond.dtype)], axis=-1)
        h, skips = x, []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block((h, cond))
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        for block in self.middle:
            h = block((h, cond))
        for level, blocks in enumerate(self.up):  # the first level's skip is left unused, as in the paper's code
            h = ops.concatenate([h, skips.pop()], axis=-1)
            for block in blocks:
                h = block((h, cond))
            h = self.upsample[level](h)
        return self.output_conv(self.final_block(h))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "down_dims": list(self.down_dims),
            "kernel_size": self.kernel_size,
            "groups": self.groups,
            "embedding": keras.saving.serialize_keras_object(self.embedding),
            "embedding_dim": self.embedding_dim,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**embeddings.deserialize_in(config))
