"""Reading and writing numeric tables (CSV, NPY, NPZ) for the command line.

`read_table` loads and validates a table of training data; `write_table`
writes samples atomically; `atomic_path` lets any writer (e.g. `model.save`)
replace its target only once the whole file is written.

Example:
>>> import numpy as np
>>> write_table("points.csv", np.zeros((3, 2)), ["a", "b"])
>>> read_table("points.csv")
(array([[0., 0.],
       [0., 0.],
       [0., 0.]], dtype=float32), ['a', 'b'])
"""

import contextlib
import csv
import os
import uuid
import zipfile

import numpy as np

READ_FORMATS = (".csv", ".parquet", ".npy", ".npz")
WRITE_FORMATS = (".csv", ".npy")
NPZ_KEYS = ("x", "data")
MAX_LISTED = 5


class TableError(ValueError):
    """A data or output file that cannot be read or written as a numeric table."""


def extension(path):
    """The lower-case file extension of `path`, e.g. ".csv"."""
    return os.path.splitext(str(path))[1].lower()


def check_output_path(path, formats, argument="--out"):
    """Checks that `path` has one of the `formats` extensions and that its folder exists.

    Args:
        path: the output file path.
        formats: allowed extensions, e.g. (".csv", ".npy").
        argument: the name of the command-line argument, for messages.

    Raises:
        TableError: if the extension is not allowed, the folder does not exist,
            or the path is a folder.

    Example:
    >>> check_output_path("samples.csv", WRITE_FORMATS)
    """
    if extension(path) not in formats:
        raise TableError(
            f"{argument} {str(path)!r} has an unsupported extension; expected one of {', '.join(formats)}."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TableError(f"{argument} {str(path)!r}: the folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise TableError(f"{argument} {str(path)!r} is a folder; expected a file name.")


def check_input_file(path, argument):
    """Checks that `path` is an existing, non-empty file.

    Args:
        path: the input file path.
        argument: the name of the command-line argument, for messages.

    Raises:
        TableError: if the file does not exist, is a folder, or is empty.
    """
    if not os.path.exists(path):
        raise TableError(f"{argument} file {str(path)!r} does not exist.")
    if not os.path.isfile(path):
        raise TableError(f"{argument} {str(path)!r} is not a file.")
    if os.path.getsize(path) == 0:
        raise TableError(f"{argument} file {str(path)!r} is empty.")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to `path` that replaces `path` when the block succeeds.

    The temporary file is hidden, ends with the extension of `path` (some
    writers, like `keras.Model.save`, require it), gets the usual permissions
    of new files, and is removed if the block raises, so `path` is never left
    half-written.

    Args:
        path: the final file path.

    Yields:
        The temporary path to write to.

    Example:
    >>> with atomic_path("model.keras") as tmp:
    ...     model.save(tmp)
    """
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{extension(path)}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def default_column_names(num_columns):
    """Column names "x0", "x1", ... for a table without a header."""
    return [f"x{i}" for i in range(num_columns)]


def _is_number(text):
    """Whether a CSV cell is a finite number ("nan" and "inf" are words here, as in a header)."""
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def sniff_delimiter(path):
    """The delimiter of a CSV file among , ; tab and |, read from its first 64 KiB (default ",")."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
    except UnicodeDecodeError as error:
        raise TableError(f"{path}: not a readable CSV text file ({error}).") from None
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_cells(path, delimiter):
    """All non-blank records of a CSV file as a DataFrame of stripped strings (no header applied)."""
    import pandas as pd

    _check_field_counts(path, delimiter)
    try:
        cells = pd.read_csv(
            path,
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            encoding="utf-8-sig",
        )
    except UnicodeDecodeError as error:
        raise TableError(f"{path}: not a readable CSV text file ({error}).") from None
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: the file holds no data.") from None
    except pd.errors.ParserError as error:
        reason = str(error).strip().splitlines()[-1]
        raise TableError(f"{path}: rows of different lengths ({reason}); expected the same number of fields in every row.") from None
    cells = cells.apply(lambda column: column.str.strip())
    return cells[~(cells == "").all(axis=1)].reset_index(drop=True)


def _check_field_counts(path, delimiter):
    """Raises a `TableError` naming the first non-blank record whose number of fields differs from the first's."""
    expected = None
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        row = 0
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            row += 1
            if expected is None:
                expected = len(record)
            elif len(record) != expected:
                fields = f"{len(record)} field{'s' if len(record) != 1 else ''}"
                raise TableError(f"{path}: row {row} (line {reader.line_num}) has {fields}; expected {expected}.")


def _first_row_fits(first, rest):
    """Whether every cell of the first row looks like the cells below it (then the first row is data).

    A cell does not fit a column of numbers when it is not a number, when it
    is an integer over a column written with decimals (a header such as
    "2019"), or when it lies far outside the column's range; a cell fits a
    column of text when it occurs again in it (a column of distinct text
    says nothing).
    """
    from keras_score.tables.text import MISSING_TOKENS

    verdicts = []
    for j, cell in enumerate(first):
        below = rest.iloc[:, j]
        below = below[~below.isin(MISSING_TOKENS)]
        if len(below) == 0:
            continue
        if all(_is_number(value) for value in below):
            if not _is_number(cell):
                return False
            numbers = below.astype(float)
            scale = max(numbers.max() - numbers.min(), numbers.abs().max())
            if "." not in cell and below.str.contains(r"\.").all():
                return False
            if scale > 0 and not numbers.min() - 10 * scale <= float(cell) <= numbers.max() + 10 * scale:
                return False
            verdicts.append(True)
        elif below.nunique() < len(below):
            verdicts.append(cell in set(below) or cell in MISSING_TOKENS)
    return bool(verdicts) and all(verdicts)


def read_frame(path, argument="DATA", delimiter=None, header=None):
    """Reads a table from a CSV, Parquet, NPY or NPZ file as a typed pandas DataFrame.

    CSV: the delimiter is sniffed among , ; tab | unless given; the first row
    is the header unless it looks like data (every cell like the cells
    below it, see `_first_row_fits`) or `header` says otherwise; cells are
    typed by `keras_score.tables.text.parse_text_frame` (numbers, dates,
    text, missing cells).

    Args:
        path: a .csv, .parquet, .npy or .npz file.
        argument: the command-line argument's name, for messages.
        delimiter: the CSV delimiter, or None to detect it.
        header: True / False to say whether the CSV's first row names the
            columns; None to detect it.

    Returns:
        (frame, hints, notes): the DataFrame, the text hints of its columns
        (for `TableSchema.detect`) and lines worth telling a user (e.g. that
        the first row was read as data).

    Raises:
        TableError: for a missing, empty or unreadable file, ragged rows,
            duplicate column names, or an unsupported extension.

    Example:
    >>> frame, hints, notes = read_frame("records.csv")
    """
    import pandas as pd

    from keras_score.tables.text import parse_text_frame

    path = str(path)
    check_input_file(path, argument)
    kind = extension(path)
    if kind in (".npy", ".npz"):
        data, columns = (read_npy if kind == ".npy" else read_npz)(path)
        return pd.DataFrame(np.asarray(data), columns=columns), {}, []
    if kind == ".parquet":
        try:
            return pd.read_parquet(path), {}, []
        except ImportError:
            raise TableError(f"{argument} {path!r}: reading Parquet needs pyarrow (`pip install pyarrow`).") from None
        except Exception as error:  # pyarrow raises its own types for foreign files
            raise TableError(f"{path}: not a readable Parquet file ({str(error).splitlines()[0]}).") from None
    if kind != ".csv":
        raise TableError(f"{argument} {path!r} has an unsupported extension; expected one of {', '.join(READ_FORMATS)}.")
    cells = _read_cells(path, delimiter or sniff_delimiter(path))
    notes = []
    if header is None:
        first = list(cells.iloc[0])
        if len(cells) == 1:  # nothing to compare with: a row of numbers is data
            header = not all(_is_number(cell) for cell in first)
        else:
            header = not _first_row_fits(first, cells.iloc[1:])
        if not header:
            notes.append(
                "the first row is read as data, since it looks like the rows below it; "
                "pass --header if it names the columns"
            )
    names = default_column_names(cells.shape[1])
    if header:
        names = [cell or default for cell, default in zip(cells.iloc[0], names)]
        cells = cells.iloc[1:].reset_index(drop=True)
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise TableError(f"{path}: the header names {', '.join(map(repr, repeated))} more than once; expected distinct names.")
    if len(cells) == 0:
        raise TableError(f"{path}: the file has a header but no data rows.")
    cells.columns = names
    try:
        frame, hints = parse_text_frame(cells)
    except ValueError as error:
        raise TableError(f"{path}: {error}") from None
    return frame, hints, notes


def _as_table(array, path, what):
    """Checks that `array` is a numeric 1-D or 2-D array and returns it as 2-D."""
    if array.dtype.fields is not None or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TableError(f"{path}: {what} has dtype {array.dtype}; expected a numeric array.")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise TableError(f"{path}: {what} has shape {array.shape}; expected a 1-D or 2-D array.")
    if array.size == 0:
        raise TableError(f"{path}: {what} has shape {array.shape}; expected at least one row and one column.")
    return array


def _load_numpy(path):
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise TableError(f"{path}: not a readable {extension(path)[1:].upper()} file ({error}).") from None


def read_npy(path):
    """Reads a 1-D or 2-D numeric array from an NPY file (1-D → one column).

    Args:
        path: path to the .npy file.

    Returns:
        (data, column_names) with default names "x0", "x1", ...

    Example:
    >>> data, columns = read_npy("points.npy")
    """
    array = _load_numpy(path)
    if not isinstance(array, np.ndarray):
        raise TableError(f"{path}: not an NPY array file (it looks like an NPZ archive).")
    array = _as_table(array, path, "the array")
    return array, default_column_names(array.shape[1])


def _npz_key(names, path):
    for key in NPZ_KEYS:
        if key in names:
            return key
    if len(names) == 1:
        return names[0]
    listed = ", ".join(repr(n) for n in names) or "none"
    raise TableError(
        f"{path}: cannot tell which array holds the data; expected one named 'x' or 'data', "
        f"or a single array; found {listed}."
    )


def read_npz(path):
    """Reads the data array of an NPZ archive: the one named "x" or "data", or the only one.

    Args:
        path: path to the .npz file.

    Returns:
        (data, column_names) with default names "x0", "x1", ...

    Example:
    >>> data, columns = read_npz("points.npz")
    """
    archive = _load_numpy(path)
    if not hasattr(archive, "files"):
        raise TableError(f"{path}: not an NPZ archive.")
    with archive:
        key = _npz_key(list(archive.files), path)
        try:
            array = archive[key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise TableError(f"{path}: array {key!r} cannot be read ({error}).") from None
    array = _as_table(array, path, f"array {key!r}")
    return array, default_column_names(array.shape[1])


def _check_finite(data, columns, path):
    """Raises a `TableError` naming the rows and columns that hold NaN or Inf (after the float32 cast)."""
    bad = ~np.isfinite(data)
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:
        return
    details = []
    for row in rows[:MAX_LISTED]:
        names = ", ".join(repr(columns[c]) for c in np.flatnonzero(bad[row]))
        details.append(f"row {row + 1} ({names})")
    more = ", ..." if rows.size > MAX_LISTED else ""
    raise TableError(
        f"{path}: {rows.size} {'rows contain' if rows.size > 1 else 'row contains'} NaN or Inf "
        "(or values beyond the float32 range): "
        f"{', '.join(details)}{more}; expected finite numbers."
    )


def read_table(path, argument="DATA"):
    """Reads and validates a numeric table from a CSV, NPY or NPZ file.

    CSV files may start with a header row (detected when none of the first
    row's cells is a number); otherwise, and for NPY/NPZ files, columns are
    named "x0", "x1", .... Rows are numbered from 1, not counting the header.

    Args:
        path: path to a .csv, .npy or .npz file.
        argument: the name of the command-line argument, for messages.

    Returns:
        (data, column_names): a float32 array of shape (rows, columns) and a
        list of `columns` strings.

    Raises:
        TableError: if the file is missing, empty, of an unknown format, or
            holds non-numeric, NaN or Inf values.

    Example:
    >>> data, columns = read_table("train.csv")
    >>> data.dtype, columns
    (dtype('float32'), ['height', 'weight'])
    """
    frame, _, _ = read_frame(path, argument)
    columns = [str(name) for name in frame.columns]
    for name in columns:
        if not (pd_is_numeric(frame[name]) or frame[name].isna().all()):
            example = frame[name].dropna().iloc[0]
            raise TableError(
                f"{path}: non-numeric value {example!r} in column {name!r}; expected numbers only "
                "(typed tables train with `keras-score train` or `keras_score.tables.TableModel`)."
            )
    data = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(over="ignore"):
        data = np.asarray(data).astype(np.float32)
    _check_finite(data, columns, path)
    return data, columns


def pd_is_numeric(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def _write_csv(path, array, column_names):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerow(column_names)
        np.savetxt(f, array, delimiter=",", fmt="%.9g")


def write_table(path, array, column_names):
    """Writes a 2-D array to a CSV (with a header row) or NPY file, atomically.

    Args:
        path: output path ending in .csv or .npy.
        array: array of shape (rows, columns).
        column_names: list of `columns` names, written as the CSV header.

    Raises:
        TableError: if the extension is not supported or the shapes disagree.

    Example:
    >>> write_table("samples.csv", samples, ["x0", "x1"])
    """
    path = str(path)
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] != len(column_names):
        raise TableError(
            f"cannot write an array of shape {array.shape} with {len(column_names)} column names to {path!r}."
        )
    check_output_path(path, WRITE_FORMATS)
    with atomic_path(path) as tmp:
        if extension(path) == ".csv":
            _write_csv(tmp, array, column_names)
        else:
            np.save(tmp, array)


TABLE_WRITE_FORMATS = (".csv", ".parquet")


class FrameWriter:
    """Writes a typed table batch by batch to a CSV or Parquet file, replacing `path` only when all is written.

    CSV cells are written in the schema's formats (decimals, date formats,
    missing tokens; `keras_score.tables.text.format_frame`) with "\\n" line
    ends; Parquet keeps the frame's dtypes (needs pyarrow). Memory holds one
    batch at a time.

    Args:
        path: output path ending in .csv or .parquet.
        schema: the table's `TableSchema`.

    Example:
    >>> with FrameWriter("samples.csv", model.schema) as writer:
    ...     for batch in batches:
    ...         writer.write(batch)
    """

    def __init__(self, path, schema):
        self.path = str(path)
        self.schema = schema
        check_output_path(self.path, TABLE_WRITE_FORMATS)
        self.rows = 0

    def __enter__(self):
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        if extension(self.path) == ".parquet":
            self._file, self._parquet = tmp, None
        else:
            self._file = open(tmp, "w", newline="", encoding="utf-8")
        return self

    def write(self, frame):
        """Appends the rows of `frame` (a DataFrame with the schema's columns)."""
        if extension(self.path) == ".parquet":
            import pyarrow
            import pyarrow.parquet

            table = pyarrow.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pyarrow.parquet.ParquetWriter(self._file, table.schema)
            self._parquet.write_table(table)
        else:
            from keras_score.tables.text import format_frame

            format_frame(frame, self.schema).to_csv(self._file, header=self.rows == 0, index=False, lineterminator="\n")
        self.rows += len(frame)

    def __exit__(self, kind, error, traceback):
        if extension(self.path) == ".parquet":
            if self._parquet is not None:
                self._parquet.close()
        else:
            self._file.close()
        return self._atomic.__exit__(kind, error, traceback)
