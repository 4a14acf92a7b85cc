"""The `Guidance` base class: how guidance changes a sampler's denoiser and state.

Guidance acts on a sampling run in two places, both inside the compiled loop
and for every sampler:

- `denoiser(denoise, schedule, conditions)` returns a new denoiser. Adding
  g = ∇ₓ log p(y | x_t) to the score s = (α·D − x)/σ² is the same as
  D ← D + (σ²/α)·g, so score-based guidance (classifier, measurement
  gradients) works with samplers written on the denoiser.
- `project(x, t, schedule, conditions, noise)` changes the state after each
  step (inpainting replaces the known coordinates).

Per-sample data (labels, scales, masks, known values, measurements) travel
as tensors in `conditions`, which `prepare` builds on the host for all
samples and the caller slices per batch. What is baked into the compiled
graph instead (functions, classifiers, flags) is described by `signature`:
a loop compiled for one guidance serves every guidance with an equal
signature, given that guidance's prepared tensors, so a caller keys its
cache of compiled loops on it and compiles once for any data.
"""

import keras
import numpy as np
from keras import ops

from keras_score import backend
from keras_score.registry import Configurable
from keras_score.sde import expand_to


def add_to_score(denoise, schedule, score_term):
    """Wraps a denoiser so that its score gains `score_term(x, t)`: D ← D + (σ²/α)·term.

    Args:
        denoise: the denoiser `denoise(x, t)`.
        schedule: its `NoiseSchedule`.
        score_term: `score_term(x, t)` returning a tensor shaped like x.

    Returns:
        The guided denoiser.
    """

    def guided(x, t):
        alpha = expand_to(schedule.alpha(t), x)
        sigma = expand_to(schedule.sigma(t), x)
        return denoise(x, t) + sigma**2 / alpha * score_term(x, t)

    return guided


def add_gradient_to_score(denoise, schedule, log_likelihood, scale):
    """Wraps a denoiser so that its score gains w·∇ₓ log_likelihood(x, t), with a per-sample scale w.

    Args:
        denoise: the denoiser `denoise(x, t)`.
        schedule: its `NoiseSchedule`.
        log_likelihood: `log_likelihood(x, t)` returning shape (batch,).
        scale: the guidance scale w per sample, shape (batch,) (a tensor of
            `conditions`, so a new scale needs no new graph).

    Returns:
        The guided denoiser.
    """

    def term(x, t):
        w = expand_to(ops.cast(scale, x.dtype), x)
        return w * backend.gradient(lambda z: log_likelihood(z, t), x)

    return add_to_score(denoise, schedule, term)


class Guidance(Configurable):
    """Base class of guidance; the base itself guides nothing (the null guidance).

    Example:
    >>> samples = model.generate(100, guidance=Guidance())  # the same as no guidance

    Subclasses override `prepare`, `denoiser`, `project`, `variables` and
    `signature` as needed.
    """

    name = "none"

    @property
    def variables(self):
        """Keras variables read inside the loop (e.g. a classifier's weights)."""
        return []

    @property
    def signature(self):
        """What the compiled loop depends on, apart from the tensors of `prepare`.

        A tuple of strings, numbers, booleans and tuples: hashable (a cache
        key) and JSON-able. Two guidances with equal signatures are
        interchangeable in one compiled loop, each with its own prepared
        tensors. Functions and classifiers enter by `id()`, which no other
        object takes while this one lives; a cache of compiled loops keeps
        the guidance it compiled, and with it those objects, alive.

        This default names the class and the object itself, so a subclass
        that does not describe its graph shares a loop only with itself.

        Returns:
            A tuple whose first entry names the class.

        Example:
        >>> Inpainting(np.zeros(2)).signature == Inpainting(np.ones(2)).signature
        True
        """
        return (self._class_path(), id(self))

    def _class_path(self):
        """The module and name of this guidance's class: the first entry of every signature."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

    @property
    def uses_labels(self):
        """Whether this guidance reads the `labels` given to `generate`."""
        return False

    @property
    def projects(self):
        """Whether `project` changes the state (adaptive solvers then re-evaluate after it)."""
        return False

    def check_model(self, model):
        """Raises a ValueError if this guidance cannot guide the `ScoreModel` `model`."""

    def prepare(self, num_samples, data_shape, labels=None, normalize=None):
        """Per-sample tensors this guidance reads in the loop, as numpy arrays on the host.

        Args:
            num_samples: number of samples of the run.
            data_shape: shape of one sample.
            labels: validated int32 labels of shape (num_samples,), or None.
            normalize: maps data units to the sampler's space (a model's
                standardisation), or None when they are the same.

        Returns:
            Dict of numpy arrays whose first axis has length `num_samples`.
        """
        return {}

    def denoiser(self, denoise, schedule, conditions):
        """The guided denoiser, given the batch's `conditions` (tensors from `prepare`)."""
        return denoise

    def project(self, x, t, schedule, conditions, noise):
        """The state after a step that landed at time `t`.

        Args:
            x: the state.
            t: the time the step landed at; None after the last step, whose
                result is the sample itself.
            schedule: the `NoiseSchedule`.
            conditions: this guidance's tensors for the batch.
            noise: `noise()` draws fresh standard normal noise shaped like x.
        """
        return x


