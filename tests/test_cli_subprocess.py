"""The `keras-score` command line run as a program: Ctrl-C, the choice of backend, a quiet TensorFlow.

Each test starts a fresh Python, since what is checked (the backend Keras
is imported with, what reaches file descriptor 2) is fixed at import time.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

import keras_score

PACKAGE_DIR = os.path.dirname(keras_score.__file__)
TINY = ["--steps", "2", "--batch-size", "8", "--hidden-units", "8", "--blocks", "1"]

# Runs `keras_score.cli.main(argv)` with the modules in BLOCKED made uninstallable: the package imports
# lazily, so the CLI must choose the backend before anything imports Keras. It prints the status and
# what it observed as a last JSON line.
BOOT = """
import json, os, sys
for name in json.loads(os.environ.pop("BLOCKED", "[]")):
    sys.modules[name] = None  # `import name` fails and importlib.util.find_spec(name) is None
from keras_score import cli
status = cli.main(sys.argv[1:])
print(json.dumps({"status": status, "keras_imported": "keras" in sys.modules,
                  "backend": os.environ.get("KERAS_BACKEND")}))
"""


def _environment(tmp_path, **variables):
    """The test's environment with no backend named: no KERAS_BACKEND, no keras.json, no TensorFlow log level."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KERAS_", "TF_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), PYTHONPATH=os.path.dirname(PACKAGE_DIR), **variables)  # this checkout
    return env


def _run(argv, env, timeout=240):
    result = subprocess.run(
        [sys.executable, "-c", BOOT, *argv], env=env, capture_output=True, text=True, timeout=timeout, cwd=env["HOME"]
    )
    *_, report = result.stdout.strip().splitlines() or [""]
    return result, json.loads(report) if report.startswith("{") else None


def _data(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n" + "".join(f"{i % 7},{i % 5 - 2}\n" for i in range(32)))
    return str(path)


def _installed(name):
    return importlib.util.find_spec(name) is not None


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows, not SIGINT")
def test_sigint_during_training_prints_one_line(tmp_path):
    out = tmp_path / "m.keras"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")  # only the interrupt's line on stderr, on every backend
    argv = ["train", _data(tmp_path), "--out", str(out), *TINY[4:], "--steps", "10000000", "--batch-size", "4"]
    # `python -m keras_score.cli`, with Ctrl-C handled as in a terminal even when this test runs in the
    # background, where SIGINT is inherited ignored (a preexec_fn would fork a multithreaded JAX process).
    code = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('keras_score.cli', run_name='__main__', alter_sys=True)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(240, process.kill)  # a run that never prints its first line fails, not hangs
    watchdog.start()
    try:
        assert process.stdout.readline().startswith("training on 32 rows")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 130, err
    assert err == "error: interrupted; nothing was written.\n"
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


@pytest.mark.skipif(not _installed("jax"), reason="needs JAX, the first backend chosen")
def test_help_imports_no_keras_and_a_backend_is_chosen(tmp_path):
    env = _environment(tmp_path, BLOCKED='["tensorflow"]')
    result, report = _run(["--help"], env)
    assert result.returncode == 0 and report == {"status": 0, "keras_imported": False, "backend": None}, result.stderr
    assert "{inspect,train,sample,evaluate,demo}" in result.stdout
    result, report = _run(["sample", "--help"], env)
    assert "dpmpp_2m" in result.stdout and report["keras_imported"] is False
    out = tmp_path / "m.keras"
    result, report = _run(["train", _data(tmp_path), "--out", str(out), *TINY], env)
    assert report == {"status": 0, "keras_imported": True, "backend": "jax"}, result.stderr
    assert result.stderr == "" and out.exists()


def test_no_backend_installed_is_one_line(tmp_path):
    env = _environment(tmp_path, BLOCKED='["jax", "tensorflow", "torch"]')
    result, report = _run(["--help"], env)
    assert report["status"] == 0
    result, report = _run(["train", _data(tmp_path), "--out", str(tmp_path / "m.keras")], env)
    assert report == {"status": 1, "keras_imported": False, "backend": None}
    assert result.stderr.startswith("error: no Keras backend is installed") and len(result.stderr.splitlines()) == 1
    assert 'pip install "keras_score[jax]"' in result.stderr and "KERAS_BACKEND=jax|tensorflow|torch" in result.stderr
    # A backend that is named but missing: one line, too.
    env = _environment(tmp_path, BLOCKED='["tensorflow"]', KERAS_BACKEND="tensorflow")
    result, report = _run(["train", _data(tmp_path), "--out", str(tmp_path / "m.keras")], env)
    assert report["status"] == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: the Keras backend 'tensorflow' cannot be imported")
    assert 'pip install "keras_score[tensorflow]"' in result.stderr


@pytest.mark.skipif(not _installed("tensorflow"), reason="TensorFlow is not installed")
def test_tensorflow_start_up_log_stays_off_stderr(tmp_path):
    env = _environment(tmp_path, KERAS_BACKEND="tensorflow")
    out = tmp_path / "m.keras"
    result, report = _run(["train", _data(tmp_path), "--out", str(out), *TINY], env)
    assert report is not None and report["status"] == 0, result.stderr
    assert result.stderr == ""
    assert "training on 32 rows" in result.stdout and out.exists()


@pytest.mark.parametrize(
    "variables, blocked",
    [({}, "tensorflow"), ({"KERAS_BACKEND": "tensorflow"}, None)],
    ids=["no-tensorflow", "quiet-tensorflow"],
)
def test_real_entry_point_help(tmp_path, variables, blocked):
    """`python -m keras_score.cli --help` without TensorFlow, or with it and no log level set: silent, status 0."""
    if blocked is None and not _installed("tensorflow"):
        pytest.skip("TensorFlow is not installed")
    env = _environment(tmp_path, **variables)
    block = f"sys.modules[{blocked!r}] = None; " if blocked else ""
    code = f"import runpy, sys; {block}runpy.run_module('keras_score.cli', run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", code, "--help"], env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
