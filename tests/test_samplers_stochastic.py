"""Predictor-corrector, ancestral, DDIM and Langevin samplers driven by the exact mixture denoiser."""

import json

import keras
import numpy as np
import pytest
from conftest import to_numpy
from test_samplers import MIXTURE, assert_matches_mixture, draw, exact_denoiser

from keras_score import backend, samplers, schedules
from keras_score.datasets import GaussianMixture
from keras_score.samplers.ddim import DDIM
from keras_score.samplers.langevin import AnnealedLangevin, Langevin, LangevinCorrector
from keras_score.samplers.predictor_corrector import (
    AncestralSamplingPredictor,
    DDPMAncestral,
    NullCorrector,
    NullPredictor,
    PredictorCorrector,
    ReverseDiffusionPredictor,
)

VE = schedules.VESchedule(sigma_min=0.01, sigma_max=20.0)


@pytest.mark.parametrize(
    "sampler, schedule, steps, grid",
    [
        (PredictorCorrector(corrector="none"), schedules.VPSchedule(), 150, "uniform"),
        (PredictorCorrector(corrector="langevin", snr=0.16), VE, 50, "uniform"),
        (DDPMAncestral(), schedules.VPSchedule(), 100, "uniform"),
        (DDIM(eta=1.0), VE, 128, "uniform"),
        (DDIM(eta=0.0), schedules.VPSchedule(), 100, "uniform"),
        (AnnealedLangevin(epsilon=5e-3, num_steps_per_level=4), schedules.VESchedule(0.1, 10.0), 50, "uniform"),
    ],
    ids=["reverse-diffusion-vp", "pc-langevin-ve", "ddpm-vp", "ddim-eta1-ve", "ddim-eta0-vp", "annealed-langevin-ve"],
)
def test_exact_denoiser_reproduces_the_mixture(sampler, schedule, steps, grid):
    # 6000 samples: the lightest component (weight 1/36) then has about 170.
    assert_matches_mixture(draw(sampler, schedule, n=6000, steps=steps, grid=grid))


# Song & Ermon (2019), Sec. 3.2.2: two far-apart modes with weights 0.8 / 0.2.
TWO_MODES = GaussianMixture([[5.0, 5.0], [-5.0, -5.0]], 1.0, [0.8, 0.2])


def first_mode_frequency(sampler, steps, n=2000):
    schedule = schedules.VESchedule(sigma_min=0.5, sigma_max=10.0)
    prior = samplers.initial_noise(n, (2,), 0) * 10.0  # broad: half the samples start nearer each mode
    x = sampler.sample(exact_denoiser(schedule, TWO_MODES), prior, schedule, steps=steps, time_grid="uniform")
    labels = np.argmax(to_numpy(TWO_MODES.posterior_probs(x)), axis=1)
    return np.mean(labels == 0)


def test_plain_langevin_gets_the_weights_wrong_and_annealed_langevin_right():
    plain = first_mode_frequency(Langevin(step_size=0.1), steps=100)
    annealed = first_mode_frequency(AnnealedLangevin(epsilon=0.0625, num_steps_per_level=8), steps=40)
    assert abs(plain - 0.8) > 0.15, plain
    assert abs(annealed - 0.8) < 0.05, annealed


def test_ddim_eta0_converges_to_the_probability_flow():
    schedule = schedules.VPSchedule()
    reference = draw(samplers.Heun(), schedule, n=64, steps=128)
    errors = [np.abs(draw(DDIM(0.0), schedule, n=64, steps=s) - reference).mean() for s in (10, 50)]
    assert errors[1] < errors[0] / 3, errors


def coefficients(schedule, t, s):
    return [float(to_numpy(f(u))) for f, u in ((schedule.alpha, t), (schedule.sigma, t), (schedule.alpha, s), (schedule.sigma, s))]


def one_step(sampler, schedule, x, t, s, n=20000):
    """n samples of one sampler step from the point x at time t to time s."""
    x_init = np.repeat(x[None], n, axis=0)
    return to_numpy(sampler.sample(exact_denoiser(schedule), x_init, schedule, time_grid=[t, s], seed=3))


X = np.array([1.5, -2.5], "float32")


