"""The reversible table transform: a typed DataFrame ↔ the real matrix a score model learns.

Example:
>>> transform = TableTransform().fit(frame)
>>> x = transform.transform(frame, seed=0)           # float32 (rows, transform.width)
>>> back = transform.inverse_transform(x)            # a DataFrame like `frame`
"""

import keras
import numpy as np
import pandas as pd

from keras_score import validation
from keras_score.tables.encoders import CategoricalEncoder, IdEncoder, NumericEncoder
from keras_score.tables.schema import TableSchema

NUMERICAL_ENCODINGS = ("quantile", "standard")


@keras.saving.register_keras_serializable(package="keras_score")
class TableTransform:
    """A typed table ↔ real columns, one encoder per column (see `keras_score.tables.encoders`).

    The inverse returns exact categories, integer and discrete values on their
    observed sets, values within the observed bounds rounded to each column's
    decimals, missing cells at the learned indicator, regenerated
    identifiers, datetimes in their original format, and the input's dtypes.

    Args:
        schema: a `TableSchema`, or None to detect it at `fit`.
        numerical: "quantile" (quantile normalisation with atoms, default) or
            "standard" (standardisation) for numeric and datetime columns.
        overrides: schema overrides applied at detection (a dict or a JSON
            path, see `TableSchema.detect`).

    Example:
    >>> transform = TableTransform(overrides={"zip": "categorical"}).fit(frame)
    >>> transform.names[:3]
    ['age', 'zip=10115', 'zip=20095']
    """

    def __init__(self, schema=None, numerical="quantile", overrides=None, encoders=None):
        self.schema = TableSchema.from_dict(schema) if isinstance(schema, dict) else schema
        self.numerical = validation.check_choice(numerical, "numerical", NUMERICAL_ENCODINGS)
        self.overrides = overrides
        self.encoders = None
        if self.schema is not None and encoders is not None:  # a fitted transform's config
            self.encoders = [self._encoder(column).set_config(config) for column, config in zip(self.schema.columns, encoders)]

    def _encoder(self, column):
        if column.type == "id":
            return IdEncoder(column)
        if column.type in ("categorical", "boolean"):
            return CategoricalEncoder(column)
        return NumericEncoder(column, self.numerical)

    @property
    def is_fitted(self):
        return self.encoders is not None

    @property
    def width(self):
        """The number of real columns of the encoding."""
        return sum(encoder.width for encoder in self._fitted().encoders)

    @property
    def names(self):
        """The names of the encoded columns (e.g. "age", "gender=F", "income:missing")."""
        return [name for encoder in self._fitted().encoders for name in encoder.names]

    def _fitted(self):
        if not self.is_fitted:
            raise ValueError("This TableTransform is not fitted yet; call `fit(frame)` first.")
        return self

    def fit(self, frame):
        """Detects the schema (unless given) and fits every column's encoder to `frame`; returns self."""
        frame = check_frame(frame, "frame")
        if self.schema is None:
            self.schema = TableSchema.detect(frame, overrides=self.overrides)
        self._check_columns(frame)
        self.encoders = [self._encoder(column).fit(frame[column.name]) for column in self.schema.columns]
        return self

    def _check_columns(self, frame):
        if list(frame.columns) != self.schema.names:
            raise ValueError(
                f"The table's columns {list(frame.columns)} differ from the schema's {self.schema.names} "
                "(same names in the same order expected)."
            )

    def transform(self, frame, seed=None, strict=True):
        """The encoding of `frame`: float32 (rows, width).

        Args:
            frame: a DataFrame with the schema's columns.
            seed: seed of the dequantization noise (atoms drawn in their CDF
                step, missing values from the prior) for training; None
                encodes deterministically (steps' midpoints, 0 for missing).
            strict: raise on categories the model has not seen (else they
                encode as all-zero codes, for distances to unseen rows).
        """
        self._fitted()
        frame = check_frame(frame, "frame")
        self._check_columns(frame)
        rng = None if seed is None else np.random.default_rng(seed)
        blocks = [encoder.encode(frame[encoder.column.name], rng, strict) for encoder in self.encoders]
        return np.concatenate([np.zeros((len(frame), 0))] + blocks, axis=1).astype("float32")

    def inverse_transform(self, x, start_index=0):
        """The DataFrame of encoded rows `x` (rows, width); identifiers numbered from `start_index`."""
        self._fitted()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.width:
            raise ValueError(f"`x` must have shape (rows, {self.width}); received {x.shape}.")
        columns, offset = {}, 0
        for encoder in self.encoders:
            columns[encoder.column.name] = encoder.decode(x[:, offset : offset + encoder.width], start_index)
            offset += encoder.width
        return pd.DataFrame(columns)

    def condition(self, where):
        """Encoded values and mask (both (width,)) that fix the columns of `where` ({column: value}).

        A value of None fixes the cell as missing (for a column with missing cells).
        """
        self._fitted()
        values, mask = np.zeros(self.width, "float32"), np.zeros(self.width, "float32")
        offsets = np.cumsum([0] + [encoder.width for encoder in self.encoders])
        by_name = {encoder.column.name: (encoder, offset) for encoder, offset in zip(self.encoders, offsets)}
        for name, value in where.items():
            if name not in by_name:
                raise ValueError(f"`where` names a column {name!r} that the table does not have; its columns are {self.schema.names}.")
            encoder, offset = by_name[name]
            try:
                block, known = encoder.condition(value)
            except ValueError as error:
                raise ValueError(f"`where`: {error}") from None
            values[offset : offset + encoder.width], mask[offset : offset + encoder.width] = block, known
        return values, mask

    def get_config(self):
        if not self.is_fitted:
            return {"schema": None, "numerical": self.numerical, "overrides": self.overrides, "encoders": None}
        return {
            "schema": self.schema.to_dict(),
            "numerical": self.numerical,
            "overrides": None,
            "encoders": [encoder.get_config() for encoder in self.encoders],
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def check_frame(frame, name):
    """`frame` as a pandas DataFrame with string column names, or a ValueError naming `name`."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"`{name}` must be a pandas DataFrame; received {type(frame).__name__}.")
    if len(frame) == 0 or frame.shape[1] == 0:
        raise ValueError(f"`{name}` must have at least one row and one column; received shape {frame.shape}.")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    return frame
