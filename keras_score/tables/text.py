"""Typed columns from the text cells of a CSV file, and typed columns back to text.

`parse_text_frame` turns a DataFrame of strings (as read with `dtype=str`)
into typed columns — numbers (int64 when every cell is an integer, else
float64), datetimes (when every cell parses with one format), text
otherwise — and records what the text says that the values do not: each
numeric column's decimal places, each datetime column's format, and the
token the file writes for a missing cell. `format_frame` writes a typed
frame back in those formats, so a sampled CSV looks like its input.

Example:
>>> typed, hints = parse_text_frame(pd.DataFrame({"a": ["1.50", "", "2.25"]}))
>>> typed.a.tolist(), hints["a"]
([1.5, nan, 2.25], {'decimals': 2, 'missing_token': ''})
"""

import re
import warnings

import numpy as np
import pandas as pd

MISSING_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "none", "#N/A", "?", "-")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d*)\.(\d*)$")


def parse_text_frame(frame):
    """Typed columns and their text hints from a DataFrame of strings.

    Args:
        frame: a DataFrame whose cells are strings.

    Returns:
        (typed frame, hints): hints is {column: {"decimals", "datetime_format",
        "missing_token"}} with the keys that apply.

    Raises:
        ValueError: a numeric column holding Inf, naming the column.
    """
    columns, hints = {}, {}
    for name in frame.columns:
        columns[name], hints[name] = parse_text_column(frame[name].astype(str).str.strip(), name)
    return pd.DataFrame(columns), hints


def parse_text_column(text, name):
    """One column of strings → (typed Series, hints); see `parse_text_frame`."""
    missing = text.isin(MISSING_TOKENS).to_numpy()
    hints = {"missing_token": _most_common(text[missing]) if missing.any() else ""}
    cells = text[~missing]
    if len(cells) == 0:
        return pd.Series(np.full(len(text), np.nan), name=name), hints
    numbers = pd.to_numeric(cells, errors="coerce")
    if not numbers.isna().any():
        if not np.all(np.isfinite(numbers.to_numpy(dtype=np.float64))):
            raise ValueError(f"column {name!r} holds an infinite value; expected finite numbers or missing cells.")
        if cells.str.match(_INTEGER).all():
            values = pd.Series(np.zeros(len(text), dtype=np.int64), name=name)
            values = values.astype("Int64") if missing.any() else values
            values[~missing] = numbers.astype(np.int64).to_numpy()
            if missing.any():
                values[missing] = pd.NA
            return values, {**hints, "decimals": 0}
        values = pd.Series(np.full(len(text), np.nan), name=name)
        values[~missing] = numbers.to_numpy(dtype=np.float64)
        return values, {**hints, "decimals": _decimals(cells)}
    date_format = _date_format(cells)
    if date_format is not None:
        stamps = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]", name=name)
        stamps[~missing] = pd.to_datetime(cells, format=date_format).astype("datetime64[ns]")
        return stamps, {**hints, "datetime_format": date_format}
    values = text.where(~missing, None).rename(name)
    return values, hints


def _most_common(cells):
    return cells.value_counts().index[0]


def _decimals(cells):
    """The most decimal places written in `cells`; None when any is in exponent notation."""
    if cells.str.contains(r"[eE]").any():
        return None
    places = cells.str.extract(_DECIMAL)[1].fillna("").str.len()
    return int(places.max())


def _date_format(cells):
    """The one strftime format every cell parses with, or None."""
    first = cells.iloc[0]
    if not re.search(r"\d", first) or _INTEGER.match(first):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guessed = pd.tseries.api.guess_datetime_format(first)
    if guessed is None:
        return None
    try:
        pd.to_datetime(cells, format=guessed)
    except (ValueError, TypeError):
        return None
    return guessed


def format_frame(frame, schema):
    """The cells of typed `frame` as text in the formats of `schema` (decimals, date format, missing token).

    Args:
        frame: a DataFrame with the schema's columns (e.g. sampled rows).
        schema: a `TableSchema`.

    Returns:
        a DataFrame of strings.
    """
    columns = {}
    for column in schema.columns:
        values = frame[column.name]
        missing = values.isna().to_numpy()
        if column.type in ("continuous", "integer", "discrete") or (
            column.type in ("categorical", "boolean") and pd.api.types.is_float_dtype(values.dtype)
        ):
            text = _format_numbers(values, column)
        elif column.type == "datetime":
            iso = "%Y-%m-%d" if column.datetime_unit == "D" else "%Y-%m-%d %H:%M:%S"
            text = pd.to_datetime(values).dt.strftime(column.datetime_format or iso)
        else:
            text = values.astype(object).map(str)
        text = pd.Series(np.asarray(text, dtype=object), index=frame.index)
        text[missing] = column.missing_token
        columns[column.name] = text
    return pd.DataFrame(columns)


def _format_numbers(values, column):
    numbers = pd.to_numeric(values).to_numpy(dtype=np.float64)
    if pd.api.types.is_integer_dtype(values.dtype):
        return [str(int(v)) if np.isfinite(v) else "" for v in numbers]
    places = column.decimals
    if places is None:
        return [repr(float(v)) for v in numbers]
    return [f"{v:.{places}f}" for v in numbers]


def parse_where(assignments, schema):
    """{column: value} from "COLUMN=VALUE" texts, each value read as its column's type.

    A number for numeric columns, a date in the column's format (or ISO) for
    datetimes, the text of one of the categories for categorical and boolean
    columns, and a missing-cell token (e.g. "NA" or nothing) for a missing cell.

    Args:
        assignments: list of strings such as "gender=F" or "age=30".
        schema: the model's `TableSchema`.

    Returns:
        dict for `TableModel.generate(where=...)`.

    Raises:
        ValueError: naming the assignment that cannot be read.

    Example:
    >>> parse_where(["gender=F", "age=30"], model.schema)
    {'gender': 'F', 'age': 30.0}
    """
    where = {}
    for text in assignments:
        name, separator, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not separator or name not in schema.names:
            raise ValueError(
                f"--where {text!r}: expected COLUMN=VALUE with a column of the model's table ({', '.join(schema.names)})."
            )
        where[name] = _where_value(schema[name], value, text)
    return where


def _where_value(column, value, text):
    if value in MISSING_TOKENS and not (column.categories and value in map(str, column.categories)):
        return None
    if column.type in ("categorical", "boolean"):
        for category in column.categories:
            if str(category) == value:
                return category
        shown = ", ".join(map(str, column.categories[:10]))
        raise ValueError(f"--where {text!r}: {column.name!r} takes one of {shown}; received {value!r}.")
    if column.type == "datetime":
        try:
            return pd.to_datetime(value, format=column.datetime_format) if column.datetime_format else pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ValueError(f"--where {text!r}: {column.name!r} takes dates like {column.minimum}; received {value!r}.") from None
    if column.type == "id":
        raise ValueError(f"--where {text!r}: {column.name!r} is an identifier; it is regenerated and cannot be fixed.")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise ValueError(f"--where {text!r}: {column.name!r} takes a number; received {value!r}.")
    return number