def test_one_ddim_eta1_step_is_the_ancestral_posterior():
    schedule, t, s = schedules.VPSchedule(), 0.4, 0.25
    alpha_t, sigma_t, alpha_s, sigma_s = coefficients(schedule, t, s)
    # q(x_s | x_t, x₀ = D) (Ho et al. 2020, Eqs. 6-7): a = α_t/α_s, b = σ_t² − a²σ_s².
    a = alpha_t / alpha_s
    b = sigma_t**2 - a**2 * sigma_s**2
    denoised = to_numpy(MIXTURE.denoise(X[None], t, schedule))[0]
    mean = a * sigma_s**2 / sigma_t**2 * X + alpha_s * b / sigma_t**2 * denoised
    variance = b * sigma_s**2 / sigma_t**2
    samples = one_step(DDIM(1.0), schedule, X, t, s)
    np.testing.assert_allclose(samples.mean(0), mean, atol=4 * np.sqrt(variance / len(samples)))
    np.testing.assert_allclose(samples.var(0), variance, rtol=0.05)
    # The ancestral predictor writes the same step as Ho et al.'s posterior: equal on the same noise.
    ancestral = PredictorCorrector("ancestral_sampling", "none", final_denoise=False)
    np.testing.assert_allclose(one_step(ancestral, schedule, X, t, s, n=8), samples[:8], rtol=1e-4, atol=1e-4)


def test_one_ddim_step_with_eta():
    """DDIM, Eq. 12 with σ(η) of Eq. 16, on VE: x_s = D + sqrt(σ_s² − c²)·ε̂ + c·z."""
    schedule, t, s, eta = VE, 0.6, 0.4, 0.5
    _, sigma_t, _, sigma_s = coefficients(schedule, t, s)
    denoised = to_numpy(MIXTURE.denoise(X[None], t, schedule))[0]
    c2 = eta**2 * sigma_s**2 * (1 - sigma_s**2 / sigma_t**2)
    mean = denoised + np.sqrt(sigma_s**2 - c2) * (X - denoised) / sigma_t
    samples = one_step(DDIM(eta), schedule, X, t, s)
    np.testing.assert_allclose(samples.mean(0), mean, atol=4 * np.sqrt(c2 / len(samples)))
    np.testing.assert_allclose(samples.var(0), c2, rtol=0.05)


def test_one_reverse_diffusion_step():
    schedule, t, s = schedules.VPSchedule(), 0.5, 0.45
    alpha_t, sigma_t, alpha_s, sigma_s = coefficients(schedule, t, s)
    a = alpha_t / alpha_s  # sqrt(1 − β) of the step
    b = sigma_t**2 - a**2 * sigma_s**2  # β
    score = to_numpy(MIXTURE.score(X[None], t, schedule))[0]
    samples = one_step(PredictorCorrector("reverse_diffusion", "none", final_denoise=False), schedule, X, t, s)
    np.testing.assert_allclose(samples.mean(0), (2 - a) * X + b * score, atol=4 * np.sqrt(b / len(samples)))
    np.testing.assert_allclose(samples.var(0), b, rtol=0.05)


def test_langevin_corrector_step_follows_the_snr_rule():
    """One corrector step, recomputed from the same noise draw: ε = 2α_i(r·mean‖z‖/mean‖g‖)²."""
    schedule = schedules.VPSchedule()
    t, s, snr = 0.3, 0.2, 0.2
    x = MIXTURE.sample(64, seed=0) * 0.8
    sampler = PredictorCorrector("none", LangevinCorrector(snr=snr), final_denoise=False)
    out = to_numpy(sampler.sample(exact_denoiser(schedule), x, schedule, time_grid=[t, s], seed=5))
    # The corrector of step 0 draws noise(1): counter 0·16 + 1.
    z = to_numpy(backend.stateless_normal(x.shape, keras.ops.convert_to_tensor(5, "int32"), 1, "float32"))
    g = to_numpy(MIXTURE.score(x, t, schedule))
    alpha_step = float(to_numpy(schedule.alpha(t) / schedule.alpha(s))) ** 2
    step = 2 * alpha_step * (snr * np.linalg.norm(z, axis=1).mean() / np.linalg.norm(g, axis=1).mean()) ** 2
    np.testing.assert_allclose(out, x + step * g + np.sqrt(2 * step) * z, rtol=1e-4, atol=1e-4)


def test_final_denoise():
    """On a grid ending at σ > 0, `final_denoise` returns D(x, t) at the time t of the last state."""
    x = samplers.initial_noise(16, (2,), 0) * 20.0
    times = samplers.time_grid(VE, 5, "uniform")
    for predictor, t_last in (("ancestral_sampling", times[-1]), ("none", times[-2])):
        noisy, denoised = (
            to_numpy(PredictorCorrector(predictor, "none", final_denoise=flag).sample(exact_denoiser(VE), x, VE, time_grid=times))
            for flag in (False, True)
        )
        np.testing.assert_allclose(denoised, to_numpy(MIXTURE.denoise(noisy, t_last, VE)), rtol=1e-4, atol=1e-4)


def test_annealed_langevin_lands_at_sigma_zero():
    # EDM grids end at σ = 0: the last step is the denoising step from t_{N−1}.
    sampler = AnnealedLangevin(epsilon=2e-6, num_steps_per_level=4)  # ε/σ_L² = 0.5 with σ_L = 0.002
    x = draw(sampler, schedules.EDMSchedule(), n=200, steps=50, grid="log_snr")
    assert np.all(np.isfinite(x))
    radius = np.linalg.norm(x, axis=1)
    assert np.mean(np.abs(radius - 4.0) < 1.5) > 0.95, radius


