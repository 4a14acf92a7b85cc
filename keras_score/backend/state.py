"""Keeping a model usable when a training call fails."""

import contextlib

import keras


@contextlib.contextmanager
def restore_on_error(variables):
    """Puts the values of `variables` back if the body raises (JAX only; others keep them in place).

    Keras' JAX trainer moves every variable's value into a functional state
    for the duration of `fit` and writes it back at the end; a `fit` that
    raises in between leaves the variables empty, and every later call
    fails. JAX arrays are immutable, so holding references is enough to
    restore them: no copy is made.

    Args:
        variables: the Keras variables the body may purge.

    Example:
    >>> with restore_on_error(model.variables + model.optimizer.variables):
    ...     keras.Model.fit(model, x)
    """
    if keras.backend.backend() != "jax":
        yield
        return
    saved = [(v, v.value) for v in variables]
    try:
        yield
    except BaseException:
        for variable, value in saved:
            variable.assign(value)
        raise
