"""Sampling in bounded memory: `initial_noise` by rows, `ScoreModel.generate_batches`, and
`keras-score sample`, which streams those batches to its output.
"""

import numpy as np
import pytest

from keras_score import io as table_io
from keras_score import samplers
from keras_score.cli import main
from keras_score.model import ScoreModel
from keras_score.networks import MLP
from keras_score.samplers import initial_noise
from keras_score.samplers.base import noise_block_rows


def test_initial_noise_rows_depend_only_on_seed_and_index():
    everything = initial_noise(3000, (2,), 7)
    for start, num_samples in [(0, 3000), (5, 3), (1020, 10), (1024, 1024), (2047, 2), (2999, 1), (3000, 0)]:
        rows = initial_noise(num_samples, (2,), 7, start=start)
        np.testing.assert_array_equal(rows, everything[start : start + num_samples])
    np.testing.assert_array_equal(initial_noise(10, (2,), 7), everything[:10])
    assert not np.allclose(initial_noise(10, (2,), 8), everything[:10])
    assert initial_noise(0, (3, 2), 0).shape == (0, 3, 2)
    # Standard normal: mean and variance within five standard errors of 0 and 1.
    values = initial_noise(50000, (2,), 1).astype(np.float64)
    assert abs(values.mean()) < 5 / np.sqrt(values.size)
    assert abs(values.var() - 1.0) < 5 * np.sqrt(2.0 / values.size)


def test_initial_noise_draws_blocks_not_rows(monkeypatch):
    generators = []
    default_rng = np.random.default_rng

    def counting(seed):
        generators.append(tuple(seed))
        return default_rng(seed)

    monkeypatch.setattr(np.random, "default_rng", counting)
    assert initial_noise(100_000, (2,), 3).shape == (100_000, 2)
    assert generators == [(3, block) for block in range(-(-100_000 // 1024))]
    generators.clear()
    initial_noise(10, (2,), 3, start=2040)  # rows 2040…2049 straddle blocks 1 and 2
    assert generators == [(3, 1), (3, 2)]
    # A block holds at most 2**18 values, so one large sample never needs a large draw.
    assert noise_block_rows((2,)) == 1024 and noise_block_rows((64, 64, 3)) == 21 and noise_block_rows((2**20,)) == 1


@pytest.fixture(scope="module")
def model():
    """An untrained two-column model (its samples are as deterministic as a trained one's)."""
    model = ScoreModel(MLP(8, 1), normalize=False, seed=0, feature_names=["height", "weight"])
    model.build((None, 2))
    return model


@pytest.fixture
def noise_requests(monkeypatch):
    """The (start, num_samples) of every `initial_noise` call that sampling makes."""
    requested = []
    original = samplers.initial_noise

    def recording(num_samples, shape, seed, start=0):
        requested.append((start, num_samples))
        return original(num_samples, shape, seed, start=start)

    monkeypatch.setattr(samplers, "initial_noise", recording)
    return requested


def test_generate_batches_yields_what_generate_returns(model, noise_requests):
    requested = noise_requests
    batches = model.generate_batches(10, steps=3, seed=0, batch_size=4)
    assert requested == []  # nothing is drawn before the first batch is asked for
    first = next(batches)
    assert requested == [(0, 4)] and first.shape == (4, 2)
    rest = list(batches)
    assert requested == [(0, 4), (4, 4), (8, 2)] and [len(b) for b in rest] == [4, 2]
    np.testing.assert_array_equal(np.concatenate([first, *rest]), model.generate(10, steps=3, seed=0, batch_size=4))
    np.testing.assert_allclose(np.concatenate([first, *rest]), model.generate(10, steps=3, seed=0), atol=1e-5)
    samples, trajectory = model.generate(10, steps=3, seed=0, batch_size=4, return_trajectory=True)
    assert samples.shape == (10, 2) and trajectory.shape == (4, 10, 2)
    pairs = list(model.generate_batches(10, steps=3, seed=0, batch_size=4, return_trajectory=True))
    np.testing.assert_array_equal(np.concatenate([t for _, t in pairs], axis=1), trajectory)


def test_generate_batches_checks_arguments_at_once_and_each_batch_for_nan(model, monkeypatch):
    with pytest.raises(ValueError, match="num_samples"):
        model.generate_batches(0)
    with pytest.raises(ValueError, match="seed"):
        model.generate_batches(4, seed=-1)
    monkeypatch.setattr(model, "denormalize_data", lambda z: z * np.nan)
    batches = model.generate_batches(6, steps=2, seed=0, batch_size=4)
    with pytest.raises(FloatingPointError, match=r"8 NaN or Inf values \(in samples 0…3\)"):
        next(batches)


def test_sample_streams_batches_identical_to_one_batch(model, tmp_path, noise_requests):
    model.save(tmp_path / "model.keras")
    sample = ["sample", str(tmp_path / "model.keras"), "-n", "2500", "--steps", "3"]
    assert main([*sample, "--batch-size", "1000", "--out", str(tmp_path / "batches.csv")]) == 0
    # Only one batch of prior noise at a time, never all the rows.
    assert noise_requests == [(0, 1000), (1000, 1000), (2000, 500)]
    assert main([*sample, "--batch-size", "4096", "--out", str(tmp_path / "one.csv")]) == 0
    assert main([*sample, "--batch-size", "700", "--out", str(tmp_path / "batches.npy")]) == 0
    batches, columns = table_io.read_table(tmp_path / "batches.csv")
    one, _ = table_io.read_table(tmp_path / "one.csv")
    assert columns == ["height", "weight"] and batches.shape == (2500, 2)
    # Heun is deterministic and sample i starts from noise row i: the batch size changes nothing.
    np.testing.assert_allclose(batches, one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "batches.npy"), one, rtol=1e-5, atol=1e-5)
    raw = (tmp_path / "batches.csv").read_bytes()
    assert raw.startswith(b"height,weight\n") and b"\r" not in raw and raw.endswith(b"\n")
    assert raw.count(b"\n") == 2501
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batches.csv", "batches.npy", "model.keras", "one.csv"]
