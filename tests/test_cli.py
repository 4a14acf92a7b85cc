"""Tests for the `keras-score` command line and the table reading/writing helpers.

`main([...])` runs in-process with tiny networks and a handful of steps; one
test runs the real `python -m keras_score.cli` to check the exit status. The
checks that need a fresh process (Ctrl-C, the choice of backend, TensorFlow's
start-up log) are in test_cli_subprocess.py; streamed sampling in
test_cli_streaming.py.
"""

import csv
import gc
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile

import keras
import numpy as np
import pytest

from keras_score import io as table_io
from keras_score.cli import DATASET_NAMES, SAMPLER_NAMES, build_parser, main
from keras_score.model import ScoreModel
from keras_score.validation import SEED_MAX

TINY = ["--steps", "3", "--batch-size", "32", "--hidden-units", "8", "--blocks", "1"]
COLUMNS = ["height", "weight"]


def _write_csv(path, rows, header=None):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _train_data(n=64):
    rng = np.random.default_rng(0)
    return np.column_stack([rng.normal(170.0, 10.0, n), rng.normal(70.0, 5.0, n)]).astype(np.float32)


def _run_error(capsys, argv, *fragments):
    """Runs `main(argv)`, expects exit status 2 and one `error:` line naming every fragment."""
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def _only(folder, *names):
    """Asserts that `folder` holds exactly the files `names` (no partial or temporary outputs)."""
    assert sorted(os.listdir(folder)) == sorted(names)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained by `keras-score train` on a CSV with a header."""
    folder = tmp_path_factory.mktemp("trained")
    data = _train_data()
    data_path = _write_csv(folder / "train.csv", data.tolist(), header=COLUMNS)
    model_path = str(folder / "model.keras")
    assert main(["train", data_path, "--out", model_path, *TINY]) == 0
    return model_path, data


def test_train_csv_with_header_then_sample_csv_and_npy(trained, tmp_path, capsys):
    model_path, data = trained
    out = tmp_path / "samples.csv"
    assert main(["sample", model_path, "-n", "50", "--out", str(out), "--steps", "8"]) == 0
    assert "wrote 50 samples" in capsys.readouterr().out
    with open(out) as f:
        assert f.readline().strip() == ",".join(COLUMNS)
    samples, columns = table_io.read_table(out)
    assert columns == COLUMNS
    assert samples.shape == (50, 2)
    assert np.all(np.isfinite(samples))
    low, high = data.min(axis=0), data.max(axis=0)
    span = high - low
    assert np.all(samples > low - 2 * span) and np.all(samples < high + 2 * span)
    # Heun is deterministic and sample i depends only on (seed, i): the NPY rows match the CSV's first rows.
    assert main(["sample", model_path, "-n", "7", "--out", str(tmp_path / "s.npy"), "--steps", "8"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), samples[:7], rtol=1e-4, atol=1e-4)
    _only(tmp_path, "samples.csv", "s.npy")


def test_train_npz_saves_default_column_names(tmp_path, capsys):
    np.savez(tmp_path / "data.npz", x=_train_data(40), labels=np.arange(40))
    model_path = tmp_path / "model.keras"
    assert main(["train", str(tmp_path / "data.npz"), "--out", str(model_path), "--steps", "1", *TINY[2:]]) == 0
    out = capsys.readouterr().out
    assert "40 rows x 2 columns" in out and "final loss" in out
    model = keras.models.load_model(model_path)
    assert model.feature_names == ["x0", "x1"]
    _only(tmp_path, "data.npz", "model.keras")


def test_read_table_npy_and_npz_variants(tmp_path):
    data = _train_data(5)
    np.save(tmp_path / "two.npy", data.astype(np.float64))
    np.save(tmp_path / "one.npy", data[:, 0])
    np.savez(tmp_path / "named.npz", data=data, other=data)
    np.savez(tmp_path / "single.npz", points=data)
    table, columns = table_io.read_table(tmp_path / "two.npy")
    assert table.dtype == np.float32 and columns == ["x0", "x1"]
    np.testing.assert_allclose(table, data)
    table, columns = table_io.read_table(tmp_path / "one.npy")
    assert table.shape == (5, 1) and columns == ["x0"]
    for name in ("named.npz", "single.npz"):
        np.testing.assert_allclose(table_io.read_table(tmp_path / name)[0], data)


def test_read_csv_without_header_and_blank_lines(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1,2.5\n\n-3,4e2\n")
    table, columns = table_io.read_table(path)
    assert columns == ["x0", "x1"]
    np.testing.assert_allclose(table, [[1.0, 2.5], [-3.0, 400.0]])


def test_write_table_round_trip_and_atomicity(tmp_path):
    data = _train_data(4)
    table_io.write_table(tmp_path / "t.csv", data, ["a,b", "c"])
    table, columns = table_io.read_table(tmp_path / "t.csv")
    assert columns == ["a,b", "c"]
    np.testing.assert_array_equal(table, data)
    with pytest.raises(RuntimeError):
        with table_io.atomic_path(tmp_path / "never.csv") as tmp:
            open(tmp, "w").write("partial")
            raise RuntimeError("writer failed")
    _only(tmp_path, "t.csv")


def test_demo_quick(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    out_dir.mkdir()
    (out_dir / "samples.csv").write_text("older samples")  # replaced, with --overwrite
    assert main(["demo", "--quick", "--out-dir", str(out_dir), "--rows", "500", "--overwrite"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"sliced Wasserstein\(samples, held-out\) = ([\d.]+) \| .* = ([\d.]+)", out)
    assert match, out
    assert all(np.isfinite(float(value)) for value in match.groups())
    _only(out_dir, "model.keras", "samples.csv", "demo.png")
    assert (out_dir / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples, columns = table_io.read_table(out_dir / "samples.csv")
    assert samples.shape == (100, 2) and columns == ["x0", "x1"]


# Errors: one `error:` line, exit status 2, and no output file.


def test_error_missing_data_file(tmp_path, capsys):
    _run_error(capsys, ["train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m.keras")], "does not exist")
    _only(tmp_path)


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("data.txt", "1,2\n", ["unsupported extension", ".csv", ".npy", ".npz"]),
        ("empty.csv", "", ["is empty"]),
        ("header_only.csv", "a,b\n", ["no data rows"]),
        ("ragged.csv", "1,2\n3\n", ["row 2", "1 field; expected 2"]),
        ("inf.csv", "a,b\n1,nan\n2,3\ninf,-inf\n4,5\n", ["column 'a' holds an infinite value"]),
        ("binary.npy", "not numpy", ["not a readable NPY file"]),
    ],
)
def test_error_bad_data_file(tmp_path, capsys, name, content, fragments):
    (tmp_path / name).write_text(content)
    _run_error(capsys, ["train", str(tmp_path / name), "--out", str(tmp_path / "m.keras"), *TINY], *fragments)
    _only(tmp_path, name)


@pytest.mark.parametrize(
    "arrays, fragments",
    [
        ({"a": np.zeros((3, 2)), "b": np.zeros((3, 2))}, ["'a', 'b'", "'x' or 'data'"]),
        ({"x": np.array(["p", "q"])}, ["expected a numeric array"]),
        ({"x": np.zeros((0, 2))}, ["at least one row"]),
        ({"x": np.zeros((2, 2, 2, 2, 2))}, ["1-D or 2-D"]),  # 3-D and 4-D arrays are images
    ],
)
def test_error_bad_npz(tmp_path, capsys, arrays, fragments):
    np.savez(tmp_path / "data.npz", **arrays)
    _run_error(capsys, ["train", str(tmp_path / "data.npz"), "--out", str(tmp_path / "m.keras")], *fragments)
    _only(tmp_path, "data.npz")


def test_error_unsupported_out_extensions(trained, tmp_path, capsys):
    data_path = _write_csv(tmp_path / "d.csv", _train_data(8).tolist())
    _run_error(capsys, ["train", data_path, "--out", str(tmp_path / "m.h5")], "--out", ".keras")
    _run_error(capsys, ["sample", trained[0], "-n", "3", "--out", str(tmp_path / "s.json")], "--out", ".csv, .npy")
    _run_error(capsys, ["train", data_path, "--out", str(tmp_path / "no_dir" / "m.keras")], "does not exist")
    _only(tmp_path, "d.csv")


@pytest.mark.parametrize("value", ["0", "-5", "two"])
def test_error_non_positive_num_samples(trained, tmp_path, capsys, value):
    _run_error(
        capsys,
        ["sample", trained[0], "-n", value, "--out", str(tmp_path / "s.csv")],
        "-n/--num-samples",
        "positive integer",
    )
    _only(tmp_path)


def test_error_bad_options(trained, tmp_path, capsys):
    sample = ["sample", trained[0], "-n", "3", "--out", str(tmp_path / "s.csv")]
    demo = ["demo", "--out-dir", str(tmp_path / "d")]
    _run_error(capsys, [*sample, "--sampler", "nope"], "--sampler", "invalid choice: 'nope'", "heun")
    _run_error(capsys, [*demo, "--data", "nope"], "--data", "invalid choice: 'nope'", "mixture")
    _run_error(capsys, [*demo, "--data", "wine", "--rows", "1000"], "--rows", "exceeds the 178 rows")
    _run_error(capsys, [*demo, "--rows", "1"], "--rows", "at least 2")
    (tmp_path / "file").write_text("")
    _run_error(capsys, ["demo", "--out-dir", str(tmp_path / "file")], "--out-dir", "is a file")
    _run_error(capsys, ["train", "x.csv", "--out", "m.keras", "--learning-rate", "0"], "--learning-rate")
    _run_error(capsys, ["train", "x.csv", "--out", "m.keras", "--epochs", "2", "--steps", "3"], "not allowed with")
    _run_error(capsys, [], "required")
    _only(tmp_path, "file")


def test_error_model_files(tmp_path, capsys):
    sequential = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    sequential.save(tmp_path / "plain.keras")
    (tmp_path / "text.keras").write_text("not a model")
    (tmp_path / "empty.keras").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "zip.keras", "w") as archive:
        archive.writestr("notes.txt", "a zip archive, but not a model")
    out = str(tmp_path / "s.csv")
    for name, fragment in [
        ("plain.keras", "holds a Sequential, not a trained keras_score ScoreModel"),
        ("text.keras", "is not a .keras model file"),
        ("zip.keras", "cannot be loaded as a keras_score model"),
        ("empty.keras", "is empty"),
        ("missing.keras", "does not exist"),
    ]:
        _run_error(capsys, ["sample", str(tmp_path / name), "-n", "3", "--out", out], "MODEL", fragment)
    _only(tmp_path, "plain.keras", "text.keras", "empty.keras", "zip.keras")


def test_help_exits_zero(capsys):
    assert main(["train", "--help"]) == 0
    assert "--hidden-units" in capsys.readouterr().out


def test_console_entry_point_exit_status(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_score.cli", "train", str(tmp_path / "missing.csv"), "--out", "m.keras"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert any(line.startswith("error: ") and "does not exist" in line for line in result.stderr.splitlines())


def test_evaluate_prints_nll_and_sample_distances(trained, tmp_path, capsys):
    model_path, data = trained
    data_path = _write_csv(tmp_path / "held_out.csv", data[:40].tolist(), header=COLUMNS)
    assert main(["evaluate", model_path, data_path, "-n", "30", "--steps", "4", "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "evaluating on 40 rows x 2 columns" in out
    match = re.search(r"NLL = (-?[\d.]+) nats per row = (-?[\d.]+) bits per dimension", out)
    assert match, out
    nll, bpd = (float(value) for value in match.groups())
    assert bpd == pytest.approx(nll / (2 * np.log(2)), rel=1e-3, abs=1e-3)
    # The NLL is that of the rows' encoding, whose columns are standard normal: near 2 log(2π e)/2 = 2.84.
    assert 1.5 < nll < 6.0, nll
    distances = r"30 samples, 30 rows.*sliced Wasserstein = ([\d.]+) \| MMD² \(RBF, median bandwidth\) = (-?[\d.]+)"
    match = re.search(distances, out)
    assert match, out
    assert all(np.isfinite(float(value)) for value in match.groups())
    _only(tmp_path, "held_out.csv")


def test_evaluate_errors(trained, tmp_path, capsys):
    model_path = trained[0]
    three = _write_csv(tmp_path / "three.csv", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    one = _write_csv(tmp_path / "one.csv", [[170.0, 70.0]])
    _run_error(capsys, ["evaluate", model_path, three], "DATA", "has 3 columns; the model was trained on 2")
    _run_error(capsys, ["evaluate", model_path, one], "DATA", "has 1 row")
    _run_error(capsys, ["evaluate", model_path, str(tmp_path / "missing.csv")], "DATA", "does not exist")
    _run_error(capsys, ["evaluate", str(tmp_path / "missing.keras"), one], "MODEL", "does not exist")
    _run_error(capsys, ["evaluate", model_path, three, "--divergence", "trace"], "--divergence", "invalid choice")
    _run_error(capsys, ["evaluate", model_path, three, "-n", "0"], "-n/--num-samples", "positive integer")
    _only(tmp_path, "three.csv", "one.csv")


# Seeds, Ctrl-C, existing and unwritable outputs, failed saves, crafted model files.


@pytest.mark.parametrize("value", ["-1", "99999999999", "2147483648", "1.5", "x"])
def test_error_seed_out_of_range(tmp_path, capsys, value):
    commands = [
        ["train", "x.csv", "--out", "m.keras"],
        ["sample", "m.keras", "-n", "2", "--out", "s.csv"],
        ["evaluate", "m.keras", "x.csv"],
        ["demo", "--out-dir", str(tmp_path / "d")],
    ]
    for command in commands:
        _run_error(capsys, [*command, "--seed", value], "--seed", "[0, 2147483647]", repr(value))
    largest = build_parser().parse_args(["sample", "m.keras", "-n", "1", "--out", "s.csv", "--seed", str(SEED_MAX)])
    assert largest.seed == SEED_MAX
    _only(tmp_path)


def test_parser_choices_match_the_registries():
    from keras_score.datasets import EMBEDDED
    from keras_score.samplers import SAMPLERS

    assert SAMPLER_NAMES == tuple(sorted(SAMPLERS))
    assert DATASET_NAMES == tuple(sorted(EMBEDDED))


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_interrupted_training_and_sampling_write_nothing(trained, tmp_path, capsys, monkeypatch):
    data_path = _write_csv(tmp_path / "d.csv", _train_data(16).tolist())
    monkeypatch.setattr(ScoreModel, "fit", _interrupt)
    status = main(["train", data_path, "--out", str(tmp_path / "m.keras"), *TINY])
    captured = capsys.readouterr()
    assert status == 130
    assert captured.err == "error: interrupted; nothing was written.\n"
    assert "training on 16 rows" in captured.out
    # Interrupted after the first of three batches was streamed: the temporary file goes too.
    original = ScoreModel.generate_batches

    def first_batch_then_interrupt(self, *args, **kwargs):
        batches = original(self, *args, **kwargs)

        def interrupted():
            yield next(batches)
            raise KeyboardInterrupt

        return interrupted()

    monkeypatch.setattr(ScoreModel, "generate_batches", first_batch_then_interrupt)
    sample = ["sample", trained[0], "-n", "6", "--batch-size", "2", "--steps", "2"]
    for name in ("s.csv", "s.npy"):
        assert main([*sample, "--out", str(tmp_path / name)]) == 130
        assert capsys.readouterr().err == "error: interrupted; nothing was written.\n"

    def interrupt_in_garbage_collector(*_):
        raise KeyboardInterrupt

    def dropped_interrupt(self, *args, **kwargs):
        """Ctrl-C lands in a garbage-collector callback (as in JAX's), where Python drops the exception."""
        for i, batch in enumerate(original(self, *args, **kwargs)):
            if i == 1:
                gc.callbacks.append(interrupt_in_garbage_collector)
                try:
                    gc.collect()
                finally:
                    gc.callbacks.remove(interrupt_in_garbage_collector)
            yield batch

    monkeypatch.setattr(ScoreModel, "generate_batches", dropped_interrupt)
    assert main([*sample, "--out", str(tmp_path / "s.csv")]) == 130
    assert capsys.readouterr().err == "error: interrupted; nothing was written.\n"
    _only(tmp_path, "d.csv")


def test_existing_out_needs_overwrite(trained, tmp_path, capsys):
    data_path = _write_csv(tmp_path / "d.csv", _train_data(16).tolist())
    (tmp_path / "m.keras").write_text("an older model")
    train = ["train", data_path, "--out", str(tmp_path / "m.keras"), *TINY]
    _run_error(capsys, train, "--out", "m.keras", "already exists", "--overwrite")
    assert (tmp_path / "m.keras").read_text() == "an older model"
    out = tmp_path / "s.csv"
    out.write_text("older samples")
    sample = ["sample", trained[0], "-n", "3", "--steps", "2", "--out", str(out)]
    err = _run_error(capsys, sample, "--out", "already exists", "--overwrite")
    assert str(out) in err
    assert out.read_text() == "older samples"
    assert main([*sample, "--overwrite"]) == 0
    assert table_io.read_table(out)[0].shape == (3, 2)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "samples.csv").write_text("older samples")
    demo = ["demo", "--quick", "--out-dir", str(tmp_path / "demo")]
    _run_error(capsys, demo, "--out-dir", "already holds samples.csv", "--overwrite")
    _only(tmp_path / "demo", "samples.csv")
    _only(tmp_path, "d.csv", "m.keras", "s.csv", "demo")


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder in which no file can be created, even by root (/sys), or skip."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    try:
        handle, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        yield pathlib.Path("/sys")
        return
    os.close(handle)
    os.remove(probe)
    pytest.skip("no unwritable folder to test with")


