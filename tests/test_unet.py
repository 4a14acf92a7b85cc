"""Tests for the image UNet: shapes, its zero start, argument errors, serialization (across backends too), training."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import keras_score
from keras_score.datasets import load_digits
from keras_score.networks import UNet

from conftest import to_numpy

TINY = dict(channels=8, channel_multipliers=(1, 2), blocks_per_level=1, groups=4)


def _randomize_output(net):
    """Random values in every zero-initialised kernel (the output convolution, each block's last layer)."""
    for index, weight in enumerate(net.weights):
        if len(weight.shape) >= 2 and not np.any(to_numpy(weight)):
            weight.assign(keras.random.normal(weight.shape, stddev=0.1, seed=index))


@pytest.mark.parametrize("shape", [(8, 8, 1), (8, 8, 3), (8, 16, 2)])
def test_output_has_the_input_shape_and_starts_at_zero(shape):
    net = UNet(attention_resolutions=(4,), **TINY)
    x = keras.random.normal((2, *shape), seed=0)
    y = net((x, ops.ones((2,))))
    assert tuple(y.shape) == (2, *shape)
    assert np.all(to_numpy(y) == 0.0)  # the zero-initialised output convolution
    _randomize_output(net)
    assert np.abs(to_numpy(net((x, ops.ones((2,)))))).mean() > 1e-3


@pytest.mark.parametrize("embedding_mode", ["film", "add"])
def test_noise_level_and_condition_change_the_output(embedding_mode):
    net = UNet(embedding_mode=embedding_mode, output_channels=1, num_heads=2, attention_resolutions=(8,), **TINY)
    x = keras.random.normal((2, 8, 8, 3), seed=0)  # data channel + 2 conditioning channels
    condition = keras.random.normal((2, 5), seed=2)
    y = net((x, ops.zeros((2,)), condition))
    assert tuple(y.shape) == (2, 8, 8, 1)
    _randomize_output(net)
    outputs = [to_numpy(net((x, ops.full((2,), n), c))) for n, c in ((0.0, condition), (1.0, condition), (0.0, -condition))]
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-4 and np.abs(outputs[0] - outputs[2]).max() > 1e-4


def test_attention_blocks_sit_at_the_named_resolution():
    net = UNet(channels=8, channel_multipliers=(1, 2, 2), blocks_per_level=2, groups=4, attention_resolutions=(4,))
    net((ops.zeros((1, 16, 16, 1)), ops.zeros((1,))))
    # Level 2 of 16 × 16 inputs has 4 × 4 maps: 2 blocks down, 3 up (the middle block's attention is always there).
    assert sorted(net.attention) == ["down_2_0", "down_2_1", "up_2_0", "up_2_1", "up_2_2"]


@pytest.mark.parametrize(
    "kwargs, shape, match",
    [
        ({}, (7, 8, 1), "H and W divisible by 2; received H=7, W=8"),
        ({"channel_multipliers": (1, 2, 2)}, (8, 10, 1), "divisible by 4; received H=8, W=10"),
        ({}, (8, 8), r"shape \(batch, H, W, C\)"),
        ({"attention_resolutions": (2,)}, (8, 8, 1), r"heights \[8, 4\]"),
    ],
)
def test_bad_shapes_get_clear_errors(kwargs, shape, match):
    net = UNet(**{**TINY, **kwargs})
    with pytest.raises(ValueError, match=match):
        net((ops.zeros((1, *shape)), ops.zeros((1,))))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"groups": 3}, r"`groups` \(3\) must divide `channels` \(8\)"),
        ({"embedding_mode": "concat"}, "`embedding_mode` must be one of"),
        ({"channel_multipliers": ()}, "at least one level"),
        ({"channel_multipliers": 2}, "sequences of positive integers"),
        ({"dropout": 1.0}, "`dropout`"),
        ({"blocks_per_level": 0}, "`blocks_per_level`"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(**{**TINY, **kwargs})


def test_config_round_trip_gives_the_same_outputs():
    net = UNet(attention_resolutions=(4,), dropout=0.1, embedding="sinusoidal", **TINY)
    x, noise = keras.random.normal((2, 8, 8, 1), seed=0), ops.full((2,), 0.3)
    net((x, noise))
    _randomize_output(net)
    clone = UNet.from_config(net.get_config())
    clone((x, noise))
    clone.set_weights(net.get_weights())
    assert clone.get_config() == net.get_config()
    np.testing.assert_allclose(to_numpy(clone((x, noise))), to_numpy(net((x, noise))), atol=1e-6)


@pytest.fixture(scope="module")
def digits():
    images = load_digits()
    return images[:256]


@pytest.fixture(scope="module")
def trained(digits):
    """A tiny UNet ScoreModel on 8 × 8 digits, with its denoising error at fixed noise before and after training."""
    keras.utils.set_random_seed(0)
    model = keras_score.ScoreModel(UNet(attention_resolutions=(4,), **TINY), normalize=False, ema="edm", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.build((None, 8, 8, 1))
    x0 = digits[:64]
    noise = np.random.default_rng(0).standard_normal(x0.shape).astype("float32")
    sigma = 0.5

    def error():
        return float(np.mean((to_numpy(model.denoise(x0 + sigma * noise, sigma)) - x0) ** 2))

    before = error()
    with model.swap_ema_weights(False):
        model.fit(digits, batch_size=32, epochs=10, verbose=0)
        after = error()
    return model, before, after


def test_training_on_digits_lowers_the_denoising_error(trained):
    _, before, after = trained
    assert after < 0.7 * before, (before, after)


def test_saved_unet_model_denoises_the_same(trained, tmp_path):
    model, _, _ = trained
    path = str(tmp_path / "unet.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = keras.random.normal((3, 8, 8, 1), seed=4)
    np.testing.assert_allclose(to_numpy(loaded.denoise(x, 0.7)), to_numpy(model.denoise(x, 0.7)), atol=1e-5)
    samples = loaded.generate(4, steps=4, seed=0)
    assert samples.shape == (4, 8, 8, 1) and np.all(np.isfinite(samples))


SAVE_ON_OTHER_BACKEND = """
import sys
import keras, numpy as np
import keras_score
from keras_score.networks import UNet
keras.utils.set_random_seed(0)
model = keras_score.ScoreModel(UNet(attention_resolutions=(4,), **{tiny}), normalize=False, seed=0)
model.build((None, 8, 8, 1))
for index, weight in enumerate(model.weights):
    weight.assign(np.random.default_rng(index).normal(0, 0.1, weight.shape).astype(weight.dtype))
x = np.random.default_rng(99).normal(size=(3, 8, 8, 1)).astype("float32")
model.save(sys.argv[1])
np.save(sys.argv[2], keras.ops.convert_to_numpy(model.denoise(x, 0.7)))
"""


def test_a_unet_model_saved_on_another_backend_loads_and_denoises_the_same(tmp_path):
    others = {"jax": "torch", "torch": "tensorflow", "tensorflow": "jax"}
    env = dict(os.environ, KERAS_BACKEND=others[keras.backend.backend()], TF_CPP_MIN_LOG_LEVEL="3")
    path, expected = str(tmp_path / "unet.keras"), str(tmp_path / "denoised.npy")
    code = SAVE_ON_OTHER_BACKEND.format(tiny=repr(TINY))
    result = subprocess.run([sys.executable, "-c", code, path, expected], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(99).normal(size=(3, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(to_numpy(loaded.denoise(x, 0.7)), np.load(expected), atol=1e-4)
