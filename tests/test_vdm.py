"""Variational diffusion models: the learned schedule γ(t), antithetic times and the VDM bound against exact values."""

import math

import keras
import numpy as np
import pytest
from conftest import ExactDenoiser, to_numpy
from keras import ops

from keras_score import ScoreModel, backend, noise_levels, objectives, samplers, schedules
from keras_score.datasets import GaussianMixture
from keras_score.guidance import ClassifierGuidance, GradientGuidance, Inpainting, NoisyClassifier
from keras_score.images import ImageModel
from keras_score.learned_schedules import LearnedSchedule, LinearGamma, MonotoneGamma
from keras_score.networks import MLP, Base2FourierFeatures, UNet
from keras_score.normalization import PixelScaling
from keras_score.objectives import VariationalBound
from keras_score.schedules import NoiseSchedule

RING = GaussianMixture.ring(num_components=4, radius=2.0, std=0.4)
GRID = np.linspace(0.0, 1.0, 257, dtype="float32")


def gammas():
    return [LinearGamma(-13.3, 5.0), MonotoneGamma(hidden_units=32)]


@pytest.fixture(scope="module")
def trained():
    """A class-conditional ring model with a learned schedule, trained a few steps by the VDM bound."""
    keras.utils.set_random_seed(0)
    x, components = RING.sample(1024, seed=0, return_labels=True)
    model = ScoreModel(
        MLP(hidden_units=32, num_blocks=2),
        schedule=LearnedSchedule(MonotoneGamma(hidden_units=16)),
        parameterization="epsilon",
        objective="vdm",
        num_classes=2,
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.build((None, 2))
    initial = to_numpy(model.schedule.gamma(GRID))
    history = model.fit(np.asarray(x), np.asarray(components) % 2, batch_size=128, epochs=3, verbose=0)
    return model, initial, history


@pytest.mark.parametrize("gamma", gammas(), ids=lambda g: type(g).__name__)
def test_forward_mode_derivative_equals_reverse_mode_autodiff(gamma):
    t = ops.convert_to_tensor(GRID)
    derivative = to_numpy(gamma.derivative(t))
    np.testing.assert_allclose(derivative, to_numpy(backend.gradient(gamma, t)), rtol=2e-5)
    assert np.all(derivative > 0)


@pytest.mark.parametrize("gamma", gammas(), ids=lambda g: type(g).__name__)
def test_learned_schedule_is_variance_preserving_and_inverts_its_log_snr(gamma):
    schedule = LearnedSchedule(gamma)
    t = ops.convert_to_tensor(GRID)
    np.testing.assert_allclose(to_numpy(schedule.alpha(t) ** 2 + schedule.sigma(t) ** 2), 1.0, atol=1e-6)
    np.testing.assert_allclose(to_numpy(schedule.log_snr(t)), -to_numpy(gamma(t)), rtol=1e-6)
    # The closed forms of f, g² and dλ/dt equal the base class's general formulas from α', σ'.
    for name in ("diffusion_squared", "dlog_snr_dt"):
        np.testing.assert_allclose(
            to_numpy(getattr(schedule, name)(t)), to_numpy(getattr(NoiseSchedule, name)(schedule, t)), rtol=1e-4
        )
    np.testing.assert_allclose(to_numpy(schedule.t_from_log_snr(schedule.log_snr(t))), GRID, atol=2e-6)
    ends = to_numpy(schedule.t_from_log_snr(ops.convert_to_tensor([100.0, -100.0])))
    np.testing.assert_allclose(ends, [0.0, 1.0], atol=1e-6)


def test_linear_gamma_starts_on_vdm_line_and_the_monotone_one_near_it():
    linear = to_numpy(LinearGamma(-13.3, 5.0)(GRID))
    np.testing.assert_allclose(linear, -13.3 + 18.3 * GRID, atol=1e-5)
    deviation = to_numpy(MonotoneGamma(-13.3, 5.0, hidden_units=1024)(GRID)) - linear
    assert np.max(np.abs(deviation)) < 1.0


def test_gamma_stays_monotone_for_any_weights():
    gamma = MonotoneGamma(hidden_units=64)
    gamma.build()
    rng = np.random.default_rng(0)
    gamma.set_weights([rng.normal(0, 5, w.shape).astype("float32") for w in gamma.get_weights()])
    assert np.all(np.diff(to_numpy(gamma(GRID))) > 0)


def test_gamma_trains_stays_monotone_and_fit_reports_bits_per_dim(trained):
    model, initial, history = trained
    after = to_numpy(model.schedule.gamma(GRID))
    assert np.max(np.abs(after - initial)) > 1e-3  # the schedule's weights train with the denoiser
    assert np.all(np.diff(after) > 0)
    names = {v.path.split("/")[-1] for v in model.denoiser.trainable_variables if "monotone_gamma" in v.path}
    assert names == {"w1", "b1", "w2", "b2", "w3"}
    # Continuous data: bits/dim = (nats/dim − log|det| of the standardisation per dimension)/log 2.
    log_det = model.normalizer.log_abs_det_jacobian((2,)) / 2
    for loss, bits in zip(history.history["loss"], history.history["bits_per_dim"]):
        assert bits == pytest.approx((loss - log_det) / math.log(2), rel=1e-5)


@pytest.mark.parametrize("sampler", sorted(set(samplers.SAMPLERS) - {"annealed_langevin"}))
def test_every_sampler_runs_with_a_learned_schedule(trained, sampler):
    model = trained[0]
    samples = model.generate(32, sampler=sampler, steps=3, seed=0, labels=np.zeros(32, "int32"), guidance_scale=2.0)
    assert samples.shape == (32, 2) and np.all(np.isfinite(samples))


def test_guidance_and_likelihood_work_with_a_learned_schedule(trained):
    model = trained[0]
    inpainted = model.generate(16, sampler="euler", steps=8, seed=0, guidance=Inpainting(np.array([1.5, np.nan])))
    np.testing.assert_allclose(inpainted[:, 0], 1.5, atol=1e-4)
    posterior = GradientGuidance(lambda x0: -50.0 * ops.square(x0[:, 0] - 1.0), through_denoiser=True)  # DPS
    guided = model.generate(16, sampler="euler", steps=8, seed=0, guidance=posterior)
    assert guided.shape == (16, 2) and np.all(np.isfinite(guided))
    log_prob = to_numpy(model.log_prob(np.asarray(RING.sample(8, seed=2))))
    assert log_prob.shape == (8,) and np.all(np.isfinite(log_prob))


def test_save_and_load_keep_the_learned_schedule(trained, tmp_path):
    model = trained[0]
    model.save(tmp_path / "vdm.keras")
    loaded = keras.saving.load_model(tmp_path / "vdm.keras")
    assert isinstance(loaded.schedule, LearnedSchedule) and isinstance(loaded.objective, VariationalBound)
    np.testing.assert_array_equal(to_numpy(loaded.schedule.gamma(GRID)), to_numpy(model.schedule.gamma(GRID)))
    kwargs = dict(sampler="dpmpp_2m", steps=6, seed=3, labels=np.ones(16, "int32"))
    np.testing.assert_allclose(loaded.generate(16, **kwargs), model.generate(16, **kwargs), atol=1e-5)


@pytest.mark.parametrize(
    "schedule",
    [LearnedSchedule(LinearGamma()), LearnedSchedule(MonotoneGamma(hidden_units=64))],
    ids=["linear", "monotone"],
)
def test_bound_of_the_exact_denoiser_is_the_exact_negative_log_density(schedule):
    """E[ELBO loss] ≥ −log p(x), and above it by no more than the endpoint gaps, with the exact mixture denoiser.

    The gaps: the prior's KL(q(x₁ | x) ‖ N(0, σ₁²)) = ½·e^{−γ_max}·E‖x‖² ≈ 0.014 nats and the Gaussian
    decoder's at σ₀/α₀ = e^{γ_min/2} ≈ 1e-3 (negligible); the tolerance is 0.05 nats plus 3 standard errors
    of the Monte Carlo mean over 400,000 examples (the ε-error at low noise makes each draw's loss vary by
    about 16 nats).
    """
    objective = VariationalBound()
    denoiser = ExactDenoiser(RING, schedule)
    gaps = []
    for seed in range(4):
        x0 = ops.convert_to_tensor(np.asarray(RING.sample(100_000, seed=seed), "float32"))
        loss = to_numpy(objective(denoiser, x0, seed=keras.random.SeedGenerator(seed))) * 2  # nats per example
        gaps.append(loss + to_numpy(RING.log_prob(x0)))
    gaps = np.concatenate(gaps)
    mean, error = gaps.mean(), gaps.std() / np.sqrt(len(gaps))
    assert -3 * error <= mean <= 0.05 + 3 * error, (mean, error)


def test_discrete_reconstruction_is_the_categorical_decoder():
    """VDM's decoder against a NumPy Monte Carlo of −log softmax(−½e^{λ₀}(x + e^{−λ₀/2}ε − x_k)²) at x's level."""
    levels, schedule = 5, LearnedSchedule(LinearGamma(gamma_min=-1.0, gamma_max=5.0))
    objective = VariationalBound(levels=levels)
    values = np.linspace(-1, 1, levels)
    x0 = np.tile(values, 4000).reshape(-1, 1).astype("float32")
    recon = to_numpy(objective.reconstruction(schedule, ops.convert_to_tensor(x0), keras.random.SeedGenerator(0)))
    log_snr = 1.0
    z = x0 + math.exp(-0.5 * log_snr) * np.random.default_rng(0).standard_normal(x0.shape)
    logits = -0.5 * math.exp(log_snr) * (z - values) ** 2
    log_probs = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    expected = -log_probs[np.arange(len(x0)), np.rint((x0[:, 0] + 1) * 2).astype(int)]
    assert recon.mean() == pytest.approx(expected.mean(), abs=4 * expected.std() / np.sqrt(len(x0)))
    sharp = VariationalBound(levels=17).reconstruction(LearnedSchedule(LinearGamma()), ops.convert_to_tensor(x0[:8]))
    assert np.max(to_numpy(sharp)) < 1e-6  # at γ₀ = −13.3 the 17 levels are told apart exactly


def test_discrete_images_report_bits_per_dim_of_the_levels():
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).integers(0, 4, (64, 4, 4, 1)).astype("uint8")
    model = ScoreModel(
        MLP(hidden_units=16, num_blocks=1),
        schedule=LearnedSchedule(LinearGamma()),
        parameterization="epsilon",
        normalize=PixelScaling(4),
        objective=VariationalBound(levels=4),
        seed=0,
    )
    model.compile(optimizer="adam")
    history = model.fit(images.reshape(64, 16), epochs=1, batch_size=32, verbose=0).history
    assert history["bits_per_dim"][0] == pytest.approx(history["loss"][0] / math.log(2), rel=1e-5)
    assert history["bits_per_dim"][0] > 0  # a probability of discrete data is at most 1


