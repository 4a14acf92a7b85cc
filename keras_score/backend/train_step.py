"""Running an update of a model's own variables after each optimiser step, inside the compiled step."""

import contextlib

import keras


def train_step_then(model, train_step, args, update):
    """Runs Keras' `train_step`, then `update()` on the stepped variables, in the same compiled step.

    - JAX: the step is stateless; `update` runs in a `keras.StatelessScope`
      that maps the model's and the optimiser's variables to their stepped
      values, and what it assigns to the model's non-trainable variables
      goes into the returned state.
    - TensorFlow and PyTorch: `update` assigns the variables in place after
      the step (under `torch.no_grad()` on PyTorch).

    Args:
        model: the `keras.Model` being trained.
        train_step: Keras' own train step, bound (`super().train_step`).
        args: the step's arguments: `(state, data)` on JAX, `(data,)` otherwise.
        update: a function of no arguments that assigns model variables,
            e.g. an EMA of the weights.

    Returns:
        What `train_step` returns (the logs, and on JAX the new state).

    Example:
    >>> def train_step(self, *args):
    ...     return train_step_then(self, super().train_step, args, self.update_ema)
    """
    backend = keras.backend.backend()
    if backend != "jax":
        logs = train_step(*args)
        with _no_grad(backend):
            update()
        return logs
    logs, state = train_step(*args)
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    mapping = [
        *zip(model.trainable_variables, trainable),
        *zip(model.non_trainable_variables, non_trainable),
        *zip(model.optimizer.variables, optimizer_variables),
    ]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        update()
    non_trainable = [scope.get_current_value(variable) for variable in model.non_trainable_variables]
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def _no_grad(backend):
    if backend == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()
