"""EMA weights (keras_score.ema): closed forms, sampling with the average, save / load / resume keep both sets."""

import keras
import numpy as np
import pytest

import keras_score
from keras_score import ema

DATA = np.random.RandomState(0).randn(64, 2).astype("float32")
STEPS = 5


def _model(average):
    keras.utils.set_random_seed(0)  # the same initial weights for every model
    model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=8, num_blocks=1), ema=average, seed=1)
    model.compile(keras.optimizers.SGD(0.2))
    return model


def _weights(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _train(model, steps):
    """`steps` one-step fits (one batch of all the data), and the raw weights after each."""
    history = []
    for _ in range(steps):
        model.fit(DATA, batch_size=len(DATA), epochs=1, verbose=0, shuffle=False)
        history.append(_weights(model.denoiser.trainable_variables))
    return history


def _power_weights(exponent, t):
    """θ̄_t = t^−(γ+1)·Σ_k (k^(γ+1) − (k − 1)^(γ+1))·θ_k."""
    k = np.arange(1, t + 1, dtype=np.float64)
    return (k ** (exponent + 1) - (k - 1) ** (exponent + 1)) / t ** (exponent + 1)


def _halflife_weights(halflife, rampup, t):
    """Σ_k (1 − β_k)·Π_{j>k} β_j from EDM's β_k = 0.5^(1/min(halflife, (k − 1)·rampup)), β_1 = 0."""
    betas = np.array([0.0] + [0.5 ** (1.0 / min(halflife, (k - 1) * rampup)) for k in range(2, t + 1)])
    return np.array([(1 - betas[k]) * np.prod(betas[k + 1 :]) for k in range(t)])


@pytest.mark.parametrize(
    "average, coefficients",
    [
        (ema.PowerFunctionEMA(exponent=0.0), np.full(STEPS, 1.0 / STEPS)),  # the running mean
        (ema.PowerFunctionEMA(std=0.10), _power_weights(ema.std_to_exponent(0.10), STEPS)),
        (ema.HalfLifeEMA(halflife=2.0, rampup_ratio=0.5), _halflife_weights(2.0, 0.5, STEPS)),
    ],
    ids=["running-mean", "power-0.10", "halflife-rampup"],
)
def test_average_equals_its_closed_form(average, coefficients):
    model = _model(average)
    history = _train(model, STEPS)
    assert int(keras.ops.convert_to_numpy(model.ema_steps)) == STEPS
    np.testing.assert_allclose(coefficients.sum(), 1.0, rtol=1e-12)
    spreads = []
    for i, got in enumerate(_weights(model.ema_weights)):
        expected = sum(c * weights[i] for c, weights in zip(coefficients, history))
        spreads.append(np.abs(history[-1][i] - expected).max())
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert max(spreads) > 1e-3  # the average is far from the last weights: the comparison can fail
    # The raw weights are the trained ones, not the average (Keras' use_ema would have overwritten them).
    for raw, last in zip(_weights(model.denoiser.trainable_variables), history[-1]):
        np.testing.assert_array_equal(raw, last)


def test_edm2_exponent_and_decays():
    assert ema.std_to_exponent(0.10) == pytest.approx(6.94, abs=5e-3)  # EDM2, Sec. 3.1: σ_rel 0.10 ↔ γ ≈ 6.94
    assert ema.std_to_exponent(0.05) == pytest.approx(16.97, abs=5e-3)
    steps = keras.ops.convert_to_tensor([1.0, 2.0, 10.0])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ema.PowerFunctionEMA(exponent=1.0).decay(steps)), [0.0, 0.25, 0.81], rtol=1e-6
    )
    halflife = ema.HalfLifeEMA(halflife=10.0, rampup_ratio=None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(halflife.decay(steps)), [0.0, 0.5**0.1, 0.5**0.1], rtol=1e-6)


@pytest.fixture(scope="module")
def trained():
    model = _model(ema.HalfLifeEMA(halflife=2.0, rampup_ratio=None))  # no ramp-up: far from the raw weights
    _train(model, 3)
    return model