def test_image_model_passes_its_levels_to_the_vdm_bound():
    model = ImageModel(UNet(channels=8, channel_multipliers=(1,)), levels=17, schedule="learned", objective="vdm")
    assert model.objective.levels == 17 and (model.objective.low, model.objective.high) == (-1.0, 1.0)


def test_antithetic_times_are_uniform_and_evenly_spread():
    schedule = schedules.get("vp")
    t = to_numpy(noise_levels.get("antithetic").sample(64, schedule, seed=keras.random.SeedGenerator(1)))
    fraction = np.sort((t - schedule.t_min) / (schedule.t_max - schedule.t_min))
    np.testing.assert_allclose(np.diff(fraction), 1 / 64, atol=1e-5)
    assert 0 <= fraction[0] < 1 / 64


def test_configs_round_trip_and_bad_arguments_are_named():
    for obj in (VariationalBound(levels=17, antithetic=False), LearnedSchedule(LinearGamma(-10.0, 4.0))):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert type(restored) is type(obj)
    restored = schedules.get(keras.saving.serialize_keras_object(LearnedSchedule(MonotoneGamma(-8.0, 3.0, 12))))
    assert restored.gamma.get_config()["hidden_units"] == 12 and restored.gamma.gamma_min == -8.0
    assert isinstance(objectives.get("vdm"), VariationalBound) and isinstance(schedules.get("learned"), LearnedSchedule)
    for make, name in [
        (lambda: VariationalBound(levels=1), "levels"),
        (lambda: VariationalBound(low=1.0, high=-1.0), "high"),
        (lambda: LinearGamma(5.0, -13.3), "gamma_max"),
        (lambda: MonotoneGamma(hidden_units=0), "hidden_units"),
        (lambda: LearnedSchedule("cosine"), "gamma"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            make()


def test_base2_fourier_features_are_vdm_s_and_networks_take_them():
    z = np.random.default_rng(0).uniform(-1, 1, (3, 2)).astype("float32")
    features = to_numpy(Base2FourierFeatures(6, 8)(ops.convert_to_tensor(z)))
    angles = z[:, :, None] * (2.0 ** np.arange(6, 8) * 2 * np.pi)
    expected = np.concatenate([np.sin(angles).reshape(3, 4), np.cos(angles).reshape(3, 4)], -1)
    np.testing.assert_allclose(features, expected, atol=1e-4)
    for network, x in [
        (MLP(hidden_units=8, num_blocks=1, input_fourier_features=(6, 8)), ops.zeros((2, 3))),
        (
            UNet(channels=8, channel_multipliers=(1,), blocks_per_level=1, input_fourier_features=(6, 8)),
            ops.zeros((2, 4, 4, 1)),
        ),
    ]:
        assert network((x, ops.zeros((2,)))).shape == x.shape
        restored = type(network).from_config(network.get_config())
        assert restored.get_config()["input_fourier_features"] == [6, 8, 1]
    with pytest.raises(ValueError, match="`input_fourier_features`"):
        MLP(input_fourier_features="high")


def test_classifier_guidance_with_a_frozen_copy_of_the_learned_schedule(trained, tmp_path):
    model = trained[0]
    x, components = RING.sample(512, seed=5, return_labels=True)
    classifier = NoisyClassifier.for_model(model, MLP(hidden_units=16, num_blocks=1, output_units=2), 2, seed=0)
    with model.swap_ema_weights():
        expected = to_numpy(model.schedule.gamma(GRID))
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    classifier.fit(np.asarray(x), np.asarray(components) % 2, batch_size=128, epochs=1, verbose=0)
    np.testing.assert_array_equal(to_numpy(classifier.schedule.gamma(GRID)), expected)  # frozen: not trained
    guided = model.generate(
        16,
        sampler="euler",
        steps=4,
        seed=0,
        labels=np.ones(16, "int32"),
        guidance=ClassifierGuidance(classifier, scale=2.0),
    )
    assert guided.shape == (16, 2) and np.all(np.isfinite(guided))
    classifier.save(tmp_path / "classifier.keras")
    loaded = keras.saving.load_model(tmp_path / "classifier.keras")
    np.testing.assert_array_equal(to_numpy(loaded.schedule.gamma(GRID)), expected)
    assert loaded.schedule.signature() == model.schedule.signature()
