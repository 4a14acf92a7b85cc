"""Gradients with respect to inputs, with each backend's own autodiff.

`keras.ops` has no `grad`; guidance needs ∇ₓ of a log-likelihood inside the
compiled sampling loop, so this module holds one small function per backend.
"""

import keras
from keras import ops


def gradient(fn, x):
    """∇ₓ Σᵢ fn(x)ᵢ: the gradient of the sum of `fn`'s outputs with respect to `x`.

    With `fn` returning one value per example (shape (batch,)) whose example i
    depends only on row i of `x`, row i of the result is that example's
    gradient. Works eagerly and inside `keras_score.backend.compile_function`
    on every backend (PyTorch re-enables autograd under its `no_grad`).

    Args:
        fn: a function of a tensor returning a tensor.
        x: the tensor to differentiate at.

    Returns:
        A tensor shaped like `x`.

    Example:
    >>> g = gradient(lambda x: ops.sum(x**2, axis=-1), ops.ones((3, 2)))
    >>> ops.convert_to_numpy(g)[0]
    array([2., 2.], dtype=float32)
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_gradient(fn, x)
    if backend == "tensorflow":
        return _tensorflow_gradient(fn, x)
    if backend == "torch":
        return _torch_gradient(fn, x)
    raise NotImplementedError(f"Backend {backend!r} is not supported.")


def _jax_gradient(fn, x):
    import jax

    return jax.grad(lambda x: ops.sum(fn(x)))(x)


def _tensorflow_gradient(fn, x):
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x))
    return tape.gradient(total, x)


def _torch_gradient(fn, x):
    import torch

    with torch.enable_grad():
        x = ops.convert_to_tensor(x).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.sum(fn(x)), x)
    return grad.detach()
