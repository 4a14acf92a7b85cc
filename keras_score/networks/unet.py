"""A UNet denoiser network F(x, c_noise[, condition]) for images, channels-last."""

import keras
from keras import layers
from keras import ops

from keras_score import validation
from keras_score.networks import embeddings, input_features
from keras_score.networks.unet_blocks import EMBEDDING_MODES, AttentionBlock, ResidualBlock


@keras.saving.register_keras_serializable(package="keras_score")
class UNet(keras.layers.Layer):
    """The DDPM / ADM UNet for (batch, H, W, C) images, with the noise embedding in every residual block.

    An input convolution to `channels`; then per level ℓ (resolution H/2^ℓ)
    `blocks_per_level` residual blocks of `channels · channel_multipliers[ℓ]`
    channels, each followed by self-attention where the level's height is in
    `attention_resolutions`, and a stride-2 convolution down to the next level;
    a middle block (residual, attention, residual); the mirrored path up, with
    `blocks_per_level + 1` blocks per level that each take one skip connection
    (concatenated) and nearest-neighbour upsampling + convolution between
    levels; GroupNorm, SiLU and a zero-initialised output convolution, so an
    untrained network outputs 0 (its denoiser is c_skip·x).

    The noise embedding (Fourier or sinusoidal features of c_noise, then a
    two-layer MLP) enters every residual block by `embedding_mode` (see
    `ResidualBlock`); a condition embedding (labels, context, an encoder's
    output) is projected and added to it. Conditioning images (a stack of
    past frames) are concatenated to x as extra channels by the caller; set
    `output_channels` to the channels of the data alone.

    Args:
        channels: base width (channels of level 0).
        channel_multipliers: width multiplier of each level; its length is the
            number of levels.
        blocks_per_level: residual blocks per level on the way down.
        attention_resolutions: feature-map heights with self-attention (e.g.
            (4,) for 4 × 4 maps of 8 × 8 digits); each must be a level's.
        num_heads: attention heads.
        dropout: dropout rate inside the residual blocks.
        groups: GroupNorm groups; must divide `channels`.
        embedding: "fourier", "sinusoidal" or a Keras layer mapping (batch,) to (batch, k).
        embedding_dim: dimension of the noise features.
        embedding_mode: "film" (adaptive group norm, ADM / DIAMOND) or "add" (DDPM++).
        output_channels: None for an output with the input's channels; an
            integer when the input carries extra conditioning channels.
        input_fourier_features: None, or (start, stop) to append
            `Base2FourierFeatures(start, stop)` of every input channel (VDM's (6, 8)).

    Call arguments:
        inputs: `(x, noise)` with x of shape (batch, H, W, C) and noise of
            shape (batch,), or `(x, noise, condition)` with a condition
            embedding of shape (batch, k). H and W must be divisible by
            2^(levels − 1).
        training: enables dropout.

    Returns:
        Tensor of shape (batch, H, W, output_channels or C).

    Example:
    >>> net = UNet(channels=8, channel_multipliers=(1, 2), blocks_per_level=1, groups=4)
    >>> net((ops.zeros((2, 8, 8, 1)), ops.zeros((2,)))).shape
    (2, 8, 8, 1)
    >>> default = UNet()
    >>> _ = default((ops.zeros((1, 8, 8, 1)), ops.zeros((1,))))
    >>> default.count_params()  # channels 64, multipliers (1, 2), 2 blocks per level, on 8 × 8 × 1
    3971041

    References: Ho et al., "Denoising Diffusion Probabilistic Models", 2020, App. B;
    Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis", 2021 (adaptive group norm);
    Song et al. 2021 and Karras et al. 2022 (DDPM++).
    """

    def __init__(
        self,
        channels=64,
        channel_multipliers=(1, 2),
        blocks_per_level=2,
        attention_resolutions=(),
        num_heads=1,
        dropout=0.0,
        groups=8,
        embedding="fourier",
        embedding_dim=64,
        embedding_mode="film",
        output_channels=None,
        input_fourier_features=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_features = input_features.get(input_fourier_features)
        self.channels = validation.check_int(channels, "channels", minimum=1)
        try:
            self.channel_multipliers = tuple(
                validation.check_int(m, "channel_multipliers", minimum=1) for m in channel_multipliers
            )
            self.attention_resolutions = tuple(
                validation.check_int(r, "attention_resolutions", minimum=1) for r in attention_resolutions
            )
        except TypeError:
            raise ValueError(
                "`channel_multipliers` and `attention_resolutions` must be sequences of positive integers; received "
                f"{channel_multipliers!r} and {attention_resolutions!r}."
            ) from None
        if not self.channel_multipliers:
            raise ValueError("`channel_multipliers` must name at least one level; received ().")
        self.blocks_per_level = validation.check_int(blocks_per_level, "blocks_per_level", minimum=1)
        self.num_heads = validation.check_int(num_heads, "num_heads", minimum=1)
        self.dropout = validation.check_float(dropout, "dropout", minimum=0.0, maximum=1.0, exclusive_maximum=True)
        self.groups = validation.check_int(groups, "groups", minimum=1)
        if self.channels % self.groups:
            raise ValueError(f"`groups` ({self.groups}) must divide `channels` ({self.channels}).")
        self.embedding_mode = validation.check_choice(embedding_mode, "embedding_mode", EMBEDDING_MODES)
        self.embedding_dim = validation.check_int(embedding_dim, "embedding_dim", minimum=2)
        self.output_channels = (
            None if output_channels is None else validation.check_int(output_channels, "output_channels", minimum=1)
        )
        self.embedding = embeddings.get(embedding, self.embedding_dim)
        units = 4 * self.channels
        self.embedding_mlp = [layers.Dense(units, activation="silu"), layers.Dense(units)]
        self.condition_projection = layers.Dense(units)
        self.input_conv = layers.Conv2D(self.channels, 3, padding="same")
        block = dict(groups=self.groups, dropout=self.dropout, embedding_mode=self.embedding_mode)
        widths = [self.channels * m for m in self.channel_multipliers]
        self.down, self.downsample = [], []
        for level, width in enumerate(widths):
            self.down.append([ResidualBlock(width, **block) for _ in range(self.blocks_per_level)])
            if level < len(widths) - 1:
                self.downsample.append(layers.Conv2D(width, 3, strides=2, padding="same"))
        self.middle = [ResidualBlock(widths[-1], **block), ResidualBlock(widths[-1], **block)]
        self.middle_attention = AttentionBlock(self.num_heads, self.groups)
        self.up, self.upsample = [], []
        for level in reversed(range(len(widths))):
            self.up.append([ResidualBlock(widths[level], **block) for _ in range(self.blocks_per_level + 1)])
            if level > 0:
                self.upsample.append(layers.Conv2D(widths[level], 3, padding="same"))
        self.attention = {}  # "down_ℓ_i" / "up_ℓ_i" → AttentionBlock, made in build once the heights are known
        self.output_norm = layers.GroupNormalization(self.groups)
        self.output_conv = None

    @property
    def levels(self):
        return len(self.channel_multipliers)

    def build(self, input_shape):
        x_shape, noise_shape = input_shape[:2]
        if len(x_shape) != 4:
            raise ValueError(f"UNet takes images of shape (batch, H, W, C); received x of shape {tuple(x_shape)}.")
        height, width, in_channels = x_shape[1:]
        divisor = 2 ** (self.levels - 1)
        if height % divisor or width % divisor:
            raise ValueError(
                f"UNet with {self.levels} levels needs H and W divisible by {divisor}; received H={height}, W={width}."
            )
        heights = [height // 2**level for level in range(self.levels)]
        unreachable = sorted(set(self.attention_resolutions) - set(heights))
        if unreachable:
            raise ValueError(
                f"`attention_resolutions` {unreachable} are not feature-map heights of this UNet on {height} × "
                f"{width} inputs; its levels have heights {heights}."
            )
        batch = x_shape[0]
        emb_shape = embeddings.build_with_mlp(self.embedding, self.embedding_mlp, noise_shape)
        if len(input_shape) == 3:
            self.condition_projection.build(input_shape[2])
        shape = (batch, height, width, self.channels)
        self.input_conv.build(input_features.appended_shape(self.input_features, x_shape))
        skips = [shape]
        for level, blocks in enumerate(self.down):
            for index, block in enumerate(blocks):
                block.build((shape, emb_shape))
                shape = block.compute_output_shape((shape, emb_shape))
                self._build_attention(f"down_{level}_{index}", heights[level], shape)
                skips.append(shape)
            if level < self.levels - 1:
                self.downsample[level].build(shape)
                shape = (batch, shape[1] // 2, shape[2] // 2, shape[3])
                skips.append(shape)
        self.middle[0].build((shape, emb_shape))
        self.middle_attention.build(shape)
        self.middle[1].build((shape, emb_shape))
        for step, blocks in enumerate(self.up):
            level = self.levels - 1 - step
            for index, block in enumerate(blocks):
                joined = (*shape[:-1], shape[-1] + skips.pop()[-1])
                block.build((joined, emb_shape))
                shape = block.compute_output_shape((joined, emb_shape))
                self._build_attention(f"up_{level}_{index}", heights[level], shape)
            if level > 0:
                shape = (batch, shape[1] * 2, shape[2] * 2, shape[3])
                self.upsample[step].build(shape)
        self.output_norm.build(shape)
        self.output_conv = layers.Conv2D(self.output_channels or in_channels, 3, padding="same", kernel_initializer="zeros")
        self.output_conv.build(shape)

    def _build_attention(self, key, height, shape):
        if height in self.attention_resolutions:
            attention = AttentionBlock(self.num_heads, self.groups, name=f"attention_{key}")
            attention.build(shape)
            self.attention[key] = attention

    def _attend(self, key, h):
        return self.attention[key](h) if key in self.attention else h

    def call(self, inputs, training=False):
        x, noise = inputs[:2]
        emb = self.embedding(noise)
        for dense in self.embedding_mlp:
            emb = dense(emb)
        if len(inputs) == 3:
            emb = emb + self.condition_projection(ops.silu(inputs[2]))
        h = self.input_conv(input_features.append(self.input_features, x))
        skips = [h]
        for level, blocks in enumerate(self.down):
            for index, block in enumerate(blocks):
                h = self._attend(f"down_{level}_{index}", block((h, emb), training=training))
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsample[level](h)
                skips.append(h)
        h = self.middle[0]((h, emb), training=training)
        h = self.middle[1]((self.middle_attention(h), emb), training=training)
        for step, blocks in enumerate(self.up):
            level = self.levels - 1 - step
            for index, block in enumerate(blocks):
                h = block((ops.concatenate([h, skips.pop()], axis=-1), emb), training=training)
                h = self._attend(f"up_{level}_{index}", h)
            if level > 0:
                h = self.upsample[step](ops.repeat(ops.repeat(h, 2, axis=1), 2, axis=2))
        return self.output_conv(ops.silu(self.output_norm(h)))

    def compute_output_shape(self, input_shape):
        x_shape = input_shape[0]
        return (*x_shape[:-1], self.output_channels or x_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "channel_multipliers": list(self.channel_multipliers),
            "blocks_per_level": self.blocks_per_level,
            "attention_resolutions": list(self.attention_resolutions),
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "groups": self.groups,
            "embedding": keras.saving.serialize_keras_object(self.embedding),
            "embedding_dim": self.embedding_dim,
            "embedding_mode": self.embedding_mode,
            "output_channels": self.output_channels,
            "input_fourier_features": input_features.config(self.input_features),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**embeddings.deserialize_in(config))
