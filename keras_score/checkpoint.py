"""`Checkpoint`: the whole training state every N steps, written atomically; `fit` resumes from it exactly.

A checkpoint is a `.keras` file of the model with its optimizer — the raw
weights, the EMA, the standardisation, the optimizer's moments and step,
the training-noise generator's state — and `checkpoint.json` beside it
with the data position (the global step), the data order's seed and the
batch size. Each file is written under a temporary name in the same folder
and renamed into place, the `.keras` file first, so a process killed at any
moment (SIGKILL included) leaves the previous checkpoint whole.

`ScoreModel.fit(x, ..., callbacks=[Checkpoint(folder, every_steps=N)])`
restores the latest checkpoint in `folder` when there is one and goes on
from its step. Given arrays (or dicts of arrays), `fit` then draws its
batches with `SeededBatches` — batch k depends only on the data order's
seed and k — so a run killed and restarted reaches the weights of the
uninterrupted run, to float tolerance on the same backend; the Keras
epochs of a resumed run are shifted by the steps already taken within the
interrupted epoch, and the last one is cut short at the run's total steps.
Given a `tf.data` dataset or a `DataLoader`, the weights, optimizer, EMA
and noise state are restored and training goes on from the start of the
checkpoint's epoch: exact only when N is a multiple of the epoch's steps.

Example:
>>> checkpoint = Checkpoint("runs/ring", every_steps=500)
>>> model.fit(x, batch_size=256, epochs=100, callbacks=[checkpoint])  # killed, then run again: resumes
>>> checkpoint.latest_path()
'runs/ring/step-000012500.keras'
"""

import json
import math
import os
import uuid

import keras
from keras import ops

from keras_score import validation
from keras_score.seeded_batches import SeededBatches

STATE_FILE = "checkpoint.json"


class Checkpoint(keras.callbacks.Callback):
    """Saves model, optimizer, EMA, noise state and data position every `every_steps` steps.

    Args:
        directory: the folder of the checkpoints (created when needed).
        every_steps: steps between checkpoints, a positive integer.
        keep: how many checkpoint files to keep (the newest), ≥ 1.

    Attributes:
        step: the global step of the last batch trained.
        start_step: the step `fit` resumed from (0 for a fresh run).
    """

    def __init__(self, directory, every_steps=1000, keep=2):
        super().__init__()
        self.directory = os.fspath(directory)
        self.every_steps = validation.check_int(every_steps, "every_steps", minimum=1)
        self.keep = validation.check_int(keep, "keep", minimum=1)
        self.step = 0
        self.start_step = 0
        self._run = None

    def state(self):
        """The contents of checkpoint.json ({"step", "file", "seed", "batch_size", "rows"}), or None."""
        path = os.path.join(self.directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def latest_path(self):
        """The path of the latest checkpoint's `.keras` file, or None."""
        state = self.state()
        return None if state is None else os.path.join(self.directory, state["file"])

    def prepare_fit(self, model, x, y, kwargs):
        """Restores the latest checkpoint into `model` and returns the (x, y, kwargs) `fit` runs with.

        Called by `ScoreModel.fit` once the model and its optimizer are built;
        arrays become `SeededBatches` starting at the checkpoint's step, and
        `initial_epoch` is set to its epoch.
        """
        state = self.state()
        arrays = hasattr(x, "shape") or isinstance(x, dict)
        given_batch_size = kwargs.pop("batch_size", None)
        batch_size = given_batch_size or 32
        steps_per_epoch = kwargs.pop("steps_per_epoch", None)
        epochs = kwargs.get("epochs", 1)
        if arrays:
            if kwargs.get("validation_split"):
                raise ValueError("`validation_split` cannot be used with a Checkpoint; give `validation_data`.")
            kwargs.pop("shuffle", None)
            rows = len(keras.tree.flatten(x)[0])
            seed = model.seed if model.seed is not None else validation.random_seed()
        else:
            rows, seed = None, None
            if steps_per_epoch is None and hasattr(x, "__len__"):
                steps_per_epoch = len(x)
            if steps_per_epoch is None:
                raise ValueError("`steps_per_epoch` is needed to checkpoint a dataset whose length is unknown.")
        if state is not None:
            for name, value in (("batch_size", batch_size if arrays else None), ("rows", rows)):
                if state.get(name) != value:
                    raise ValueError(
                        f"The checkpoint in {self.directory!r} was written with {name}={state.get(name)}; "
                        f"this run has {name}={value}. Resume with the same data and batch size, or use another folder."
                    )
            seed = state["seed"]
            model.load_weights(os.path.join(self.directory, state["file"]))
        self.start_step = self.step = 0 if state is None else int(state["step"])
        if arrays:
            batches = SeededBatches((x,) if y is None else (x, y), batch_size, seed, self.start_step, steps_per_epoch)
            steps_per_epoch = batches.steps_per_epoch
            x, y = batches, None
            kwargs["shuffle"] = False  # the order is the batches'; Keras would shuffle it within each epoch
        else:
            kwargs["steps_per_epoch"] = steps_per_epoch
            if given_batch_size is not None:
                kwargs["batch_size"] = given_batch_size
        initial_epoch = self.start_step // steps_per_epoch
        kwargs["initial_epoch"] = max(kwargs.get("initial_epoch", 0), initial_epoch)
        self._run = {
            "seed": seed,
            "batch_size": batch_size if arrays else None,
            "rows": rows,
            "steps_per_epoch": steps_per_epoch,
            "initial_epoch": kwargs["initial_epoch"],
            "total_steps": epochs * steps_per_epoch,
            "batches": x if arrays else None,
        }
        if not arrays:  # a dataset restarts at its epoch's first batch
            self.start_step = self.step = kwargs["initial_epoch"] * steps_per_epoch
        return x, y, kwargs

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.start_step + (epoch - self._run["initial_epoch"]) * self._run["steps_per_epoch"]
        if self._run["batches"] is not None:
            self._run["batches"].epoch_start_step = self._epoch_start

    def on_train_batch_end(self, batch, logs=None):
        previous, self.step = self.step, self._epoch_start + batch + 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return  # never a checkpoint of a diverged state (the loss guard stops training)
        if self.step // self.every_steps > previous // self.every_steps and self._weights_are_finite():
            self.save()
        if self.step >= self._run["total_steps"]:
            self.model.stop_training = True  # a resumed run's last epoch ends at the run's total steps

    def _weights_are_finite(self):
        return all(
            bool(ops.all(ops.isfinite(v))) for v in self.model.trainable_variables if "float" in str(v.dtype)
        )

    def save(self):
        """Writes the checkpoint of the current step (the `.keras` file, then checkpoint.json) atomically."""
        os.makedirs(self.directory, exist_ok=True)
        name = f"step-{self.step:09d}.keras"
        temporary = os.path.join(self.directory, f".{uuid.uuid4().hex}.keras")
        try:
            self.model.save(temporary)
            os.replace(temporary, os.path.join(self.directory, name))
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        state = {key: self._run[key] for key in ("seed", "batch_size", "rows")}
        state.update(step=self.step, file=name)
        temporary = os.path.join(self.directory, f".{uuid.uuid4().hex}.json")
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(temporary, os.path.join(self.directory, STATE_FILE))
        files = sorted(f for f in os.listdir(self.directory) if f.startswith("step-") and f.endswith(".keras"))
        for old in files[: -self.keep]:
            os.remove(os.path.join(self.directory, old))
