"""Compiling a function of tensors once per input shape, on every backend."""

import keras


def compile_function(fn, variables=()):
    """Returns `fn` compiled by the backend's own compiler.

    - JAX: `jax.jit`, with the Keras `variables` that `fn` reads passed in as
      arguments through a `keras.StatelessScope`, so updated weights are seen
      without retracing (as KerasHub's `make_generate_function` does).
    - TensorFlow: `tf.function` (a graph; `keras.ops.fori_loop` becomes a
      `tf.while_loop`).
    - PyTorch: eager execution under `torch.no_grad()`.

    Args:
        fn: a function of tensors returning tensors.
        variables: Keras variables that `fn` reads (e.g. `model.variables`).

    Returns:
        A callable with the signature of `fn`.

    Example:
    >>> double = compile_function(lambda x: 2 * x)
    >>> keras.ops.convert_to_numpy(double(keras.ops.ones((2,))))
    array([2., 2.], dtype=float32)
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        variables = list(variables)

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(stateless)
        return lambda *args: jitted([v.value for v in variables], *args)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if backend == "torch":
        import torch

        def no_grad(*args):
            with torch.no_grad():
                return fn(*args)

        return no_grad
    return fn
