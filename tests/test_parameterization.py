"""Parameterizations, weightings and noise-level distributions."""

import keras
import numpy as np
import pytest
from conftest import ALL_SCHEDULES, schedule_id, to_numpy

from keras_score import noise_levels, parameterization, weighting

NAMES = ["epsilon", "x0", "v", "score", "edm"]


def noisy_batch(schedule, seed=0):
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((6, 3)).astype("float32")
    noise = rng.standard_normal((6, 3)).astype("float32")
    t = np.linspace(schedule.t_min + 0.01 * schedule.t_max, 0.9 * schedule.t_max, 6).astype("float32")
    alpha = to_numpy(schedule.alpha(t))[:, None].astype("float32")
    sigma = to_numpy(schedule.sigma(t))[:, None].astype("float32")
    arrays = (x0, noise, alpha * x0 + sigma * noise, alpha, sigma)
    return tuple(keras.ops.convert_to_tensor(a) for a in arrays)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_target_to_denoiser_round_trip(name, schedule):
    p = parameterization.get(name, sigma_data=0.7)
    x0, noise, x, alpha, sigma = noisy_batch(schedule)
    target = p.target(x0, noise, x, alpha, sigma)
    # The exact target fed through D = c_skip·x + c_out·F gives back x₀.
    np.testing.assert_allclose(to_numpy(p.denoise(x, target, alpha, sigma)), to_numpy(x0), rtol=1e-3, atol=2e-3)
    # The closed-form target equals the generic (x₀ − c_skip·x)/c_out.
    generic = parameterization.Parameterization.target(p, x0, noise, x, alpha, sigma)
    np.testing.assert_allclose(to_numpy(target), to_numpy(generic), rtol=1e-3, atol=2e-3 * np.abs(to_numpy(target)).max())


def test_edm_coefficients_match_karras_table_1():
    p = parameterization.EDMPreconditioning(sigma_data=0.5)
    sigma = np.array([0.01, 0.5, 3.0, 80.0], "float32")
    one = keras.ops.ones_like(sigma)
    sigma_t = keras.ops.convert_to_tensor(sigma)
    c_skip, c_out = (to_numpy(c) for c in p.coefficients(one, sigma_t))
    np.testing.assert_allclose(c_skip, 0.25 / (sigma**2 + 0.25), rtol=1e-5)
    np.testing.assert_allclose(c_out, sigma * 0.5 / np.sqrt(sigma**2 + 0.25), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(p.c_in(one, sigma_t)), 1 / np.sqrt(sigma**2 + 0.25), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(p.c_noise(one, sigma_t)), 0.25 * np.log(sigma), rtol=1e-5)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_weightings_reduce_to_the_known_losses(schedule):
    _, _, _, alpha_t, sigma_t = noisy_batch(schedule)
    t = np.linspace(schedule.t_min + 0.01 * schedule.t_max, 0.9 * schedule.t_max, 6).astype("float32")
    alpha, sigma = to_numpy(alpha_t), to_numpy(sigma_t)
    snr = (alpha**2 / sigma**2)[:, 0]
    # SNR weighting on the ε-parameterization is DDPM's plain ε-MSE: λ·c_out² = 1.
    _, c_out = parameterization.EpsilonPrediction().coefficients(alpha_t, sigma_t)
    np.testing.assert_allclose(to_numpy(weighting.get("snr")(t, schedule, 1.0)) * to_numpy(c_out)[:, 0] ** 2, 1.0, rtol=2e-3)
    # EDM weighting with EDM preconditioning gives unit weight on F (Karras et al. 2022, Sec. 5).
    _, c_out = parameterization.EDMPreconditioning(sigma_data=0.5).coefficients(alpha_t, sigma_t)
    np.testing.assert_allclose(to_numpy(weighting.get("edm")(t, schedule, 0.5)) * to_numpy(c_out)[:, 0] ** 2, 1.0, rtol=2e-3)
    # Likelihood weighting is g² on the score error: λ = g²·α²/σ⁴.
    g2 = to_numpy(schedule.diffusion_squared(t))
    np.testing.assert_allclose(to_numpy(weighting.get("likelihood")(t, schedule, 1.0)), g2 * snr / sigma[:, 0] ** 2, rtol=2e-3)
    np.testing.assert_allclose(to_numpy(weighting.get("min_snr")(t, schedule, 1.0)), np.minimum(snr, 5.0), rtol=2e-3)
    np.testing.assert_allclose(to_numpy(weighting.get("uniform")(t, schedule, 1.0)), 1.0)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_noise_level_distributions(schedule):
    seed = keras.random.SeedGenerator(3)
    t = to_numpy(noise_levels.UniformTime().sample(4000, schedule, seed=seed))
    assert t.min() >= schedule.t_min and t.max() <= schedule.t_max
    np.testing.assert_allclose(t.mean(), 0.5 * (schedule.t_min + schedule.t_max), rtol=0.05)
    t = to_numpy(noise_levels.LogNormalSigma(mean=-1.0, std=0.5).sample(4000, schedule, seed=seed))
    log_sigma_tilde = -0.5 * to_numpy(schedule.log_snr(t))
    inside = (t > schedule.t_min) & (t < schedule.t_max)
    if inside.mean() > 0.99:
        np.testing.assert_allclose(log_sigma_tilde.mean(), -1.0, atol=0.05)
        np.testing.assert_allclose(log_sigma_tilde.std(), 0.5, rtol=0.06)
    t = to_numpy(noise_levels.DiscreteTimes(num_steps=10).sample(4000, schedule, seed=seed))
    levels = np.maximum(np.arange(1, 11) * schedule.t_max / 10, schedule.t_min)
    assert np.all(np.min(np.abs(t[:, None] - levels[None]), axis=1) < 1e-5 * schedule.t_max)
    assert len(np.unique(np.round(t, 5))) == 10


