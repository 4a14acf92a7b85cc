"""Denoiser networks F(x, c_noise) and noise-level embeddings."""

from keras_score.networks.embeddings import FourierEmbedding, SinusoidalEmbedding
from keras_score.networks.layer_norm import LayerNorm
from keras_score.networks.mlp import MLP

__all__ = ["MLP", "LayerNorm", "FourierEmbedding", "SinusoidalEmbedding"]