@keras.saving.register_keras_serializable(package="keras_score")
class NullGuidance(Guidance):
    """No guidance: the denoiser and the states are left as they are.

    Example:
    >>> samples = model.generate(100, guidance=NullGuidance())
    """

    @property
    def signature(self):
        return (self._class_path(),)


@keras.saving.register_keras_serializable(package="keras_score")
class CompositeGuidance(Guidance):
    """Several guidances applied together: score terms add up, projections apply in order.

    Args:
        guidances: list of `Guidance` objects.

    Example:
    >>> guidance = CompositeGuidance([ClassifierGuidance(classifier, 2.0), Inpainting(values, mask)])
    """

    name = "composite"

    def __init__(self, guidances):
        self.guidances = [get(g) for g in guidances]

    @property
    def variables(self):
        return [v for g in self.guidances for v in g.variables]

    @property
    def signature(self):
        return (self._class_path(), tuple(g.signature for g in self.guidances))

    @property
    def uses_labels(self):
        return any(g.uses_labels for g in self.guidances)

    @property
    def projects(self):
        return any(g.projects for g in self.guidances)

    def check_model(self, model):
        for g in self.guidances:
            g.check_model(model)

    def prepare(self, num_samples, data_shape, labels=None, normalize=None):
        return {
            str(i): g.prepare(num_samples, data_shape, labels, normalize) for i, g in enumerate(self.guidances)
        }

    def denoiser(self, denoise, schedule, conditions):
        for i, g in enumerate(self.guidances):
            denoise = g.denoiser(denoise, schedule, conditions[str(i)])
        return denoise

    def project(self, x, t, schedule, conditions, noise):
        for i, g in enumerate(self.guidances):
            x = g.project(x, t, schedule, conditions[str(i)], noise)
        return x

    def get_config(self):
        return {"guidances": [keras.saving.serialize_keras_object(g) for g in self.guidances]}

    @classmethod
    def from_config(cls, config):
        return cls([keras.saving.deserialize_keras_object(g) for g in config["guidances"]])


def get(identifier):
    """Returns a `Guidance` from None (null guidance), a `Guidance`, a config dict or a list of them.

    Args:
        identifier: None, a `Guidance`, a config dict, or a list/tuple of those.

    Returns:
        A `Guidance`.

    Example:
    >>> get(None)
    """
    if identifier is None:
        return NullGuidance()
    if isinstance(identifier, Guidance):
        return identifier
    if isinstance(identifier, (list, tuple)):
        return CompositeGuidance(list(identifier))
    if isinstance(identifier, dict):
        obj = keras.saving.deserialize_keras_object(identifier)
        if isinstance(obj, Guidance):
            return obj
    raise ValueError(
        f"`guidance` must be None, a Guidance object (e.g. ClassifierGuidance, GradientGuidance, "
        f"Inpainting), a config dict or a list of them; received {identifier!r}."
    )


def slice_conditions(conditions, start, stop):
    """The rows start…stop of every array in a nested dict of per-sample arrays."""
    if isinstance(conditions, dict):
        return {key: slice_conditions(value, start, stop) for key, value in conditions.items()}
    return np.asarray(conditions)[start:stop]
