"""A table's schema: each column's type, observed bounds, precision and missingness.

`TableSchema.detect(frame)` reads it off a pandas DataFrame; a JSON file or a
dict overrides any part of it. It is what the table transform encodes by and
decodes to, and it is saved inside the model file.

Detection rules, applied per column in this order (n = non-missing cells,
k = their distinct values):

1. bool dtype, or text whose distinct values are one pair of
   true/false, yes/no, t/f, y/n (any case) → **boolean**.
2. datetime dtype, or text that parses with one date format → **datetime**.
3. numbers:
   - all distinct integers, no missing cell, and either a name like `id`,
     `ID`, `user_id` or n ≥ 20 consecutive values → **id**;
   - k ≤ 2 → **boolean** when the values are 0 and 1, else **categorical**
     (e.g. a sex column coded 1/2);
   - k ≤ min(20, n/4) → **discrete** (ordinal: sampled on its observed values);
   - integers → **integer**; otherwise → **continuous**.
4. other text: all distinct and n ≥ 20, or a name like `id` with all
   distinct → **id**; otherwise → **categorical**.

For every numeric and datetime column the schema keeps its observed minimum
and maximum (samples stay inside them) and its decimal places (read from the
text of a CSV, or the fewest places that represent every float exactly, up
to 8); for every column whether it has missing cells.

Example:
>>> schema = TableSchema.detect(frame)
>>> print(schema.describe())
>>> schema = TableSchema.detect(frame, overrides={"zip": "categorical", "income": {"decimals": 0}})
"""

import json
import re

import numpy as np
import pandas as pd

COLUMN_TYPES = ("continuous", "integer", "discrete", "categorical", "boolean", "datetime", "id")
NUMERIC_TYPES = ("continuous", "integer", "discrete")
DISCRETE_MAX_VALUES = 20
ID_MIN_ROWS = 20
MAX_DECIMALS = 8
BOOLEAN_PAIRS = ({"true", "false"}, {"yes", "no"}, {"t", "f"}, {"y", "n"})
_ID_NAME = re.compile(r"^(id|.*[_\s.-]id|.*Id|.*ID)$")
_FIELDS = (
    "name",
    "type",
    "dtype",
    "missing",
    "minimum",
    "maximum",
    "decimals",
    "categories",
    "datetime_format",
    "datetime_unit",
    "missing_token",
    "id_prefix",
    "id_width",
    "id_start",
)


class ColumnSchema:
    """One column of a `TableSchema`.

    Args:
        name: the column's name.
        type: one of `COLUMN_TYPES`.
        dtype: the pandas dtype the column is returned with (e.g. "int64").
        missing: whether the column has missing cells.
        minimum, maximum: observed bounds (numbers; ISO strings for datetimes).
        decimals: decimal places values are rounded to (None: not rounded).
        categories: observed values of a categorical or boolean column, and
            of a discrete column.
        datetime_format: strftime format of a datetime column read from text
            (None: returned as datetime64 values).
        datetime_unit: "D" (whole days) or "s" (seconds).
        missing_token: the text a CSV writes for a missing cell ("" by default).
        id_prefix, id_width, id_start: how identifiers are regenerated:
            `f"{id_prefix}{i:0{id_width}d}"` for i = id_start, id_start + 1, ...

    Example:
    >>> ColumnSchema("age", "integer", "int64", minimum=18, maximum=90, decimals=0)
    """

    def __init__(
        self,
        name,
        type,
        dtype,
        missing=False,
        minimum=None,
        maximum=None,
        decimals=None,
        categories=None,
        datetime_format=None,
        datetime_unit=None,
        missing_token="",
        id_prefix="",
        id_width=0,
        id_start=0,
    ):
        if type not in COLUMN_TYPES:
            raise ValueError(f"Column {name!r}: `type` must be one of {', '.join(COLUMN_TYPES)}; received {type!r}.")
        if type in ("categorical", "boolean", "discrete") and not categories and not missing:
            raise ValueError(f"Column {name!r} of type {type!r} needs its observed `categories`; received none.")
        if decimals is not None and not (isinstance(decimals, int) and 0 <= decimals <= 15):
            raise ValueError(f"Column {name!r}: `decimals` must be None or an integer in [0, 15]; received {decimals!r}.")
        self.name = str(name)
        self.type = type
        self.dtype = str(dtype)
        self.missing = bool(missing)
        self.minimum = minimum
        self.maximum = maximum
        self.decimals = decimals
        self.categories = None if categories is None else list(categories)
        self.datetime_format = datetime_format
        self.datetime_unit = datetime_unit
        self.missing_token = missing_token
        self.id_prefix = id_prefix
        self.id_width = int(id_width)
        self.id_start = int(id_start)

    def to_dict(self):
        """The column as a JSON-serialisable dict."""
        return {field: _jsonable(getattr(self, field)) for field in _FIELDS}

    @classmethod
    def from_dict(cls, config):
        unknown = sorted(set(config) - set(_FIELDS))
        if unknown:
            raise ValueError(f"Unknown column schema fields {unknown}; expected some of {list(_FIELDS)}.")
        return cls(**config)

    def describe(self):
        """One line: name, type, bounds or categories, decimals, missing."""
        parts = [f"{self.name}: {self.type}"]
        if self.type in ("categorical", "boolean") or (self.type == "discrete" and self.categories):
            shown = ", ".join(map(str, self.categories[:6])) + (", ..." if len(self.categories) > 6 else "")
            parts.append(f"{len(self.categories)} values ({shown})")
        if self.type in NUMERIC_TYPES + ("datetime",) and self.minimum is not None:
            parts.append(f"[{self.minimum}, {self.maximum}]")
        if self.decimals is not None and self.type in ("continuous",):
            parts.append(f"{self.decimals} decimals")
        if self.datetime_format:
            parts.append(f"format {self.datetime_format}")
        if self.missing:
            parts.append("has missing cells")
        return ", ".join(parts)


