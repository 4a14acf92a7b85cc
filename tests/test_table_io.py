"""Reading typed tables from CSV and Parquet files, and writing sampled tables back in their formats."""

import numpy as np
import pandas as pd
import pytest

from keras_score import io as table_io
from keras_score.tables import TableSchema, TableTransform, closest_record_report


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_typed_csv_cells(tmp_path):
    path = write(
        tmp_path / "t.csv",
        "gender,age,score,day,note\nM,31,1.50,2024-01-05,a\nF,NA,2.25,2024-02-01,b\nF,40,,2024-03-09,a\n",
    )
    frame, hints, notes = table_io.read_frame(path)
    assert notes == []
    assert frame.gender.tolist() == ["M", "F", "F"]
    assert str(frame.age.dtype) == "Int64" and frame.age.isna().tolist() == [False, True, False]
    assert frame.score.tolist()[:2] == [1.5, 2.25] and np.isnan(frame.score[2])
    assert str(frame.day.dtype).startswith("datetime64")
    assert hints["score"]["decimals"] == 2 and hints["day"]["datetime_format"] == "%Y-%m-%d"
    assert hints["age"]["missing_token"] == "NA"


def test_numeric_header_row_is_a_header(tmp_path):
    """A header of years over columns of decimals (the old reader trained it as data)."""
    frame, _, notes = table_io.read_frame(write(tmp_path / "y.csv", "2019,2020\n0.27,-0.77\n0.31,0.12\n1.5,0.5\n"))
    assert list(frame.columns) == ["2019", "2020"] and len(frame) == 3 and notes == []


def test_a_first_row_like_the_others_is_data_and_said_so(tmp_path):
    frame, _, notes = table_io.read_frame(write(tmp_path / "d.csv", "1.5,2.5\n0.27,-0.77\n0.31,0.12\n"))
    assert len(frame) == 3 and list(frame.columns) == ["x0", "x1"]
    assert "first row is read as data" in notes[0] and "--header" in notes[0]
    frame, _, _ = table_io.read_frame(write(tmp_path / "d.csv", "1.5,2.5\n0.27,-0.77\n0.31,0.12\n"), header=True)
    assert list(frame.columns) == ["1.5", "2.5"] and len(frame) == 2


def test_header_cell_nan_is_a_name(tmp_path):
    frame, _, _ = table_io.read_frame(write(tmp_path / "n.csv", "a,nan\n1,2\n3,4\n"))
    assert list(frame.columns) == ["a", "nan"] and frame["nan"].tolist() == [2, 4]


def test_text_columns_with_and_without_a_header(tmp_path):
    frame, _, _ = table_io.read_frame(write(tmp_path / "h.csv", "gender,age\nM,31\nF,40\nM,25\n"))
    assert list(frame.columns) == ["gender", "age"]
    frame, _, notes = table_io.read_frame(write(tmp_path / "nh.csv", "M,31\nF,40\nM,25\nF,33\n"))
    assert list(frame.columns) == ["x0", "x1"] and len(frame) == 4 and notes


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_detected(tmp_path, delimiter):
    text = "a;b\n0.27;-0.77\n1.5;2\n".replace(";", delimiter)
    frame, _, _ = table_io.read_frame(write(tmp_path / "s.csv", text))
    assert list(frame.columns) == ["a", "b"] and frame.a.tolist() == [0.27, 1.5]


def test_reading_errors_name_the_problem(tmp_path):
    with pytest.raises(table_io.TableError, match="more than once"):
        table_io.read_frame(write(tmp_path / "dup.csv", "a,a\n1,2\n"))
    with pytest.raises(table_io.TableError, match=r"row 3 \(line 3\) has 3 fields; expected 2"):
        table_io.read_frame(write(tmp_path / "rag.csv", "a,b\n1,2\n3,4,5\n"), delimiter=",")
    with pytest.raises(table_io.TableError, match="infinite"):
        table_io.read_frame(write(tmp_path / "inf.csv", "a,b\n1,inf\n3,4\n"))
    with pytest.raises(table_io.TableError, match="header but no data rows"):
        table_io.read_frame(write(tmp_path / "h.csv", "a,b\n"), header=True)


def test_sampled_csv_keeps_formats_and_line_ends(tmp_path):
    source = write(
        tmp_path / "in.csv",
        "id,gender,age,score,day\nP01,M,31,1.50,05/01/2024\nP02,F,NA,2.25,01/02/2024\nP03,F,40,3.00,09/03/2024\n",
    )
    frame, hints, _ = table_io.read_frame(source)
    schema = TableSchema.detect(frame, hints=hints, overrides={"id": "id"})
    transform = TableTransform(schema).fit(frame)
    rows = transform.inverse_transform(transform.transform(frame))
    out = tmp_path / "out.csv"
    with table_io.FrameWriter(out, schema) as writer:
        writer.write(rows.iloc[:2])
        writer.write(rows.iloc[2:])
    data = out.read_bytes()
    assert b"\r" not in data
    assert data.decode() == open(source).read().replace("P0", "P0")
    assert not list(tmp_path.glob(".*.tmp*"))


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"a": [1.5, 2.5, np.nan], "c": ["x", "y", "x"]})
    schema = TableSchema.detect(frame)
    with table_io.FrameWriter(tmp_path / "t.parquet", schema) as writer:
        writer.write(frame)
    again, _, _ = table_io.read_frame(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(again, frame)


def test_closest_record_report_sees_copies():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b"], size=300)})
    held_out = pd.DataFrame({"x": rng.uniform(-1, 1, size=100), "c": rng.choice(["a", "b"], size=100)})
    transform = TableTransform().fit(train)
    copied = closest_record_report(transform, train.iloc[:100], train, held_out)
    fresh = closest_record_report(transform, held_out, train, held_out)
    assert copied["exact_copies"] == 1.0 and copied["synthetic_median"] == 0.0
    assert fresh["exact_copies"] == 0.0 and fresh["synthetic_median"] == fresh["held_out_median"] > 0


def test_where_assignments_are_read_as_their_columns_types(tmp_path):
    from keras_score.tables.text import parse_where

    frame, hints, _ = table_io.read_frame(
        write(tmp_path / "w.csv", "gender,age,day,uid\nM,31,05/01/2024,a1\nF,NA,01/02/2024,a2\nF,40,09/03/2024,a3\n")
    )
    schema = TableSchema.detect(frame, hints=hints, overrides={"uid": "id", "age": "integer"})
    where = parse_where(["gender=F", "age=30", "day=01/02/2024"], schema)
    assert where == {"gender": "F", "age": 30.0, "day": pd.Timestamp("2024-01-02")}  # month first, as pandas guesses
    assert parse_where(["age=NA"], schema) == {"age": None}
    for bad, message in [
        ("gender=X", "takes one of F, M"),
        ("age=old", "takes a number"),
        ("height=3", "COLUMN=VALUE"),
        ("uid=a1", "identifier"),
        ("day=someday", "takes dates"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_where([bad], schema)
