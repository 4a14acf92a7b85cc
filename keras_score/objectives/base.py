"""The `Objective` base class: a training loss of a denoiser, one value per example."""

from keras_score.registry import Configurable


class Objective(Configurable):
    """Base class of training objectives.

    An objective turns a batch of clean data into one loss value per
    example, drawing its own noise levels and noise from the model's
    `keras.random.SeedGenerator`. It sees the model only through its
    `Denoiser` (`network_output`, `__call__` for D, `score`, `schedule`,
    `parameterization`), so every objective trains the same denoiser and
    every sampler and guidance works on a model trained with any of them.

    Subclasses implement `__call__`.

    Example:
    >>> per_example = objective(model.denoiser, x0, condition=None, seed=model.seed_generator)
    """

    name = None

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