def test_sampling_and_likelihood_use_the_average(trained):
    with_average = trained.generate(16, steps=4, seed=0)
    raw = trained.generate(16, steps=4, seed=0, use_ema=False)
    assert np.abs(with_average - raw).max() > 1e-4
    with trained.swap_ema_weights():
        np.testing.assert_allclose(trained.generate(16, steps=4, seed=0, use_ema=False), with_average, atol=1e-6)
    np.testing.assert_allclose(trained.generate(16, steps=4, seed=0, use_ema=False), raw, atol=1e-6)  # swapped back
    x = DATA[:4]
    with trained.swap_ema_weights():
        expected = trained.log_prob(x, steps=8, solver="heun", use_ema=False)
    np.testing.assert_allclose(trained.log_prob(x, steps=8, solver="heun"), expected, rtol=1e-5)
    state = keras.ops.convert_to_numpy(trained.seed_generator.state).copy()
    losses = []
    for use_ema, swap in ((None, False), (False, True), (False, False)):  # the same training noise for each
        trained.seed_generator.state.assign(state)
        with trained.swap_ema_weights(swap):
            losses.append(trained.evaluate(DATA, batch_size=64, verbose=0, use_ema=use_ema))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and losses[0] != pytest.approx(losses[2], rel=1e-5)


def test_swap_restores_the_raw_weights_when_the_block_raises(trained):
    raw = _weights(trained.denoiser.trainable_variables)
    with pytest.raises(RuntimeError, match="inside"):
        with trained.swap_ema_weights():
            raise RuntimeError("inside")
    for got, expected in zip(_weights(trained.denoiser.trainable_variables), raw):
        np.testing.assert_array_equal(got, expected)


def test_save_load_and_resume_keep_both_sets(tmp_path):
    uninterrupted = _model(ema.PowerFunctionEMA(std=0.10))
    _train(uninterrupted, 4)
    resumed = _model(ema.PowerFunctionEMA(std=0.10))
    _train(resumed, 2)
    path = str(tmp_path / "ema.keras")
    resumed.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.ema, ema.PowerFunctionEMA) and loaded.ema.std == 0.10
    for got, expected in zip(_weights(loaded.ema_weights + loaded.denoiser.trainable_variables),
                             _weights(resumed.ema_weights + resumed.denoiser.trainable_variables)):
        np.testing.assert_array_equal(got, expected)
    _train(loaded, 2)
    for got, expected in zip(_weights(loaded.ema_weights + loaded.denoiser.trainable_variables),
                             _weights(uninterrupted.ema_weights + uninterrupted.denoiser.trainable_variables)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert int(keras.ops.convert_to_numpy(loaded.ema_steps)) == 4


def test_config_round_trip_and_bad_arguments():
    model = _model("edm")
    clone = keras_score.ScoreModel.from_config(model.get_config())
    assert isinstance(clone.ema, ema.HalfLifeEMA) and clone.ema.get_config() == model.ema.get_config()
    assert keras_score.ScoreModel.from_config(_model(None).get_config()).ema is None
    with pytest.raises(ValueError, match="Unknown ema 'fast'"):
        _model("fast")
    with pytest.raises(ValueError, match="halflife"):
        ema.HalfLifeEMA(halflife=0)
    with pytest.raises(ValueError, match="std"):
        ema.PowerFunctionEMA(std=0.5)


def test_validation_inside_fit_uses_the_average_and_leaves_training_alone():
    """An average frozen at the initial weights: validation must see it, and training must not."""
    runs = []
    for average in (None, ema.HalfLifeEMA(halflife=1e9, rampup_ratio=None)):
        model = _model(average)
        history = model.fit(DATA, batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=DATA[:16])
        runs.append((model, history.history["val_loss"]))
    (plain, plain_val), (averaged, averaged_val) = runs
    for a, b in zip(_weights(plain.denoiser.trainable_variables), _weights(averaged.denoiser.trainable_variables)):
        np.testing.assert_array_equal(a, b)  # the same training noise, and the raw weights came back
    assert plain_val != pytest.approx(averaged_val, rel=1e-4)  # validated with other weights
