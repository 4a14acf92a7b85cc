"""`TableModel`: a score model of a typed table's rows, fitted on a DataFrame, sampling DataFrames."""

import math

import keras
import numpy as np
import pandas as pd

from keras_score import validation
from keras_score.guidance import Inpainting
from keras_score.model import ScoreModel
from keras_score.networks import MLP
from keras_score.tables.schema import TableSchema
from keras_score.tables.transform import TableTransform, check_frame

DEFAULT_STEPS = 2000  # the most steps of the default training length
DEFAULT_PASSES = 400  # passes over the rows of the default training length
MIN_DEFAULT_STEPS = 100
DEFAULT_BATCH_SIZE = 256
DEFAULT_LEARNING_RATE = 2e-3
DEFAULT_HIDDEN_UNITS = 256
DEFAULT_BLOCKS = 3
MAX_POOL_ROWS = 200_000


@keras.saving.register_keras_serializable(package="keras_score")
class TableModel(ScoreModel):
    """A `ScoreModel` of table rows behind a reversible `TableTransform`: DataFrame in, DataFrame out.

    `fit(frame)` detects the schema (or takes the one given), fits the
    transform, and trains the denoiser on the encoded rows; when the model
    is not compiled it compiles itself with Adam and a cosine-decayed
    learning rate over `steps` optimiser steps. `generate(n)` samples
    encoded rows and decodes them to a DataFrame with the table's columns,
    order and dtypes: exact categories, integer and discrete values on their
    observed sets, values within the observed bounds at the column's
    precision, missing cells at their learned rate, regenerated identifiers.
    `generate(n, where={"gender": "F"})` samples the other columns given
    fixed ones (inpainting in the encoded space). The transform and schema
    are saved in the `.keras` file.

    Each training row is encoded in up to `MAX_POOL_ROWS // rows` versions
    with fresh dequantization noise (atoms and missing cells), so training
    with many steps does not see one noise draw over and over.

    Args:
        network: the denoiser's network (default `MLP(256, 3 blocks)`).
        schema: a `TableSchema`, or overrides of the detected schema (a dict
            {column: type or fields}, or a JSON file's path).
        numerical: "quantile" (default) or "standard" encoding of numbers.
        transform: a fitted `TableTransform` (or its config), instead of
            `schema` / `numerical`.
        **kwargs: `ScoreModel` arguments (schedule, parameterization,
            objective, seed, ...).

    Example:
    ```python
    frame = pd.read_csv("records.csv")
    model = keras_score.tables.TableModel(seed=0)
    model.fit(frame)                                    # 400 passes over the rows, 100-2000 steps
    synthetic = model.generate(1000, seed=0)             # a DataFrame like `frame`
    women = model.generate(100, where={"gender": "F"}, seed=1)
    model.save("records.keras")
    ```

    Reference: Kotelnikov et al. 2023 (TabDDPM); Karras et al. 2022 (EDM).
    """

    def __init__(self, network=None, schema=None, numerical="quantile", transform=None, **kwargs):
        if network is None:
            network = MLP(hidden_units=DEFAULT_HIDDEN_UNITS, num_blocks=DEFAULT_BLOCKS)
        if isinstance(transform, dict):
            transform = TableTransform.from_config(transform)
        if transform is None:
            given = schema if isinstance(schema, TableSchema) else None
            transform = TableTransform(given, numerical, overrides=None if given is not None else schema)
        self.transform = transform
        super().__init__(network, **kwargs)

    @property
    def schema(self):
        """The table's `TableSchema` (None before the first `fit`)."""
        return self.transform.schema

    @staticmethod
    def default_steps(num_rows, batch_size=DEFAULT_BATCH_SIZE):
        """The default training length: 400 passes over the rows, at least 100 and at most 2000 optimiser steps.

        A longer fit of a small table reproduces its rows: on 142 rows of
        wine, 2000 steps (3600 passes) put 92% of the sampled rows closer to
        a training row than 95% of unseen real rows are, against 7% after
        400 passes, for 0.012 more SDMetrics quality; 400 passes is where
        the synthetic rows' closest-record distances still match the unseen
        rows' on the five tables of 142-455 rows measured
        (benchmarks/README.md, "How long to train a small table").

        Args:
            num_rows: rows of the table.
            batch_size: rows per optimiser step.

        Returns:
            int, the number of optimiser steps.

        Example:
        >>> TableModel.default_steps(142), TableModel.default_steps(5093)
        (222, 2000)
        """
        num_rows = validation.check_int(num_rows, "num_rows", 1)
        batch_size = validation.check_int(batch_size, "batch_size", 1)
        passes = math.ceil(DEFAULT_PASSES * num_rows / batch_size)
        return min(DEFAULT_STEPS, max(MIN_DEFAULT_STEPS, passes))

    def fit(self, x=None, y=None, steps=None, epochs=None, batch_size=None, learning_rate=None, **kwargs):
        """Trains on a DataFrame `x`; the length is `steps` optimiser steps or `epochs`.

        Args:
            x: a pandas DataFrame with the table's columns.
            y: unused (the model is unconditional; fix columns at `generate`).
            steps: optimiser steps (default `default_steps(len(x), batch_size)`:
                400 passes over the rows, 100-2000 steps); exclusive with `epochs`.
            epochs: passes over the rows, as `keras.Model.fit`.
            batch_size: rows per step (default 256, at most the rows given).
            learning_rate: peak learning rate of the default optimiser
                (used only when the model is not compiled; default 2e-3).
            **kwargs: `keras.Model.fit` arguments (callbacks, verbose, ...).

        Returns:
            the Keras `History`.
        """
        if y is not None:
            raise ValueError("A TableModel learns the rows alone; `y` must be None (fix columns with `generate(where=...)`).")
        if steps is not None and epochs is not None:
            raise ValueError("Give `steps` or `epochs`, not both.")
        frame = check_frame(x, "x")
        batch_size = validation.check_int(DEFAULT_BATCH_SIZE if batch_size is None else batch_size, "batch_size", 1)
        if epochs is None and steps is None:
            steps = self.default_steps(len(frame), batch_size)
        elif epochs is None:
            steps = validation.check_int(steps, "steps", 1)
        new_transform = not self.transform.is_fitted
        schema_before = self.transform.schema
        if new_transform:
            self.transform.fit(frame)
        try:
            data = self._training_rows(frame, steps, batch_size)
            batch_size = min(batch_size, len(data))
            if steps is not None:  # whole epochs of ceil(steps / epochs) batches: `steps` up to epochs − 1
                epochs = math.ceil(steps / math.ceil(len(data) / batch_size))
                data = data[: math.ceil(steps / epochs) * batch_size]
            steps_per_epoch = math.ceil(len(data) / batch_size)
            if not self.compiled:
                rate = validation.check_positive_float(
                    DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate, "learning_rate"
                )
                decay = keras.optimizers.schedules.CosineDecay(rate, epochs * steps_per_epoch, alpha=0.1)
                self.compile(optimizer=keras.optimizers.Adam(decay))
            self.feature_names = self.transform.names
            return super().fit(data, batch_size=batch_size, epochs=epochs, shuffle=True, **kwargs)
        except BaseException:
            if new_transform and not self.built:
                self.transform.schema, self.transform.encoders = schema_before, None
            raise

    def _training_rows(self, frame, steps, batch_size):
        """The encoded rows, in as many dequantization versions as the steps will draw (up to `MAX_POOL_ROWS` rows)."""
        seed = 0 if self.seed is None else self.seed
        versions = 1
        if steps is not None:
            versions = max(1, min(math.ceil(steps * batch_size / len(frame)), MAX_POOL_ROWS // len(frame)))
        if self.transform.width == 0:
            raise ValueError("The table has no column to learn (only identifiers).")
        return np.concatenate([self.transform.transform(frame, seed=seed + v) for v in range(versions)])

    def generate(self, num_samples, where=None, seed=None, guidance=None, batch_size=None, **kwargs):
        """Draws `num_samples` rows as a DataFrame with the table's columns and dtypes.

        Args:
            num_samples: number of rows.
            where: {column: value} to fix in every row (None for a missing
                cell); the other columns are sampled given them.
            seed, batch_size: as `ScoreModel.generate`.
            guidance: further guidance, as `ScoreModel.generate`.
            **kwargs: `ScoreModel.generate` arguments (sampler, steps, ...).

        Returns:
            a pandas DataFrame of `num_samples` rows.
        """
        frames = self.generate_frames(num_samples, where, seed=seed, guidance=guidance, batch_size=batch_size, **kwargs)
        return pd.concat(list(frames), ignore_index=True)

    def generate_frames(self, num_samples, where=None, guidance=None, **kwargs):
        """`generate` batch by batch: a generator of DataFrames, one per `batch_size` rows (bounded memory).

        Identifiers run on across batches. Arguments as `generate`.
        """
        self._check_built("generate")
        if kwargs.get("return_trajectory"):
            raise ValueError("`return_trajectory` is not available for tables; use `ScoreModel` on encoded rows.")
        batches = self.generate_batches(num_samples, guidance=self._where_guidance(where, guidance), **kwargs)
        return self._decoded(batches)

    def _decoded(self, batches):
        start = 0
        for rows in batches:
            yield self.transform.inverse_transform(rows, start_index=start)
            start += len(rows)

    def _where_guidance(self, where, guidance):
        if not where:
            return guidance
        if not isinstance(where, dict):
            raise ValueError(f"`where` must be a dict {{column: value}}; received {type(where).__name__}.")
        values, mask = self.transform.condition(where)
        inpainting = Inpainting(np.where(mask > 0, values, np.nan), mask)
        return inpainting if guidance is None else [inpainting] + (list(guidance) if isinstance(guidance, (list, tuple)) else [guidance])

    def encode(self, frame):
        """The deterministic encoding of `frame` (atoms at their steps' midpoints), float32 (rows, width)."""
        return self.transform.transform(check_frame(frame, "frame"))

    def log_prob(self, x, **kwargs):
        """Log-density of the rows of DataFrame `x` in the encoded space (see `ScoreModel.log_prob`)."""
        return super().log_prob(self.encode(x) if isinstance(x, pd.DataFrame) else x, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["transform"] = self.transform.get_config()
        return config
