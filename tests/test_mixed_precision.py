"""Mixed precision: a bfloat16 / float16 network inside a float32 model that trains, samples and evaluates."""

import keras
import numpy as np
import pytest

import keras_score


@pytest.fixture(params=["mixed_bfloat16", "mixed_float16"])
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


def test_a_mixed_precision_model_trains_and_samples_in_float32(policy):
    mixture = keras_score.datasets.GaussianMixture.ring()
    data = mixture.sample(256, seed=0)
    labels = (data[:, 0] > 0).astype("int32")
    model = keras_score.ScoreModel(
        keras_score.networks.MLP(hidden_units=32, num_blocks=2), num_classes=2, ema="edm", seed=0
    )
    model.compile(keras.optimizers.Adam(1e-3))
    history = model.fit(data, labels, batch_size=64, epochs=2, verbose=0)
    low = policy.removeprefix("mixed_")
    assert model.network.compute_dtype == low and model.network.variable_dtype == "float32"
    assert model.compute_dtype == model.denoiser.compute_dtype == "float32"
    assert all(np.isfinite(history.history["loss"]))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    samples, trajectory = model.generate(32, steps=6, seed=0, labels=1, guidance_scale=2.0, return_trajectory=True)
    assert samples.dtype == trajectory.dtype == np.float32  # the sampler's state
    assert np.all(np.isfinite(samples)) and np.all(np.isfinite(trajectory))
    d = model.denoise(np.zeros((4, 2), "float32"), 1.0, labels=np.zeros(4, "int32"))
    assert keras.backend.standardize_dtype(d.dtype) == "float32"
    log_prob = model.log_prob(data[:8], steps=6, solver="heun")
    assert np.all(np.isfinite(log_prob))
    per_example = model.per_example_loss(data[:8], labels=labels[:8])
    assert keras.backend.standardize_dtype(per_example.dtype) == "float32"


def test_a_mixed_dtype_given_to_the_model_is_reduced_to_full_precision():
    model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=8, num_blocks=1), dtype="mixed_bfloat16")
    assert model.dtype_policy.name == "float32" and model.denoiser.dtype_policy.name == "float32"
    clone = keras_score.ScoreModel.from_config(model.get_config())
    assert clone.dtype_policy.name == "float32"