def test_unwritable_out_is_refused_before_training(unwritable_folder, tmp_path, capsys):
    data_path = _write_csv(tmp_path / "d.csv", _train_data(16).tolist())
    out = unwritable_folder / "m.keras"
    _run_error(capsys, ["train", data_path, "--out", str(out), *TINY], "--out", str(out), "cannot write to the folder")
    demo = ["demo", "--out-dir", str(unwritable_folder / "demo")]
    _run_error(capsys, demo, "--out-dir", "cannot write to the folder")
    assert "training on" not in capsys.readouterr().out
    assert not out.exists()


def test_failed_save_keeps_the_trained_model(tmp_path, capsys, monkeypatch):
    """A save that fails after training (here: a full disk) keeps the model elsewhere and says where."""
    data_path = _write_csv(tmp_path / "d.csv", _train_data(16).tolist())
    out = tmp_path / "out" / "m.keras"
    out.parent.mkdir()
    out.write_text("an older model")
    fallback = tmp_path / "fallback"
    fallback.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(fallback))
    save = ScoreModel.save

    def disk_full_in_out(self, path, *args, **kwargs):
        if os.path.dirname(os.path.abspath(path)) == str(out.parent):
            raise OSError(28, "No space left on device")
        return save(self, path, *args, **kwargs)

    monkeypatch.setattr(ScoreModel, "save", disk_full_in_out)
    status = main(["train", data_path, "--out", str(out), "--overwrite", *TINY])
    err = capsys.readouterr().err
    assert status == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("error: saving the model to --out"), err
    assert str(out) in err and "No space left on device" in err
    (kept,) = os.listdir(fallback)
    assert re.fullmatch(r"keras-score-\d{8}-\d{6}-\d+\.keras", kept)
    assert repr(str(fallback / kept)) in err
    assert isinstance(keras.models.load_model(fallback / kept), ScoreModel)
    assert out.read_text() == "an older model"
    _only(out.parent, "m.keras")


