"""Layer normalisation written in `keras.ops`, with second derivatives right on every backend."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_score")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis, computed with `keras.ops` only.

    y = (x − mean)/sqrt(var + ε)·γ + β over the last axis (Ba et al. 2016).
    Keras' own layer computes the variance with TensorFlow's `tf.nn.moments`,
    which stops the gradient through the mean inside the variance: first
    derivatives are right, second derivatives are not. Score matching
    differentiates the network with respect to its input and then the
    weights (`keras_score.objectives.SlicedScoreMatching`), so the networks
    here use this layer, whose every operation is differentiable twice.
    Weights and config are those of `keras.layers.LayerNormalization`
    (`axis=-1`).

    Example:
    >>> LayerNorm()(ops.convert_to_tensor([[1.0, 3.0]]))  # [[-1., 1.]] up to ε

    Reference: Ba, Kiros & Hinton, "Layer Normalization", 2016.
    """

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.mean(x, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        y = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.scale:
            y = y * ops.cast(self.gamma, y.dtype)
        if self.center:
            y = y + ops.cast(self.beta, y.dtype)
        return y