class TableSchema:
    """The schema of a table: a `ColumnSchema` per column, in the table's order.

    Args:
        columns: list of `ColumnSchema`.

    Example:
    >>> schema = TableSchema.detect(pd.DataFrame({"x": [0.5, 1.25], "c": ["a", "b"]}))
    >>> schema.names
    ['x', 'c']
    """

    def __init__(self, columns):
        self.columns = list(columns)
        names = [column.name for column in self.columns]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"Column names must be unique; {duplicated} appear more than once.")

    @property
    def names(self):
        return [column.name for column in self.columns]

    def __getitem__(self, name):
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"No column {name!r}; the columns are {self.names}.")

    def __len__(self):
        return len(self.columns)

    @classmethod
    def detect(cls, frame, overrides=None, hints=None):
        """Detects the schema of `frame` by the rules in this module's docstring.

        Args:
            frame: a pandas DataFrame.
            overrides: a dict {column: type} or {column: {field: value}},
                or a path to a JSON file holding one, applied after detection
                (a new type re-detects the column's type-specific fields).
            hints: {column: {"decimals", "datetime_format", "missing_token"}}
                read from a CSV file's text (see `keras_score.io.read_frame`).

        Returns:
            a `TableSchema`.
        """
        hints = hints or {}
        overrides = _load_overrides(overrides, list(frame.columns))
        columns = []
        for name in frame.columns:
            override = overrides.get(name, {})
            column = detect_column(frame[name], hints.get(name, {}), override.get("type"))
            config = column.to_dict()
            config.update({key: value for key, value in override.items() if key != "type"})
            columns.append(ColumnSchema.from_dict(config))
        return cls(columns)

    def to_dict(self):
        return {"columns": [column.to_dict() for column in self.columns]}

    @classmethod
    def from_dict(cls, config):
        return cls([ColumnSchema.from_dict(column) for column in config["columns"]])

    def to_json(self, path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)

    def describe(self):
        """Text with one line per column (what `keras-score inspect` prints)."""
        return "\n".join(column.describe() for column in self.columns)


def _load_overrides(overrides, names):
    if overrides is None:
        return {}
    if isinstance(overrides, (str, bytes)) or hasattr(overrides, "__fspath__"):
        try:
            with open(overrides, encoding="utf-8") as f:
                overrides = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"Schema file {str(overrides)!r} cannot be read as JSON ({error}).") from None
    if isinstance(overrides, dict) and "columns" in overrides and isinstance(overrides["columns"], list):
        overrides = {column["name"]: column for column in overrides["columns"]}
    if not isinstance(overrides, dict):
        raise ValueError(f"A schema override must be a dict {{column: type or fields}}; received {type(overrides).__name__}.")
    result = {}
    for name, value in overrides.items():
        if name not in names:
            raise ValueError(f"The schema names a column {name!r} that the table does not have; its columns are {names}.")
        value = {"type": value} if isinstance(value, str) else dict(value)
        value.pop("name", None)
        result[name] = value
    return result


