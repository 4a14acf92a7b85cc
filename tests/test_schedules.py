"""Schedules and SDEs against the closed forms of Song et al. 2021 (Eqs. 30-34) and finite differences."""

import math

import keras
import numpy as np
import pytest
from conftest import ALL_SCHEDULES, schedule_id, to_numpy

from keras_score import schedules
from keras_score.sde import SDE


def interior_times(schedule, n=7):
    return np.linspace(schedule.t_min + 0.05 * (schedule.t_max - schedule.t_min), 0.95 * schedule.t_max, n)


def test_ve_closed_form():
    s = schedules.VESchedule(sigma_min=0.01, sigma_max=50.0)
    t = np.array([0.0, 0.3, 1.0])
    sigma = 0.01 * (50.0 / 0.01) ** t
    np.testing.assert_allclose(to_numpy(s.sigma(t)), sigma, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(s.drift_coefficient(t)), 0.0)
    # g² = dσ²/dt = 2σ² log(σ_max/σ_min).
    np.testing.assert_allclose(to_numpy(s.diffusion_squared(t)), 2 * sigma**2 * math.log(5000), rtol=1e-4)


def test_vp_closed_form():
    s = schedules.VPSchedule(beta_min=0.1, beta_max=20.0)
    t = np.array([0.01, 0.5, 1.0])
    beta = 0.1 + t * 19.9
    integral = 0.1 * t + 0.5 * t**2 * 19.9
    np.testing.assert_allclose(to_numpy(s.alpha(t)), np.exp(-0.5 * integral), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(s.sigma(t)), np.sqrt(1 - np.exp(-integral)), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(s.drift_coefficient(t)), -0.5 * beta, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(s.diffusion_squared(t)), beta, rtol=1e-4)


def test_sub_vp_closed_form():
    s = schedules.SubVPSchedule(beta_min=0.1, beta_max=20.0)
    t = np.array([0.01, 0.5, 1.0])
    beta = 0.1 + t * 19.9
    integral = 0.1 * t + 0.5 * t**2 * 19.9
    np.testing.assert_allclose(to_numpy(s.sigma(t)), 1 - np.exp(-integral), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(s.drift_coefficient(t)), -0.5 * beta, rtol=1e-5)
    # Song et al. 2021, Eq. 34: g² = β(t)(1 − e^{−2∫β}).
    np.testing.assert_allclose(
        to_numpy(s.diffusion_squared(t)), beta * (1 - np.exp(-2 * integral)), rtol=1e-4
    )


