"""The package's lazy import: no Keras on `import keras_score`, every class registered once Keras is imported."""

import os
import subprocess
import sys

import numpy as np
import pytest

import keras_score

REPO = os.path.dirname(os.path.dirname(keras_score.__file__))


def _python(code):
    result = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture(scope="module")
def saved_table_model(tmp_path_factory):
    import pandas as pd

    frame = pd.DataFrame({"a": np.arange(24.0), "b": ["x", "y", "z"] * 8})
    model = keras_score.tables.TableModel(network=keras_score.networks.MLP(hidden_units=8, num_blocks=1))
    model.fit(frame, steps=2, batch_size=8, verbose=0)
    path = str(tmp_path_factory.mktemp("lazy") / "table.keras")
    model.save(path)
    return path


@pytest.mark.parametrize(
    "imports",
    ["import keras_score; print('keras' in sys.modules, keras_score.is_loaded()); import keras",
     "from keras_score.model import ScoreModel; import keras"],
    ids=["package-first", "submodule-first"],
)
def test_saved_model_loads_in_any_import_order(saved_table_model, imports):
    """`import keras_score` imports no Keras; the package completes when Keras is imported, in either order.

    (Keras imported first is the order of this test process itself, and of every other test.)
    """
    code = f"import sys; {imports}; import keras_score; model = keras.saving.load_model({saved_table_model!r}); "
    code += "print(type(model).__name__, keras_score.is_loaded())"
    expected = ["TableModel", "True"]
    if imports.startswith("import keras_score;"):
        expected = ["False", "False", *expected]
    assert _python(code) == expected


def test_public_names_resolve():
    assert keras_score.ScoreModel is keras_score.model.ScoreModel
    assert {"ScoreModel", "tables", "EDMSchedule"} <= set(dir(keras_score))
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        keras_score.Nothing
