"""The action encoder of a world model: one learned vector per action and history step, flattened."""

import keras
from keras import ops

from keras_score import validation

FRAMES = "frames"
ACTIONS = "actions"


@keras.saving.register_keras_serializable(package="keras_score")
class ActionEmbedding(keras.layers.Layer):
    """e = flatten(Embedding(a_{t−k+1}), …, Embedding(a_t)): DIAMOND's action condition.

    The `UNet` projects e and adds it to the noise embedding, which then
    scales and shifts every residual block's group norm (DIAMOND's
    adaptive group norm).

    Args:
        num_actions: the number of discrete actions.
        units: size of each step's embedding.

    Call arguments:
        condition: dict with "actions" of shape (batch, k), integers in [0, num_actions).

    Returns:
        Tensor of shape (batch, k·units).

    Example:
    >>> ActionEmbedding(6, units=8)({"actions": ops.zeros((2, 4), "int32")}).shape
    (2, 32)

    Reference: Alonso et al., "Diffusion for World Modeling: Visual Details Matter in Atari", 2024.
    """

    def __init__(self, num_actions, units=16, **kwargs):
        super().__init__(**kwargs)
        self.num_actions = validation.check_int(num_actions, "num_actions", minimum=1)
        self.units = validation.check_int(units, "units", minimum=1)
        self.embedding = keras.layers.Embedding(self.num_actions, self.units, name="embedding")

    def build(self, input_shape):
        self.embedding.build(input_shape[ACTIONS])
        self.built = True

    def call(self, condition):
        actions = ops.cast(condition[ACTIONS], "int32")
        return ops.reshape(self.embedding(actions), (ops.shape(actions)[0], -1))

    def compute_output_shape(self, input_shape):
        shape = input_shape[ACTIONS]
        return (shape[0], shape[1] * self.units)

    def get_config(self):
        return {**super().get_config(), "num_actions": self.num_actions, "units": self.units}
