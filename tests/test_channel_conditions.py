"""Conditions concatenated to the input as channels: an image (H, W, c) or a frame stack (k, H, W, C)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_score import conditioning
from keras_score.denoiser import Denoiser
from keras_score.model import ScoreModel
from keras_score.networks import UNet


@keras.saving.register_keras_serializable(package="keras_score_tests")
class ExtraChannelSum(keras.layers.Layer):
    """F((x, c_noise)) = x[..., :1] + 10·Σ x[..., 1:]: the data channel plus ten times the extra channels."""

    def call(self, inputs):
        x = inputs[0]
        return x[..., :1] + 10.0 * ops.sum(x[..., 1:], axis=-1, keepdims=True)


FRAMES = {"frames": {"shape": (2, 4, 4, 1), "channels": True}}


def test_spec_marks_channels_and_round_trips():
    spec = conditioning.condition_spec(FRAMES, num_classes=3)
    assert spec["frames"] == {"shape": (2, 4, 4, 1), "dtype": "float32", "channels": True}
    assert conditioning.channel_entries(spec) == ["frames"]
    assert conditioning.condition_spec(conditioning.spec_config(spec)) == spec
    with pytest.raises(ValueError, match=r"'channels' must be float images .* received shape \(4, 4\)"):
        conditioning.condition_spec({"low": {"shape": (4, 4), "channels": True}})
    with pytest.raises(ValueError, match=r"`conditions\['low'\]\['channels'\]` must be True or False"):
        conditioning.condition_spec({"low": {"shape": (4, 4, 1), "channels": "yes"}})


def test_a_frame_stack_becomes_k_times_c_channels_in_order():
    stack = np.arange(2 * 3 * 4 * 4 * 2, dtype="float32").reshape(2, 3, 4, 4, 2)
    entry = {"shape": (3, 4, 4, 2), "channels": True}
    channels = ops.convert_to_numpy(conditioning.as_channels(ops.convert_to_tensor(stack), entry))
    assert channels.shape == (2, 4, 4, 6)
    np.testing.assert_array_equal(channels[..., 2:4], stack[:, 1])  # frame 1's channels follow frame 0's


def test_the_denoiser_concatenates_the_frames_and_zeros_them_where_dropped():
    denoiser = Denoiser(ExtraChannelSum(), "edm", "edm", conditions=FRAMES)
    denoiser.build((None, 4, 4, 1))
    assert denoiser.condition_encoder is None and not denoiser.has_embedding
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    frames = rng.normal(size=(3, 2, 4, 4, 1)).astype("float32")
    sigma = np.array([0.5, 1.0, 2.0], "float32")
    drop = np.array([False, True, False])
    output = denoiser(x, sigma, {"frames": frames, "drop": drop})
    sigma_data = 1.0  # EDMPreconditioning's default (standardised data)
    s = sigma[:, None, None, None]
    c_skip = sigma_data**2 / (s**2 + sigma_data**2)
    c_out = s * sigma_data / np.sqrt(s**2 + sigma_data**2)
    c_in = 1 / np.sqrt(s**2 + sigma_data**2)
    extra = 10 * frames.sum(axis=1) * (~drop)[:, None, None, None]
    expected = c_skip * x + c_out * (c_in * x + extra)
    np.testing.assert_allclose(ops.convert_to_numpy(output), expected, rtol=1e-5, atol=1e-6)
    unconditional = denoiser(x, sigma)
    np.testing.assert_allclose(ops.convert_to_numpy(unconditional), c_skip * x + c_out * c_in * x, rtol=1e-5, atol=1e-6)


def test_a_network_returning_the_extra_channels_is_a_clear_error():
    denoiser = Denoiser(UNet(channels=8, blocks_per_level=1), conditions=FRAMES)
    hint = r"data's shape \(4, 4, 1\) \(for conditioning channels, e\.g\. UNet\(output_channels=C\)\)"
    with pytest.raises(ValueError, match=hint):
        denoiser.build((None, 4, 4, 1))


def test_a_model_with_frames_and_labels_trains_samples_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(32, 2, 4, 4, 1)).astype("float32")
    x = frames[:, -1] + 0.1 * rng.normal(size=(32, 4, 4, 1)).astype("float32")  # the next frame ≈ the last one
    labels = np.arange(32) % 3
    model = ScoreModel(
        UNet(channels=8, blocks_per_level=1, output_channels=1), conditions=FRAMES, num_classes=3, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit({"x": x, "frames": frames, "labels": labels}, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.denoiser.encoded_conditions == ["labels"] and model.denoiser.channel_conditions == ["frames"]
    condition = {"frames": frames[:4]}
    samples = model.generate(4, condition=condition, labels=labels[:4], steps=3, seed=0)
    assert samples.shape == (4, 4, 4, 1) and np.all(np.isfinite(samples))
    path = str(tmp_path / "frames.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.condition_spec["frames"]["channels"] is True
    np.testing.assert_allclose(
        restored.generate(4, condition=condition, labels=labels[:4], steps=3, seed=0), samples, rtol=1e-5, atol=1e-5
    )
    guided = model.generate(4, condition=condition, labels=labels[:4], guidance_scale=2.0, steps=3, seed=0)
    assert np.all(np.isfinite(guided))
