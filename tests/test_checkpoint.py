"""Checkpoints (keras_score.checkpoint): exact resume across a SIGKILL, atomic files, the divergence guard."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_score
from keras_score.checkpoint import Checkpoint
from keras_score.seeded_batches import SeededBatches

REPO = os.path.dirname(os.path.dirname(keras_score.__file__))

# Trains 4 epochs of 4 batches with a checkpoint every 3 steps, kills itself with SIGKILL after
# batch KILL_AT of this process (0: never), and writes every model and optimizer variable to OUT.
RUN = """
import os, signal, sys
import numpy as np, keras, keras_score
from keras_score.checkpoint import Checkpoint
folder, kill_at, out = globals().get("ARGS") or sys.argv[1:]
kill_at = int(kill_at)
keras.utils.set_random_seed(0)
data = keras_score.datasets.GaussianMixture.ring().sample(100, seed=0)
model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=16, num_blocks=1), ema="edm", seed=3)
model.compile(keras.optimizers.Adam(1e-2))

class Kill(keras.callbacks.Callback):
    batches = 0
    def on_train_batch_end(self, batch, logs=None):
        Kill.batches += 1
        if Kill.batches == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

checkpoint = Checkpoint(folder, every_steps=3)
model.fit(data, batch_size=32, epochs=4, verbose=0, callbacks=[checkpoint, Kill()])
np.savez(out, *[keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables])
print(checkpoint.start_step, checkpoint.step)
"""


def _run(folder, kill_at, out):
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(folder), str(kill_at), str(out)],
        env=dict(os.environ, PYTHONPATH=REPO),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result


def _run_here(folder, out, capsys):
    capsys.readouterr()
    exec(compile(RUN, "RUN", "exec"), {"ARGS": [str(folder), "0", str(out)]})
    return capsys.readouterr().out.split()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_run_killed_and_restarted_reaches_the_uninterrupted_weights(tmp_path, capsys):
    killed = _run(tmp_path / "killed", 7, tmp_path / "never.npz")
    assert killed.returncode == -9, killed.stderr
    state = json.loads((tmp_path / "killed" / "checkpoint.json").read_text())
    assert state["step"] == 6 and sorted(os.listdir(tmp_path / "killed")) == [
        "checkpoint.json",
        "step-000000003.keras",
        "step-000000006.keras",
    ]  # no temporary file is left by the kill
    # The restart and the uninterrupted run go on in this process (a fresh one would only cost its start-up).
    assert _run_here(tmp_path / "killed", tmp_path / "resumed.npz", capsys) == ["6", "16"]
    assert _run_here(tmp_path / "straight", tmp_path / "straight.npz", capsys) == ["0", "16"]
    a, b = np.load(tmp_path / "resumed.npz"), np.load(tmp_path / "straight.npz")
    assert len(a.files) == len(b.files) > 40  # weights, EMA, noise state, standardisation, optimizer
    for name in a.files:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7)


def test_seeded_batches_cover_every_row_once_per_pass_and_depend_only_on_the_step():
    x = np.arange(10, dtype="float32")[:, None]
    batches = SeededBatches(x, batch_size=4, seed=1)
    assert batches.batches_per_pass == 3 and len(batches) == 3
    for data_pass in range(2):
        rows = np.concatenate([batches.rows(3 * data_pass + i) for i in range(3)])
        assert sorted(rows) == list(range(10))
    assert not np.array_equal(batches.rows(0), batches.rows(3))  # a new order each pass
    other = SeededBatches(x, batch_size=4, seed=1, start_step=4)
    np.testing.assert_array_equal(other[0], x[batches.rows(4)])
    np.testing.assert_array_equal(SeededBatches((x, x), 4, 1)[2][1], x[batches.rows(2)])


def _tiny():
    keras.utils.set_random_seed(0)
    return keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=8, num_blocks=1), seed=0)


def test_resuming_with_another_batch_size_is_refused(tmp_path):
    x = np.random.RandomState(0).randn(40, 2).astype("float32")
    model = _tiny()
    model.compile("adam")
    model.fit(x, batch_size=8, epochs=1, verbose=0, callbacks=[Checkpoint(tmp_path, every_steps=2)])
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 4
    model = _tiny()
    model.compile("adam")
    with pytest.raises(ValueError, match="batch_size=8; this run has batch_size=16"):
        model.fit(x, batch_size=16, epochs=1, verbose=0, callbacks=[Checkpoint(tmp_path, every_steps=2)])
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, validation_split=0.2, callbacks=[Checkpoint(tmp_path / "other")], verbose=0)
    with pytest.raises(ValueError, match="every_steps"):
        Checkpoint(tmp_path, every_steps=0)


def test_divergence_keeps_the_last_good_checkpoint_and_names_it(tmp_path):
    x = np.random.RandomState(0).randn(64, 2).astype("float32")
    model = _tiny()
    # Four good steps, then a learning rate that blows the weights up.
    model.compile(keras.optimizers.SGD(keras.optimizers.schedules.PiecewiseConstantDecay([4], [1e-3, 1e12])))
    checkpoint = Checkpoint(tmp_path, every_steps=2)
    with pytest.raises(FloatingPointError, match="last good checkpoint") as error:
        model.fit(x, batch_size=8, epochs=3, verbose=0, callbacks=[checkpoint])
    path = checkpoint.latest_path()
    assert repr(path) in str(error.value)
    saved = keras.saving.load_model(path)
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(v))) for v in saved.variables)
    assert checkpoint.state()["step"] >= 4
    assert np.all(np.isfinite(model.generate(4, steps=3, seed=0)))