@pytest.mark.parametrize(
    "obj",
    [parameterization.get(n, sigma_data=0.5) for n in NAMES]
    + [weighting.get(n) for n in ["snr", "likelihood", "edm", "min_snr", "uniform"]]
    + [noise_levels.get(n) for n in ["uniform", "log_normal", "discrete"]],
    ids=lambda o: type(o).__name__,
)
def test_config_round_trip(obj):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(restored) is type(obj) and restored.get_config() == obj.get_config()


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="Unknown parameterization 'eps'.*epsilon"):
        parameterization.get("eps")
    with pytest.raises(ValueError, match="Unknown weighting"):
        weighting.get("nope")
    with pytest.raises(ValueError, match="Unknown noise_distribution"):
        noise_levels.get("nope")


@pytest.mark.parametrize(
    "make, argument, kind",
    [
        (lambda value: parameterization.EDMPreconditioning(sigma_data=value), "sigma_data", "a finite number > 0.0"),
        (lambda value: parameterization.get("v", sigma_data=value), "sigma_data", "a finite number > 0.0"),
        (lambda value: weighting.MinSNRWeighting(gamma=value), "gamma", "a finite number > 0.0"),
        (lambda value: noise_levels.LogNormalSigma(mean=value), "mean", "a finite number"),
        (lambda value: noise_levels.LogNormalSigma(std=value), "std", "a finite number > 0.0"),
        (lambda value: noise_levels.DiscreteTimes(num_steps=value), "num_steps", "an integer >= 1"),
    ],
)
@pytest.mark.parametrize("value", [True, float("nan"), float("inf"), "1"], ids=["bool", "nan", "inf", "str"])
def test_bad_arguments_are_named_with_one_wording(make, argument, kind, value):
    with pytest.raises(ValueError, match=rf"^`{argument}` must be {kind}; received {argument}="):
        make(value)


def test_bounds_are_checked():
    with pytest.raises(ValueError, match=r"`num_steps` must be an integer >= 1; received num_steps=0\."):
        noise_levels.DiscreteTimes(num_steps=0)
    with pytest.raises(ValueError, match=r"received num_steps=10\.0\."):  # a float is no step count
        noise_levels.DiscreteTimes(num_steps=10.0)
    with pytest.raises(ValueError, match=r"`std` must be a finite number > 0\.0; received std=0"):
        noise_levels.LogNormalSigma(std=0)
    with pytest.raises(ValueError, match=r"`sigma_data` must be a finite number > 0\.0; received sigma_data=-0\.5"):
        parameterization.get("edm", sigma_data=-0.5)
    assert noise_levels.DiscreteTimes(num_steps=np.int64(10)).get_config() == {"num_steps": 10}
