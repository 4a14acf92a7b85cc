"""Denoiser networks F(x, c_noise): MLP for points and tables, UNet for images, TemporalUNet for action sequences."""

from keras_score.networks.embeddings import FourierEmbedding, SinusoidalEmbedding
from keras_score.networks.input_features import Base2FourierFeatures
from keras_score.networks.layer_norm import LayerNorm
from keras_score.networks.mlp import MLP
from keras_score.networks.temporal_unet import ConditionalResidualBlock1D, Conv1DBlock, TemporalUNet
from keras_score.networks.unet import UNet
from keras_score.networks.unet_blocks import AttentionBlock, ResidualBlock

__all__ = [
    "MLP",
    "UNet",
    "TemporalUNet",
    "ConditionalResidualBlock1D",
    "Conv1DBlock",
    "ResidualBlock",
    "AttentionBlock",
    "LayerNorm",
    "FourierEmbedding",
    "SinusoidalEmbedding",
    "Base2FourierFeatures",
]
