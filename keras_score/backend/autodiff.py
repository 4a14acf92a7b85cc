"""Derivatives with respect to inputs, with each backend's own autodiff.

`keras.ops` has no `grad` or `vjp` (and its `jvp` falls short, below): guidance needs ∇ₓ of a log-likelihood
inside the compiled sampling loop, and the score-matching objectives need
vᵀ∂s/∂x inside the training loss, where it must itself be differentiable
with respect to the network's weights. One vector–Jacobian product per
backend serves both:

- JAX: `jax.vjp`, which nests inside the `jax.value_and_grad` of Keras'
  train step (the weights reach `fn` as tracers of the outer transform);
- TensorFlow: a `GradientTape` on x, whose `gradient` runs while the train
  step's own tape records, so the product has gradients w.r.t. the weights;
- PyTorch: `torch.autograd.grad(..., create_graph=True)` under
  `torch.enable_grad()`, so it works under `torch.no_grad` too (sampling
  loops, `test_step`), and the product stays in the graph for `backward`.

Second derivatives through normalisation layers are wrong on TensorFlow:
`tf.nn.moments` (behind Keras' Layer-, Batch- and GroupNormalization) stops
the gradient of the mean inside the variance, which is exact for first
derivatives only. `check_second_derivatives` refuses such networks there
(`keras_score.networks.LayerNorm` computes its statistics with `keras.ops`).
(On PyTorch, `keras.ops.jvp`, i.e. `torch.func.jvp`, through
LayerNormalization gives wrong weight gradients too; the reverse-mode
product here is right.)
"""

import keras
from keras import ops


def vector_jacobian_product(fn, x, v):
    """fn(x) and vᵀ·∂fn/∂x, differentiable with respect to whatever `fn` closes over.

    With `fn` acting on each row of x separately (as a network does on a
    batch), row i of the product is vᵢᵀ·∂fn(x)ᵢ/∂xᵢ, the gradient
    ∇ₓᵢ⟨vᵢ, fn(x)ᵢ⟩. The product is part of the graph on every backend: a
    loss built from it can be differentiated again, e.g. w.r.t. the weights
    of a network inside `fn` in Keras' own train step (second derivatives,
    as score matching needs for ∇ₓ(vᵀs)). Works eagerly, inside Keras'
    compiled train step and inside `keras_score.backend.compile_function`.

    Args:
        fn: a function of a tensor returning a tensor.
        x: the tensor to differentiate at.
        v: the cotangent, shaped like `fn(x)`.

    Returns:
        Tuple `(fn(x), vᵀ·∂fn/∂x)`, the second shaped like `x`.

    Example:
    >>> y, g = vector_jacobian_product(lambda x: x**2, ops.ones((3, 2)), ops.ones((3, 2)))
    >>> ops.convert_to_numpy(g)[0]
    array([2., 2.], dtype=float32)

    Reference: Griewank & Walther, "Evaluating Derivatives", 2nd ed., SIAM
    2008, Ch. 3 (reverse mode: one vector–Jacobian product per pass).
    """
    return _vjp(fn, x, lambda y: v, create_graph=True)


def gradient(fn, x):
    """∇ₓ Σᵢ fn(x)ᵢ: the gradient of the sum of `fn`'s outputs with respect to `x`.

    With `fn` returning one value per example (shape (batch,)) whose example i
    depends only on row i of `x`, row i of the result is that example's
    gradient. Works eagerly and inside `keras_score.backend.compile_function`
    on every backend (PyTorch re-enables autograd under its `no_grad`). The
    result is a plain value: on PyTorch it is detached from the graph, so it
    cannot be differentiated again (use `vector_jacobian_product` inside a
    training loss).

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
    return _vjp(fn, x, ops.ones_like, create_graph=False)[1]


def check_second_derivatives(layer):
    """Raises on TensorFlow if `layer` holds a layer whose second derivatives TensorFlow gets wrong.

    Those are Keras' Layer-, Batch- and GroupNormalization with their own
    `call` (built on `tf.nn.moments`); a subclass that computes its own
    statistics, like `keras_score.networks.LayerNorm`, passes.

    Args:
        layer: what a loss with input derivatives will differentiate twice,
            e.g. a `Denoiser`; anything but a Keras layer passes.

    Example:
    >>> check_second_derivatives(denoiser)
    """
    if keras.backend.backend() != "tensorflow" or not isinstance(layer, keras.layers.Layer):
        return
    moments_calls = {
        cls.call: cls.__name__
        for cls in (keras.layers.LayerNormalization, keras.layers.BatchNormalization, keras.layers.GroupNormalization)
    }
    found = sorted({moments_calls[type(sub).call] for sub in layer._flatten_layers() if type(sub).call in moments_calls})
    if found:
        raise ValueError(
            "Score matching differentiates the score with respect to x and then the weights, and on TensorFlow "
            f"those second derivatives are wrong through Keras' {', '.join(found)} (tf.nn.moments stops the "
            "gradient of the mean inside the variance). Train on JAX or PyTorch, or normalise with "
            "keras_score.networks.LayerNorm (or keras.ops.mean and keras.ops.var)."
        )


def _vjp(fn, x, cotangent, create_graph):
    """(fn(x), cotangent(fn(x))ᵀ·∂fn/∂x) with the backend's reverse mode."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        y, pullback = jax.vjp(fn, x)
        (product,) = pullback(cotangent(y))
        return y, product
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        product = tape.gradient(y, x, output_gradients=cotangent(y))
        return y, tf.zeros_like(x) if product is None else product
    if backend == "torch":
        import torch

        with torch.enable_grad():
            x = ops.convert_to_tensor(x)
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            y = fn(x)
            if not y.requires_grad:  # fn does not depend on x (nor on anything trainable)
                return y, torch.zeros_like(x)
            v = ops.convert_to_tensor(cotangent(y), dtype=y.dtype)
            (product,) = torch.autograd.grad(y, x, grad_outputs=v, create_graph=create_graph, allow_unused=True)
        if product is None:
            product = torch.zeros_like(x)
        return (y, product) if create_graph else (y.detach(), product.detach())
    raise NotImplementedError(f"Backend {backend!r} is not supported.")
