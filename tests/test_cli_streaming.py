"""Sampling in bounded memory: `initial_noise` by rows."""

import numpy as np

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
