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

READ_FORMATS = (".csv", ".npy", ".npz")
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
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_rows(path):
    """Non-blank CSV records of `path` as (line number, cells) pairs."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            return [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise TableError(f"{path}: not a readable CSV text file ({error}).") from None


def _parse_row(cells, columns, row_number, line, path):
    """Converts one CSV record to floats, naming the first bad cell."""
    if len(cells) != len(columns):
        fields = f"{len(cells)} field{'s' if len(cells) != 1 else ''}"
        raise TableError(f"{path}: row {row_number} (line {line}) has {fields}; expected {len(columns)}.")
    values = []
    for name, cell in zip(columns, cells):
        try:
            values.append(float(cell))
        except ValueError:
            raise TableError(
                f"{path}: non-numeric value {cell!r} in column {name!r}, row {row_number} (line {line}); "
                "expected numbers only."
            ) from None
    return values


def read_csv(path):
    """Reads a numeric CSV file whose first row may be a header.

    The first row is a header when none of its cells is a number; empty
    header cells get the default name of their column. Blank lines are skipped.

    Args:
        path: path to the CSV file.

    Returns:
        (data, column_names): a float64 array of shape (rows, columns) and a
        list of names.

    Raises:
        TableError: on ragged rows, non-numeric cells, or a file with no data rows.

    Example:
    >>> data, columns = read_csv("points.csv")
    """
    records = _csv_rows(path)
    if not records:
        raise TableError(f"{path}: the file holds no data.")
    first = records[0][1]
    has_header = not any(_is_number(cell) for cell in first)
    columns = default_column_names(len(first))
    if has_header:
        columns = [cell or default for cell, default in zip(first, columns)]
        records = records[1:]
    if not records:
        raise TableError(f"{path}: the file has a header but no data rows.")
    rows = [_parse_row(cells, columns, number, line, path) for number, (line, cells) in enumerate(records, start=1)]
    return np.array(rows, dtype=np.float64), columns


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


_READERS = {".csv": read_csv, ".npy": read_npy, ".npz": read_npz}


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
    path = str(path)
    check_input_file(path, argument)
    reader = _READERS.get(extension(path))
    if reader is None:
        raise TableError(
            f"{argument} {path!r} has an unsupported extension; expected one of {', '.join(READ_FORMATS)}."
        )
    data, columns = reader(path)
    with np.errstate(over="ignore"):
        data = np.asarray(data).astype(np.float32)
    _check_finite(data, columns, path)
    return data, columns


def _write_csv(path, array, column_names):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(column_names)
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
