"""The `Objective` base class: a training loss of a denoiser over noise levels, one value per example."""

import keras
from keras import ops

from keras_score import noise_levels
from keras_score import weighting as weighting_lib
from keras_score.registry import Configurable
from keras_score.sde import expand_to


class Objective(Configurable):
    """Base class of training objectives, all noise-conditional: t from a distribution, λ(t) weighs each level.

    An objective turns a batch of clean data into one loss value per
    example, drawing its own noise levels and noise from the model's
    `keras.random.SeedGenerator`. It sees the model only through its
    `Denoiser` (`network_output`, `__call__` for D, `score`, `schedule`,
    `parameterization`), so every objective trains the same denoiser and
    every sampler and guidance works on a model trained with any of them.

    Subclasses implement `__call__`; `perturb` draws the noised data.

    Args:
        weighting: `Weighting` or name of λ(t) on the denoiser error.
        noise_distribution: `NoiseLevelDistribution` or name of the training times t.

    Example:
    >>> per_example = objective(model.denoiser, x0, condition=None, seed=model.seed_generator)
    """

    name = None
    is_likelihood_bound = False  # True: the loss is a negative ELBO per dimension, and `fit` logs bits_per_dim

    def __init__(self, weighting="edm", noise_distribution="log_normal"):
        self.weighting = weighting_lib.get(weighting)
        self.noise_distribution = noise_levels.get(noise_distribution)

    def perturb(self, denoiser, x0, seed):
        """Noise levels t, noise ε and the noised data x_t = α(t)·x₀ + σ(t)·ε.

        Args:
            denoiser: the `Denoiser` (its `schedule` is used).
            x0: clean data, shape (batch, ...).
            seed: a `keras.random.SeedGenerator`, or None.

        Returns:
            Tuple (t of shape (batch,), ε and x_t shaped like x₀).
        """
        schedule = denoiser.schedule
        t = self.noise_distribution.sample(ops.shape(x0)[0], schedule, seed=seed)
        noise = keras.random.normal(ops.shape(x0), seed=seed, dtype=x0.dtype)
        return t, noise, expand_to(schedule.alpha(t), x0) * x0 + expand_to(schedule.sigma(t), x0) * noise

    def __call__(self, denoiser, x0, condition=None, seed=None, training=True):
        """Per-example loss.

        Args:
            denoiser: the `keras_score.Denoiser` being trained.
            x0: clean data in the model's normalised space, shape (batch, ...).
            condition: None, or the dict of condition tensors (with the
                "drop" flags of classifier-free dropout) the denoiser reads.
            seed: a `keras.random.SeedGenerator` for noise levels and noise.
            training: whether the network runs in training mode.

        Returns:
            Tensor of shape (batch,).
        """
        raise NotImplementedError

    def get_config(self):
        return {
            "weighting": keras.saving.serialize_keras_object(self.weighting),
            "noise_distribution": keras.saving.serialize_keras_object(self.noise_distribution),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("weighting", "noise_distribution"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