def test_edm_closed_form():
    s = schedules.EDMSchedule()
    t = np.array([0.01, 1.0, 80.0])
    np.testing.assert_allclose(to_numpy(s.sigma(t)), t, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(s.alpha(t)), 1.0)
    np.testing.assert_allclose(to_numpy(s.diffusion_squared(t)), 2 * t, rtol=1e-5)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_derivatives_match_finite_differences(schedule):
    t = interior_times(schedule)
    h = 1e-3 * (schedule.t_max - schedule.t_min)
    for value, derivative in [
        (schedule.log_alpha, schedule.dlog_alpha_dt),
        (schedule.sigma, schedule.dsigma_dt),
    ]:
        fd = (to_numpy(value(t + h)) - to_numpy(value(t - h))) / (2 * h)
        np.testing.assert_allclose(to_numpy(derivative(t)), fd, rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_marginal_variance_follows_the_sde(schedule):
    # For dx = f x dt + g dw the variance of x_t given x_0 obeys dσ²/dt = 2fσ² + g².
    t = interior_times(schedule)
    h = 1e-3 * (schedule.t_max - schedule.t_min)
    dvar = (to_numpy(schedule.sigma(t + h)) ** 2 - to_numpy(schedule.sigma(t - h)) ** 2) / (2 * h)
    rhs = 2 * to_numpy(schedule.drift_coefficient(t)) * to_numpy(schedule.sigma(t)) ** 2
    rhs += to_numpy(schedule.diffusion_squared(t))
    np.testing.assert_allclose(dvar, rhs, rtol=3e-3, atol=1e-4)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_log_snr_inverse(schedule):
    t = interior_times(schedule)
    lam = to_numpy(schedule.log_snr(t))
    assert np.all(np.diff(lam) < 0), "log-SNR must decrease in t"
    np.testing.assert_allclose(to_numpy(schedule.t_from_log_snr(lam)), t, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_sde_reverse_and_probability_flow(schedule):
    sde = SDE(schedule)
    x = keras.ops.convert_to_tensor(np.array([[1.0, -2.0], [0.5, 3.0]], "float32"))
    t = 0.5 * (schedule.t_min + schedule.t_max)
    score = lambda x, t: -x  # noqa: E731
    f = to_numpy(schedule.drift_coefficient(t))
    g2 = to_numpy(schedule.diffusion_squared(t))
    np.testing.assert_allclose(to_numpy(sde.reverse(score).drift(x, t)), f * to_numpy(x) + g2 * to_numpy(x), rtol=1e-5, atol=1e-5 * g2)
    ode = sde.reverse(score, probability_flow=True)
    np.testing.assert_allclose(to_numpy(ode.drift(x, t)), (f + 0.5 * g2) * to_numpy(x), rtol=1e-5, atol=1e-5 * g2)
    assert float(to_numpy(ode.diffusion(t))) == 0.0
    np.testing.assert_allclose(to_numpy(sde.diffusion(t)) ** 2, g2, rtol=1e-5)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_prior(schedule):
    sde = SDE(schedule)
    z = to_numpy(sde.prior_sample((20000, 2), seed=1))
    std = sde.prior_std()
    np.testing.assert_allclose(z.std(), std, rtol=0.03)
    point = np.array([[0.3, -0.1]], "float32")
    expected = -np.log(2 * np.pi * std**2) - 0.5 * np.sum(point**2) / std**2
    np.testing.assert_allclose(to_numpy(sde.prior_log_prob(keras.ops.convert_to_tensor(point))), [expected], rtol=1e-5)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=schedule_id)
def test_schedule_config_round_trip(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule) and restored.get_config() == schedule.get_config()
    sde = SDE.from_config(SDE(schedule).get_config())
    assert sde.schedule.get_config() == schedule.get_config()


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match=r"`sigma_max` must be a finite number > 1.0; received sigma_max=0.5"):
        schedules.VESchedule(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match=r"`beta_max` must be a finite number > 5.0; received beta_max=1.0"):
        schedules.VPSchedule(beta_min=5.0, beta_max=1.0)
    with pytest.raises(ValueError, match=r"`t_max` must be a finite number > 0.5; received t_max=0.5"):
        schedules.CosineSchedule(t_min=0.5, t_max=0.5)
    with pytest.raises(ValueError, match="Unknown schedule 'foo'"):
        schedules.get("foo")


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda value: schedules.VESchedule(sigma_min=value), "sigma_min"),
        (lambda value: schedules.VESchedule(sigma_max=value), "sigma_max"),
        (lambda value: schedules.VESchedule(t_max=value), "t_max"),
        (lambda value: schedules.VPSchedule(beta_min=value), "beta_min"),
        (lambda value: schedules.SubVPSchedule(beta_max=value), "beta_max"),
        (lambda value: schedules.CosineSchedule(s=value), "s"),
        (lambda value: schedules.CosineSchedule(t_min=value), "t_min"),
        (lambda value: schedules.EDMSchedule(sigma_min=value), "sigma_min"),
        (lambda value: schedules.EDMSchedule(sigma_max=value), "sigma_max"),
    ],
)
@pytest.mark.parametrize("value", [True, float("nan"), float("inf"), "1.0"], ids=["bool", "nan", "inf", "str"])
def test_schedules_reject_non_numbers_and_name_the_argument(make, argument, value):
    with pytest.raises(ValueError, match=rf"^`{argument}` must be a finite number.*; received {argument}="):
        make(value)
