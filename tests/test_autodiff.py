"""Input derivatives on every backend: values against closed forms, and second derivatives in Keras' train step."""

import keras
import numpy as np
import pytest
from keras import ops

from conftest import to_numpy
from keras_score import backend


def test_vector_jacobian_product_of_a_linear_map_is_its_transpose():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(3, 4)).astype("float32")
    x, v = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")
    y, product = backend.vector_jacobian_product(lambda z: ops.matmul(z, matrix), ops.convert_to_tensor(x), ops.convert_to_tensor(v))
    np.testing.assert_allclose(to_numpy(y), x @ matrix, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(product), v @ matrix.T, rtol=1e-5, atol=1e-5)


def test_vector_jacobian_product_is_per_row_for_a_rowwise_function():
    x = np.array([[0.3, -1.0], [2.0, 0.5]], dtype="float32")
    v = np.array([[1.0, 2.0], [-1.0, 0.5]], dtype="float32")
    _, product = backend.vector_jacobian_product(ops.tanh, ops.convert_to_tensor(x), ops.convert_to_tensor(v))
    np.testing.assert_allclose(to_numpy(product), v * (1.0 - np.tanh(x) ** 2), rtol=1e-5)


def test_vector_jacobian_product_of_a_constant_is_zero():
    _, product = backend.vector_jacobian_product(lambda z: ops.ones((2, 3)), ops.ones((2, 3)), ops.ones((2, 3)))
    np.testing.assert_array_equal(to_numpy(product), np.zeros((2, 3)))


def test_gradient_keeps_its_values():
    x = np.array([[1.0, -2.0]], dtype="float32")
    g = backend.gradient(lambda z: ops.sum(z**3, axis=-1), ops.convert_to_tensor(x))
    np.testing.assert_allclose(to_numpy(g), 3.0 * x**2, rtol=1e-6)


class InputDerivativeLossModel(keras.Model):
    """s(x) = W₂ tanh(W₁x + b₁) + b₂ trained on the score-matching integrand vᵀ∇ₓ(vᵀs) + ½‖s‖²."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.out = keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(x))

    def loss_of(self, x, v):
        x, v = ops.convert_to_tensor(x), ops.convert_to_tensor(v)
        s, jacobian_v = backend.vector_jacobian_product(self, x, v)
        return ops.mean(ops.sum(v * jacobian_v, axis=-1) + 0.5 * ops.sum(s * s, axis=-1))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.loss_of(x, y)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 3)).astype("float32")


def build_model(x):
    keras.utils.set_random_seed(1)
    model = InputDerivativeLossModel()
    model(x)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    return model


def test_weight_gradient_of_an_input_derivative_loss_in_the_train_step_matches_finite_differences(batch):
    x, v = batch
    model = build_model(x)
    start = [to_numpy(w) for w in model.trainable_weights]
    direction = [np.random.default_rng(2).normal(size=w.shape) for w in start]

    def loss_at(h):
        for w, w0, d in zip(model.trainable_weights, start, direction):
            w.assign((w0 + h * d).astype("float32"))
        return float(to_numpy(model.loss_of(x, v)))

    h = 1e-2
    finite_difference = (loss_at(h) - loss_at(-h)) / (2 * h)  # O(h²) = 1e-4 relative for this smooth loss
    loss_at(0.0)
    model.train_on_batch(x, v)  # one SGD step with learning rate 1: w ← w − ∂L/∂w
    weight_gradient = [w0 - to_numpy(w) for w0, w in zip(start, model.trainable_weights)]
    directional = sum(float(np.sum(g * d)) for g, d in zip(weight_gradient, direction))
    np.testing.assert_allclose(directional, finite_difference, rtol=2e-3, atol=2e-3)


def test_input_derivative_loss_evaluates_outside_autograd(batch):
    x, v = batch
    model = build_model(x)
    eager = float(to_numpy(model.loss_of(x, v)))
    evaluated = model.test_on_batch(x, v)  # PyTorch runs it under torch.no_grad
    np.testing.assert_allclose(evaluated, eager, rtol=1e-5)
    compiled = backend.compile_function(model.loss_of, model.variables)  # torch.no_grad, jax.jit, tf.function
    np.testing.assert_allclose(float(to_numpy(compiled(ops.convert_to_tensor(x), ops.convert_to_tensor(v)))), eager, rtol=1e-5)