def detect_column(series, hints=None, forced_type=None):
    """The `ColumnSchema` of one pandas Series (see the module docstring for the rules).

    Args:
        series: the column.
        hints: text hints ("decimals", "datetime_format", "missing_token").
        forced_type: a type from `COLUMN_TYPES` to use instead of detecting one.

    Returns:
        a `ColumnSchema`.
    """
    hints = hints or {}
    name = str(series.name)
    missing = series.isna().to_numpy()
    values = series[~missing]
    common = {
        "name": name,
        "dtype": str(series.dtype),
        "missing": bool(missing.any()),
        "missing_token": hints.get("missing_token", ""),
    }
    kind = forced_type or _detect_type(name, series, values)
    if forced_type is not None and forced_type not in COLUMN_TYPES:
        raise ValueError(f"Column {name!r}: type must be one of {', '.join(COLUMN_TYPES)}; received {forced_type!r}.")
    if kind == "id":
        return ColumnSchema(type="id", **common, **_id_fields(name, values))
    if kind in ("categorical", "boolean"):
        return ColumnSchema(type=kind, categories=_sorted_values(values), **common)
    if kind == "datetime":
        stamps = pd.to_datetime(values)
        unit = "D" if bool((stamps == stamps.dt.normalize()).all()) else "s"
        return ColumnSchema(
            type="datetime",
            minimum=stamps.min().isoformat() if len(stamps) else None,
            maximum=stamps.max().isoformat() if len(stamps) else None,
            decimals=0,
            datetime_format=hints.get("datetime_format"),
            datetime_unit=unit,
            **common,
        )
    numbers = _as_numbers(name, values)
    decimals = hints.get("decimals", decimal_places(numbers)) if kind != "integer" else 0
    return ColumnSchema(
        type=kind,
        minimum=_scalar(values.min() if pd.api.types.is_numeric_dtype(values.dtype) else numbers.min()) if len(numbers) else None,
        maximum=_scalar(values.max() if pd.api.types.is_numeric_dtype(values.dtype) else numbers.max()) if len(numbers) else None,
        decimals=decimals,
        categories=_sorted_values(values) if kind == "discrete" else None,
        **common,
    )


def _detect_type(name, series, values):
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype):
        numbers = values.to_numpy(dtype=np.float64)
        distinct = np.unique(numbers)
        integral = bool(np.all(numbers == np.round(numbers)))
        if integral and len(distinct) == len(numbers) and not series.isna().any() and len(numbers) > 0:
            consecutive = distinct[-1] - distinct[0] + 1 == len(distinct)
            if _ID_NAME.match(name) or (len(numbers) >= ID_MIN_ROWS and consecutive):
                return "id"
        if len(distinct) <= 2:
            return "boolean" if integral and set(distinct) <= {0.0, 1.0} and len(distinct) == 2 else "categorical"
        if len(distinct) <= min(DISCRETE_MAX_VALUES, len(numbers) // 4):
            return "discrete"
        return "integer" if integral else "continuous"
    text = values.astype(str)
    distinct = set(text)
    if len(distinct) == 2 and {value.lower() for value in distinct} in BOOLEAN_PAIRS:
        return "boolean"
    if len(distinct) == len(text) and not series.isna().any() and (len(text) >= ID_MIN_ROWS or _ID_NAME.match(name)):
        return "id"
    return "categorical"


def _as_numbers(name, values):
    try:
        return values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"Column {name!r} holds values that are not numbers; it cannot be numeric.") from None


def _id_fields(name, values):
    text = values.astype(str).tolist()
    matches = [re.fullmatch(r"(\D*)(\d+)", value) for value in text]
    prefixes = {match.group(1) for match in matches if match}
    if text and all(matches) and len(prefixes) == 1:
        numbers = [int(match.group(2)) for match in matches]
        width = max(len(match.group(2)) for match in matches) if prefixes != {""} else 0
        return {"id_prefix": prefixes.pop(), "id_width": width, "id_start": min(numbers)}
    return {"id_prefix": f"{name}_", "id_width": 0, "id_start": 0}


def _sorted_values(values):
    unique = pd.unique(values)
    try:
        unique = sorted(unique)
    except TypeError:
        unique = sorted(unique, key=str)
    return [_scalar(value) for value in unique]


def _scalar(value):
    """A numpy scalar as the Python value JSON writes (integral floats stay floats)."""
    return value.item() if isinstance(value, np.generic) else value


def _jsonable(value):
    if isinstance(value, list):
        return [_scalar(item) for item in value]
    return _scalar(value)


def decimal_places(values, maximum=MAX_DECIMALS):
    """The fewest decimal places d ≤ `maximum` at which every value is exactly round(value, d); None if none.

    Example:
    >>> decimal_places(np.array([1.5, 2.25]))
    2
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return 0
    scale = np.maximum(1.0, np.abs(values))
    for places in range(maximum + 1):
        if np.all(np.abs(values - np.round(values, places)) <= 1e-9 * scale):
            return places
    return None
