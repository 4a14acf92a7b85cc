"""The observation encoder of a diffusion policy: the standardised observation history, flattened."""

import keras
from keras import ops

from keras_score.normalization import Standardization

OBSERVATIONS = "observations"


@keras.saving.register_keras_serializable(package="keras_score")
class ObservationEncoder(keras.layers.Layer):
    """e = flatten((o − mean)/std): the global condition of Diffusion Policy from an observation history.

    The statistics are per observation feature, shared by the history's
    steps, fitted by `adapt` to the demonstrations (`DiffusionPolicy.fit`
    does it at the first fit) and saved with the model, so a loaded policy
    takes observations in the environment's units. The paper conditions its
    FiLM layers on the flattened normalised observations directly; so does
    this encoder, with no learned projection.

    Call arguments:
        condition: dict with "observations" of shape (batch, n_obs_steps, d).

    Returns:
        Tensor of shape (batch, n_obs_steps·d).

    Example:
    >>> encoder = ObservationEncoder()
    >>> encoder.adapt(np.random.default_rng(0).normal(size=(100, 2, 5)))
    >>> encoder({"observations": ops.zeros((4, 2, 5))}).shape
    (4, 10)

    Reference: Chi et al., "Diffusion Policy", RSS 2023, Sec. III-B (observation as a global condition).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.normalizer = Standardization(name="observation_normalizer")

    @property
    def is_adapted(self):
        """Whether the observation statistics have been fitted."""
        return self.normalizer.is_adapted

    def adapt(self, observations):
        """Fits the per-feature mean and std to observation histories (n, n_obs_steps, d)."""
        self.normalizer.adapt(observations)

    def build(self, input_shape):
        self.normalizer.build(input_shape[OBSERVATIONS])
        self.built = True

    def call(self, condition):
        observations = self.normalizer(condition[OBSERVATIONS])
        return ops.reshape(observations, (ops.shape(observations)[0], -1))

    def compute_output_shape(self, input_shape):
        shape = input_shape[OBSERVATIONS]
        return (shape[0], shape[1] * shape[2])
