"""Typed tables: schema detection, the reversible transform, and TableModel."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from keras_score.tables import TableModel, TableSchema, TableTransform
from keras_score.tables.schema import decimal_places


def mixed_frame(n=400, seed=0):
    """A table with every column type: id, continuous, counts, zero-inflated, ordinal, strings, booleans, dates, missing cells."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "x": np.round(rng.normal(size=n), 3),
            "count": rng.poisson(2, size=n),
            "affairs": np.where(rng.random(n) < 0.6, 0.0, np.round(rng.exponential(3, size=n), 2)),
            "grade": rng.integers(1, 6, size=n),
            "color": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.3,
            "sex": rng.choice([1.0, 2.0], size=n),
            "when": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 400, size=n), unit="D"),
            "income": np.where(rng.random(n) < 0.2, np.nan, np.round(rng.lognormal(3, 1, size=n), 1)),
        }
    )


EXPECTED_TYPES = {
    "id": "id",
    "x": "continuous",
    "count": "discrete",
    "affairs": "continuous",
    "grade": "discrete",
    "color": "categorical",
    "flag": "boolean",
    "sex": "categorical",
    "when": "datetime",
    "income": "continuous",
}


@pytest.fixture(scope="module")
def frame():
    return mixed_frame()


@pytest.fixture(scope="module")
def transform(frame):
    return TableTransform().fit(frame)


def test_detection_rules(frame, transform):
    schema = transform.schema
    assert {c.name: c.type for c in schema.columns} == EXPECTED_TYPES
    assert schema["income"].missing and not schema["x"].missing
    assert schema["x"].decimals == 3 and schema["affairs"].decimals == 2
    assert schema["color"].categories == ["blue", "green", "red"]
    assert schema["grade"].categories == [1, 2, 3, 4, 5]
    assert (schema["x"].minimum, schema["x"].maximum) == (frame.x.min(), frame.x.max())
    assert schema["when"].datetime_unit == "D"
    text = schema.describe()
    assert "color: categorical, 3 values (blue, green, red)" in text and "income: continuous" in text


