"""`SeededBatches`: training batches as a function of the global step, so a resumed run sees the same data.

Batch k of a run (k = 0, 1, ... over all epochs) holds the rows
perm_e[(k mod m)·B : (k mod m + 1)·B] of the training arrays, where
m = ⌈n / B⌉ batches make one pass over the data, e = ⌊k / m⌋ is the pass,
and perm_e is the permutation drawn by `numpy.random.default_rng((seed, e))`.
The data position of a checkpoint is then one number, the step k, and a
run restarted from it draws batch k, k + 1, ... exactly as the
uninterrupted run did, whatever the process.

Example:
>>> batches = SeededBatches(x, batch_size=256, seed=0, start_step=1000)
>>> batches.rows(1000)[:3]  # the rows of global step 1000
array([...])
"""

import math

import keras
import numpy as np


class SeededBatches(keras.utils.PyDataset):
    """Keras batches of arrays in a seeded order that depends only on the global step.

    Batch i of an epoch is global step `epoch_start_step + i`; whoever
    runs the epochs sets `epoch_start_step` before each one (the
    `Checkpoint` callback does, in `on_epoch_begin`), so what Keras fetches
    ahead or in a background thread is still a pure function of the step.
    `fit` must get it with `shuffle=False` (Keras would otherwise shuffle
    the batches' order within an epoch).

    Args:
        arrays: a structure (dict, tuple) of arrays with the same first
            dimension n, as `fit` takes them: `x`, or `(x, y)`.
        batch_size: rows per batch B.
        seed: the order's seed (the model's training seed).
        start_step: the global step of the first epoch's first batch.
        steps_per_epoch: batches per Keras epoch (default m = ⌈n / B⌉).
    """

    def __init__(self, arrays, batch_size, seed, start_step=0, steps_per_epoch=None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.arrays = keras.tree.map_structure(np.asarray, arrays)
        self.num_rows = len(keras.tree.flatten(self.arrays)[0])
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch_start_step = int(start_step)
        self.batches_per_pass = math.ceil(self.num_rows / self.batch_size)
        self.steps_per_epoch = int(steps_per_epoch or self.batches_per_pass)
        self._permutation = (None, None)

    @property
    def num_batches(self):
        return self.steps_per_epoch

    def __len__(self):
        return self.steps_per_epoch

    def rows(self, step):
        """The indices of the rows of global step `step`."""
        data_pass, index = divmod(int(step), self.batches_per_pass)
        if self._permutation[0] != data_pass:
            rng = np.random.default_rng((self.seed, data_pass))
            self._permutation = (data_pass, rng.permutation(self.num_rows))
        return self._permutation[1][index * self.batch_size : (index + 1) * self.batch_size]

    def __getitem__(self, index):
        rows = self.rows(self.epoch_start_step + index)
        batch = keras.tree.map_structure(lambda a: a[rows], self.arrays)
        return tuple(batch) if isinstance(batch, list) else batch