def test_function_evaluations():
    assert DDIM(0.3).num_function_evals(10) == 10
    assert DDPMAncestral().num_function_evals(10, ends_at_zero=True) == 10
    assert DDPMAncestral().num_function_evals(10, ends_at_zero=False) == 11
    assert PredictorCorrector(corrector_steps=2).num_function_evals(10, ends_at_zero=True) == 30
    assert PredictorCorrector("none", "langevin").num_function_evals(10, ends_at_zero=True) == 11
    assert Langevin(num_steps_per_level=3).num_function_evals(10) == 30
    assert AnnealedLangevin(num_steps_per_level=4).num_function_evals(10, ends_at_zero=False) == 41
    assert AnnealedLangevin(num_steps_per_level=4, final_denoise=False).num_function_evals(10, ends_at_zero=True) == 36


def test_stochastic_flags():
    assert not DDIM(0.0).stochastic and DDIM(0.1).stochastic
    assert PredictorCorrector().stochastic and DDPMAncestral().stochastic
    assert not PredictorCorrector("none", "none").stochastic
    assert Langevin().stochastic and AnnealedLangevin().stochastic


ALL = [
    DDIM(eta=0.3),
    DDPMAncestral(final_denoise=False),
    PredictorCorrector("ancestral_sampling", LangevinCorrector(snr=0.1, num_steps=3), final_denoise=False),
    PredictorCorrector(ReverseDiffusionPredictor(), "none"),
    PredictorCorrector(NullPredictor(), "langevin", corrector_steps=2, snr=0.05),
    Langevin(step_size=0.05, num_steps_per_level=4),
    AnnealedLangevin(epsilon=1e-4, num_steps_per_level=3, final_denoise=False),
]


@pytest.mark.parametrize("sampler", ALL, ids=lambda s: type(s).__name__)
def test_config_round_trip(sampler):
    config = keras.saving.serialize_keras_object(sampler)
    json.dumps(config)  # ScoreModel.generate keys its compiled samplers on it
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(sampler)
    assert keras.saving.serialize_keras_object(restored) == config
    assert restored.num_function_evals(7, False) == sampler.num_function_evals(7, False)


def test_predictor_corrector_parts_round_trip():
    sampler = PredictorCorrector(NullPredictor(), NullCorrector())
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sampler))
    assert isinstance(restored.predictor, NullPredictor) and isinstance(restored.corrector, NullCorrector)
    from_dict = PredictorCorrector(keras.saving.serialize_keras_object(AncestralSamplingPredictor()))
    assert isinstance(from_dict.predictor, AncestralSamplingPredictor)


def test_errors():
    with pytest.raises(ValueError, match="`eta` must be a finite number >= 0.0 and <= 1.0"):
        DDIM(eta=1.5)
    with pytest.raises(ValueError, match="`eta`"):
        DDIM(eta=-0.1)
    with pytest.raises(ValueError, match="annealed_langevin needs a schedule with α\\(t\\) = 1 \\(VE or EDM\\); received VPSchedule"):
        draw(AnnealedLangevin(), schedules.VPSchedule(), n=4, steps=3)
    with pytest.raises(ValueError, match="`epsilon`=2e-05 diverges .* needs epsilon < 4·σ_L² = 1.6e-05"):
        draw(AnnealedLangevin(epsilon=2e-5), schedules.EDMSchedule(), n=4, steps=3)
    with pytest.raises(ValueError, match="`step_size` must be a finite number > 0"):
        Langevin(step_size=0.0)
    with pytest.raises(ValueError, match="`num_steps_per_level` must be an integer >= 1 and <= 16"):
        AnnealedLangevin(num_steps_per_level=17)
    with pytest.raises(ValueError, match="`epsilon`"):
        AnnealedLangevin(epsilon=-1.0)
    with pytest.raises(ValueError, match="`num_steps` must be an integer >= 1 and <= 15"):
        LangevinCorrector(num_steps=0)
    with pytest.raises(ValueError, match="`snr`"):
        PredictorCorrector(snr=0.0)
    with pytest.raises(ValueError, match="`corrector_steps` and `snr` configure corrector='langevin'"):
        PredictorCorrector(corrector=LangevinCorrector(), snr=0.1)
    with pytest.raises(ValueError, match="`corrector_steps` and `snr`"):
        PredictorCorrector(corrector="none", corrector_steps=2)
    with pytest.raises(ValueError, match="Unknown predictor 'euler'"):
        PredictorCorrector(predictor="euler")
    with pytest.raises(ValueError, match="`final_denoise` must be True or False"):
        PredictorCorrector(final_denoise="yes")