def test_few_values_text_ids_and_boolean_words():
    n = 40
    frame = pd.DataFrame(
        {
            "user_id": [f"U{i:03d}" for i in range(n)],
            "answer": ["Yes", "No"] * (n // 2),
            "level": [0.5, 1.5, 2.5, 6.0] * (n // 4),
            "name": [f"person {i}" for i in range(n)],
        }
    )
    schema = TableSchema.detect(frame)
    assert [c.type for c in schema.columns] == ["id", "boolean", "discrete", "id"]
    assert (schema["user_id"].id_prefix, schema["user_id"].id_width) == ("U", 3)
    regenerated = TableTransform(schema).fit(frame).inverse_transform(np.zeros((3, 2)), start_index=5)
    assert regenerated["user_id"].tolist() == ["U005", "U006", "U007"]


def test_overrides_from_a_dict_and_a_json_file(frame, tmp_path):
    schema = TableSchema.detect(frame, overrides={"grade": "categorical", "x": {"decimals": 1}})
    assert schema["grade"].type == "categorical" and schema["grade"].categories == [1, 2, 3, 4, 5]
    assert schema["x"].decimals == 1
    path = tmp_path / "schema.json"
    schema.to_json(path)
    again = TableSchema.detect(frame, overrides=str(path))
    assert again.to_dict() == schema.to_dict()
    with pytest.raises(ValueError, match="column 'nope'"):
        TableSchema.detect(frame, overrides={"nope": "integer"})
    with pytest.raises(ValueError, match="type must be one of"):
        TableSchema.detect(frame, overrides={"x": "float"})


def test_decimal_places():
    assert decimal_places(np.array([1.0, 2.0])) == 0
    assert decimal_places(np.array([1.5, 2.25])) == 2
    assert decimal_places(np.array([np.pi])) is None


@pytest.mark.parametrize("seed", [None, 3])
def test_every_column_type_round_trips_exactly(frame, transform, seed):
    back = transform.inverse_transform(transform.transform(frame, seed=seed))
    assert list(back.columns) == list(frame.columns)
    for name in frame.columns:
        assert back[name].dtype == frame[name].dtype, name
        pd.testing.assert_series_equal(back[name], frame[name], check_names=False)


def test_standard_encoding_round_trips(frame):
    transform = TableTransform(numerical="standard").fit(frame)
    back = transform.inverse_transform(transform.transform(frame))
    for name in frame.columns:
        pd.testing.assert_series_equal(back[name], frame[name], check_names=False)


def test_any_encoded_rows_decode_to_valid_cells(frame, transform):
    z = np.random.default_rng(1).standard_normal((20000, transform.width)) * 1.5
    rows = transform.inverse_transform(z)
    assert set(rows.color) <= {"blue", "green", "red"}
    assert set(rows.grade) <= set(frame.grade) and set(rows["count"]) <= set(frame["count"])
    assert set(rows.sex) <= {1.0, 2.0}
    for name in ("x", "affairs", "income", "when"):
        assert rows[name].min() >= frame[name].min() and rows[name].max() <= frame[name].max()
    assert np.all(rows.x == np.round(rows.x, 3)) and np.all(rows.affairs == np.round(rows.affairs, 2))
    assert rows.income.isna().any() and rows.income.notna().any()


def test_the_encoding_of_numbers_is_standard_normal_so_atoms_decode_at_their_rate(frame, transform):
    """Quantile normalisation with dequantized atoms: z ~ N(0, 1) decodes to the observed marginal."""
    encoded = transform.transform(frame, seed=0)
    column = transform.names.index("affairs")
    assert abs(encoded[:, column].mean()) < 0.15 and abs(encoded[:, column].std() - 1) < 0.1
    z = np.random.default_rng(2).standard_normal((40000, transform.width))
    rows = transform.inverse_transform(z)
    assert abs((rows.affairs == 0).mean() - (frame.affairs == 0).mean()) < 0.01
    for value in frame.grade.unique():
        assert abs((rows.grade == value).mean() - (frame.grade == value).mean()) < 0.01


def test_condition_fixes_the_encoding_of_given_cells(transform):
    values, mask = transform.condition({"color": "green", "income": None})
    names = np.array(transform.names)
    assert set(names[mask == 1]) == {"color=blue", "color=green", "color=red", "income:missing"}
    assert values[list(names).index("color=green")] == 1 and values[list(names).index("income:missing")] == 1
    with pytest.raises(ValueError, match="'purple', which is not one of its categories"):
        transform.condition({"color": "purple"})
    with pytest.raises(ValueError, match="identifier"):
        transform.condition({"id": 3})


def test_transform_config_round_trip(frame, transform):
    config = json.loads(json.dumps(transform.get_config()))
    again = TableTransform.from_config(config)
    np.testing.assert_array_equal(again.transform(frame, seed=1), transform.transform(frame, seed=1))


def test_bad_frames_are_refused(transform, frame):
    with pytest.raises(ValueError, match="pandas DataFrame"):
        TableTransform().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="differ from the schema"):
        transform.transform(frame[["x", "id"]])
    with pytest.raises(ValueError, match=r"shape \(rows, "):
        transform.inverse_transform(np.zeros((2, 3)))


@pytest.fixture(scope="module")
def trained(frame):
    keras.utils.set_random_seed(0)
    model = TableModel(keras_score_mlp(), seed=0)
    model.fit(frame, steps=60, batch_size=128, verbose=0)
    return model


def keras_score_mlp():
    from keras_score.networks import MLP

    return MLP(hidden_units=32, num_blocks=1)


def test_table_model_samples_valid_typed_rows(frame, trained):
    rows = trained.generate(300, seed=0, steps=8)
    assert list(rows.columns) == list(frame.columns)
    assert rows.dtypes.to_dict() == frame.dtypes.to_dict()
    assert rows.id.tolist() == list(range(1, 301))
    assert set(rows.color) <= set(frame.color) and set(rows.grade) <= set(frame.grade)
    assert rows.x.between(frame.x.min(), frame.x.max()).all()
    assert abs(rows.income.isna().mean() - frame.income.isna().mean()) < 0.12
    assert trained.schema["color"].type == "categorical" and trained.feature_names == trained.transform.names


def test_where_fixes_columns(trained):
    rows = trained.generate(40, where={"color": "blue", "grade": 5, "income": None}, seed=1, steps=8)
    assert (rows.color == "blue").all() and (rows.grade == 5).all() and rows.income.isna().all()
    with pytest.raises(ValueError, match="`where` names a column 'shape'"):
        trained.generate(4, where={"shape": 1})


def test_table_model_saves_and_loads(tmp_path, trained, frame):
    path = str(tmp_path / "table.keras")
    trained.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, TableModel)
    assert restored.schema.to_dict() == trained.schema.to_dict()
    pd.testing.assert_frame_equal(restored.generate(16, seed=4, steps=4), trained.generate(16, seed=4, steps=4))


def test_default_length_is_400_passes_within_100_to_2000_steps(frame):
    assert [TableModel.default_steps(rows) for rows in (20, 142, 455, 1280, 5093)] == [100, 222, 711, 2000, 2000]
    assert TableModel.default_steps(142, batch_size=64) == 888
    with pytest.raises(ValueError, match="`num_rows` must be"):
        TableModel.default_steps(0)
    model = TableModel(keras_score_mlp(), seed=0)
    model.fit(frame.head(40), verbose=0)  # 400 passes of 40 rows are 63 steps of 256: the floor, 100
    assert int(model.optimizer.iterations) == 100


def test_failed_fit_leaves_a_new_model_unfitted(frame):
    model = TableModel(keras_score_mlp(), seed=0)
    with pytest.raises(ValueError, match="`steps` must be"):
        model.fit(frame, steps=0)
    with pytest.raises(ValueError, match="`y` must be None"):
        model.fit(frame, frame.x)
    with pytest.raises(ValueError, match="pandas DataFrame"):
        model.fit(frame.to_numpy())
    assert not model.transform.is_fitted
