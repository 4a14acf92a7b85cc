"""Callbacks that `ScoreModel.fit` adds to every training run."""

import math

import keras
from keras import ops


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training when the loss becomes NaN or Inf and restores the last good weights.

    A snapshot of every model and optimizer variable is taken when training
    starts and after each epoch that ends with a finite loss. The first
    batch whose loss is not finite stops training; the weights and the
    optimizer state return to the snapshot, and `raise_if_stopped` (called
    by `ScoreModel.fit` once `fit` has returned) raises a
    `FloatingPointError` that says where training stopped and what was kept.
    Snapshots are host copies made at epoch boundaries only, where every
    backend has synchronised its training state.

    Args:
        checkpoint: the run's `keras_score.checkpoint.Checkpoint`, if any;
            the message then names its last good file.

    Example:
    >>> guard = NonFiniteLossGuard()
    >>> model.fit(data, callbacks=[guard]); guard.raise_if_stopped()
    """

    def __init__(self, checkpoint=None):
        super().__init__()
        self.checkpoint = checkpoint
        self.stopped_at = None
        self._snapshot = None
        self._epoch = 0

    def _variables(self):
        variables = list(self.model.variables)
        if self.model.optimizer is not None:
            variables += list(self.model.optimizer.variables)
        return variables

    def _take_snapshot(self):
        self._snapshot = [(v, ops.convert_to_numpy(v)) for v in self._variables()]

    def on_train_begin(self, logs=None):
        self.stopped_at = None
        self._take_snapshot()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.stopped_at is None:
            self.stopped_at = (self._epoch, batch, float(loss))
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_at is None:
            self._take_snapshot()

    def on_train_end(self, logs=None):
        if self.stopped_at is not None:
            for variable, value in self._snapshot:
                variable.assign(value)

    def raise_if_stopped(self):
        """Raises a `FloatingPointError` if the last run stopped on a non-finite loss."""
        if self.stopped_at is None:
            return
        epoch, batch, loss = self.stopped_at
        kept = "the weights from before training" if epoch == 0 else f"the weights at the end of epoch {epoch}"
        saved = ""
        if self.checkpoint is not None and self.checkpoint.latest_path() is not None:
            step = self.checkpoint.state()["step"]
            saved = f" The last good checkpoint (step {step}) is {self.checkpoint.latest_path()!r}."
        raise FloatingPointError(
            f"Training stopped: the loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; the model keeps "
            f"{kept}.{saved} Lower the learning rate, or check the data for NaN or Inf values."
        )