def _crafted_archives(folder, marker):
    """.keras archives whose config.json tries to run code at load: each would create `marker`."""
    code = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Lambda(code)(inputs)).save(folder / "lambda.keras")  # marshalled bytecode
    marker.unlink(missing_ok=True)  # building the model ran the lambda once
    with zipfile.ZipFile(folder / "lambda.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    layers = config["config"]["layers"]
    calls = {
        # os.system("touch marker") as a "layer" of the functional graph (CVE-2025-1550)
        "system.keras": [layers[0], {**layers[1], "module": "os", "class_name": "function", "config": "system",
                                      "registered_name": "system",
                                      "inbound_nodes": [{"args": [f"touch {marker}"], "kwargs": {}}]}],
        # builtins.exec of Python source
        "exec.keras": [layers[0], {**layers[1], "module": "builtins", "class_name": "function", "config": "exec",
                                    "registered_name": "exec",
                                    "inbound_nodes": [{"args": [f"open({str(marker)!r}, 'w')"], "kwargs": {}}]}],
        # safe mode switched off from inside the archive, then the Lambda (CVE-2025-9906)
        "unsafe.keras": [
            {**layers[1], "module": "keras.config", "class_name": "function",
             "config": "enable_unsafe_deserialization", "registered_name": "enable_unsafe_deserialization",
             "name": "unsafe", "inbound_nodes": [{"args": [], "kwargs": {}}]},
            *layers,
        ],
    }
    for name, crafted_layers in calls.items():
        crafted = {**config, "config": {**config["config"], "layers": crafted_layers}}
        with zipfile.ZipFile(folder / name, "w") as archive:
            for member, content in members.items():
                archive.writestr(member, json.dumps(crafted) if member == "config.json" else content)
    return ["lambda.keras", *calls]


def test_crafted_model_files_run_no_code(tmp_path, capsys):
    marker = tmp_path / "marker"
    names = _crafted_archives(tmp_path, marker)
    # The Lambda archive does carry live code: loading it outside safe mode runs it.
    keras.models.load_model(tmp_path / "lambda.keras", safe_mode=False)
    assert marker.exists()
    marker.unlink()
    for name in names:
        out = tmp_path / "x.csv"
        _run_error(capsys, ["sample", str(tmp_path / name), "-n", "2", "--out", str(out)], "MODEL", "cannot be loaded")
        evaluate = ["evaluate", str(tmp_path / name), str(tmp_path / "lambda.keras")]
        _run_error(capsys, evaluate, "MODEL", "cannot be loaded")
        assert not marker.exists(), name
        assert not out.exists()

