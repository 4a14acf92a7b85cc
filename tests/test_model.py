"""ScoreModel: training with fit, the exact-mixture denoiser, generate, saving and loading."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import to_numpy

import keras_score
from keras_score.datasets import GaussianMixture
from keras_score.networks import MLP

MIXTURE = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5)
BACKENDS = ("tensorflow", "jax", "torch")


def small_model(**kwargs):
    return keras_score.ScoreModel(MLP(hidden_units=128, num_blocks=3), seed=0, **kwargs)


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    data = MIXTURE.sample(4096, seed=0)
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(data, batch_size=256, epochs=40, verbose=0)
    return model, history


def denoiser_error(model, seed=0):
    """Mean squared error of D against the exact mixture denoiser, in the model's standardised space."""
    mean, std = to_numpy(model.normalizer.mean), to_numpy(model.normalizer.std)
    exact = MIXTURE.affine(mean, std)
    rng = np.random.default_rng(seed)
    errors = []
    for t in (0.05, 0.2, 0.5, 1.0, 2.0):
        x0 = exact.sample(512, seed=seed)
        x_t = keras.ops.convert_to_tensor((x0 + t * rng.standard_normal(x0.shape)).astype("float32"))
        target = to_numpy(exact.denoise(x_t, t, model.schedule))
        errors.append(np.mean((to_numpy(model.denoise(x_t, t)) - target) ** 2))
    return np.array(errors)


def test_training_approaches_the_exact_denoiser(trained):
    model, history = trained
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    untrained = small_model()
    untrained.build((None, 2))
    untrained.normalizer.adapt(MIXTURE.sample(4096, seed=0))
    before, after = denoiser_error(untrained), denoiser_error(model)
    # Summed over t; at large t both are near the posterior mean 0 and the gap is small.
    assert after.sum() < 0.25 * before.sum(), (before, after)
    assert np.all(after[:4] < 0.5 * before[:4]), (before, after)


def test_score_is_consistent_with_the_denoiser(trained):
    model, _ = trained
    x = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((5, 2)).astype("float32"))
    t = 0.7
    expected = (to_numpy(model.denoise(x, t)) - to_numpy(x)) / t**2  # EDM: α = 1, σ = t
    np.testing.assert_allclose(to_numpy(model.score(x, t)), expected, rtol=1e-4, atol=1e-5)


def test_generate_in_data_units_and_reproducible(trained):
    model, _ = trained
    samples = model.generate(2000, steps=24, seed=1)
    assert samples.shape == (2000, 2) and np.all(np.isfinite(samples))
    # Trained samples lie on the ring of radius 4 (data units, not standardised).
    radius = np.linalg.norm(samples, axis=1)
    assert abs(np.median(radius) - 4.0) < 0.4
    np.testing.assert_array_equal(samples, model.generate(2000, steps=24, seed=1))
    np.testing.assert_allclose(samples[:50], model.generate(50, steps=24, seed=1), atol=1e-5)
    np.testing.assert_allclose(samples[:30], model.generate(30, steps=24, seed=1, batch_size=7), atol=1e-5)
    stochastic = model.generate(20, sampler="euler_maruyama", steps=50, seed=2)
    np.testing.assert_array_equal(stochastic, model.generate(20, sampler="euler_maruyama", steps=50, seed=2))
    x, trajectory = model.generate(8, sampler="euler", steps=5, seed=0, return_trajectory=True)
    assert trajectory.shape == (6, 8, 2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_generate_rejects_bad_num_samples(trained, bad):
    with pytest.raises(ValueError, match="num_samples"):
        trained[0].generate(bad)


def test_generate_before_fit_is_a_clear_error():
    with pytest.raises(ValueError, match="not built"):
        small_model().generate(3)


def test_fit_rejects_nan_and_non_layers():
    model = small_model()
    model.compile(optimizer="adam")
    data = np.zeros((10, 2), "float32")
    data[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(data, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="network"):
        keras_score.ScoreModel(network="mlp")


def test_fit_accepts_tf_data_and_torch_dataloader():
    import tensorflow as tf
    import torch

    data = MIXTURE.sample(512, seed=0)
    objective = keras_score.DenoisingScoreMatching(weighting="snr", noise_distribution="uniform")
    model = small_model(schedule="vp", parameterization="epsilon", objective=objective)
    model.compile(optimizer="adam")
    history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(128), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    np.testing.assert_allclose(to_numpy(model.normalizer.mean), data.mean(0), atol=1e-4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(data)), batch_size=128)
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs["loss"]))
    model.fit(loader, epochs=2, verbose=0, callbacks=[callback])
    assert len(seen) == 2 and np.all(np.isfinite(seen))


@pytest.mark.parametrize(
    "schedule, parameterization",
    [(s, "edm") for s in ["vp", "ve", "sub_vp", "cosine", "edm"]]
    + [("vp", p) for p in ["epsilon", "x0", "v", "score"]],
)
def test_every_schedule_and_parameterization_trains(schedule, parameterization):
    model = keras_score.ScoreModel(MLP(hidden_units=16, num_blocks=1), schedule=schedule, parameterization=parameterization, seed=0)
    model.compile(optimizer="adam")
    history = model.fit(MIXTURE.sample(256, seed=0), batch_size=128, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert np.all(np.isfinite(model.generate(4, steps=3, seed=0)))


def test_config_round_trip(trained):
    model, _ = trained
    config = model.get_config()
    restored = keras_score.ScoreModel.from_config(config)
    assert restored.get_config() == config


def test_save_and_load_give_identical_denoiser(trained, tmp_path):
    model, _ = trained
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras_score.ScoreModel)
    x = keras.ops.convert_to_tensor(np.linspace(-3, 3, 20, dtype="float32").reshape(10, 2))
    for t in (0.01, 0.5, 10.0):
        np.testing.assert_array_equal(to_numpy(loaded.denoise(x, t)), to_numpy(model.denoise(x, t)))
    np.testing.assert_array_equal(loaded.generate(16, steps=8, seed=0), model.generate(16, steps=8, seed=0))


LOAD_SCRIPT = """
import json, sys, keras, numpy as np
import keras_score  # registers the classes
model = keras.models.load_model(sys.argv[1])
x = np.linspace(-3, 3, 20, dtype="float32").reshape(10, 2)
print(json.dumps({str(t): keras.ops.convert_to_numpy(model.denoise(x, t)).tolist() for t in (0.01, 0.5, 10.0)}))
"""


def test_file_saved_here_loads_on_the_other_backends(trained, tmp_path):
    model, _ = trained
    path = str(tmp_path / "model.keras")
    model.save(path)
    x = np.linspace(-3, 3, 20, dtype="float32").reshape(10, 2)
    for backend in BACKENDS:
        if backend == keras.backend.backend():
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, "-c", LOAD_SCRIPT, path], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs = json.loads(result.stdout.strip().splitlines()[-1])
        for t, values in outputs.items():
            np.testing.assert_allclose(values, to_numpy(model.denoise(x, float(t))), rtol=1e-5, atol=1e-5)
