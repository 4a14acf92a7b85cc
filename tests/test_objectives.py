"""Score-matching objectives against closed forms: the exact mixture score, DSM's offset, training to the exact score."""

import keras
import numpy as np
import pytest
from conftest import ExactDenoiser, to_numpy
from keras import ops

import keras_score
from keras_score import backend, objectives
from keras_score.datasets import GaussianMixture
from keras_score.denoiser import Denoiser
from keras_score.networks import MLP
from keras_score.networks.embeddings import FourierEmbedding
from keras_score.noise_levels import NoiseLevelDistribution
from keras_score.objectives import DenoisingScoreMatching, ExactScoreMatching, SlicedScoreMatching
from keras_score.schedules import VESchedule, VPSchedule

SCHEDULE = VESchedule(sigma_min=0.05, sigma_max=5.0)
RING = GaussianMixture.ring(num_components=4, radius=2.0, std=0.4)


@keras.saving.register_keras_serializable(package="keras_score_tests")
class TinyNet(keras.layers.Layer):
    """F(x, c_noise[, e]) = W₃·SiLU(W₂·SiLU(W₁x + E·fourier(c_noise) [+ C·e])): no normalisation layers, so
    twice differentiable on every backend (TensorFlow's LayerNormalization is not)."""

    def __init__(self, units=64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.embedding = FourierEmbedding(16, scale=1.0, seed=0)
        self.input_layer = keras.layers.Dense(units)
        self.embedding_layer = keras.layers.Dense(units)
        self.hidden = keras.layers.Dense(units, activation="silu")

    def build(self, input_shape):
        self.output_layer = keras.layers.Dense(input_shape[0][-1])
        if len(input_shape) == 3:
            self.condition_layer = keras.layers.Dense(self.units)

    def call(self, inputs):
        h = self.input_layer(inputs[0]) + self.embedding_layer(self.embedding(inputs[1]))
        if len(inputs) == 3:
            h = h + self.condition_layer(inputs[2])
        return self.output_layer(self.hidden(ops.silu(h)))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class FixedTime(NoiseLevelDistribution):
    """Every example at the same time t."""

    def __init__(self, t):
        self.t = t

    def sample(self, batch_size, schedule, seed=None):
        return ops.full((batch_size,), self.t, dtype="float32")


def seed(value=0):
    return keras.random.SeedGenerator(value)


def evaluate(objective, denoiser, x0, seed_value=0):
    """The objective's per-example loss with noise from a fresh `SeedGenerator(seed_value)`."""
    return objective(denoiser, x0, seed=seed(seed_value))


def mean_and_error(values):
    values = to_numpy(values)
    return values.mean(), values.std() / np.sqrt(len(values))


def network_denoiser(dim, schedule=SCHEDULE):
    keras.utils.set_random_seed(1)
    denoiser = Denoiser(TinyNet(32), schedule=schedule)
    denoiser.build((None, dim))
    return denoiser


def score_weight(weighting, t, schedule):
    """λ(t)·(σ²/α)², the weight the objectives put on the score-matching integrand (times 2/d)."""
    alpha, sigma = (float(to_numpy(f(ops.convert_to_tensor([t])))[0]) for f in (schedule.alpha, schedule.sigma))
    weight = float(to_numpy(keras_score.weighting.get(weighting)(ops.convert_to_tensor([t]), schedule, 1.0))[0])
    return weight * (sigma**2 / alpha) ** 2, alpha, sigma


# ------------------------------------------------------------------ projections


@pytest.mark.parametrize("projections", ["rademacher", "sphere", "gaussian"])
def test_projections_have_identity_second_moment(projections):
    v = to_numpy(SlicedScoreMatching(projections, num_projections=4).sample_projections((4000, 3), seed()))
    assert v.shape == (4, 4000, 3)
    flat = v.reshape(-1, 3)
    np.testing.assert_allclose(flat.T @ flat / len(flat), np.eye(3), atol=0.06)
    if projections == "rademacher":
        np.testing.assert_array_equal(np.abs(v), 1.0)
    if projections == "sphere":
        np.testing.assert_allclose(np.linalg.norm(v, axis=-1), np.sqrt(3.0), rtol=1e-5)


@pytest.mark.parametrize("projections", ["rademacher", "sphere", "gaussian"])
@pytest.mark.parametrize("variance_reduction", [False, True])
def test_many_projections_give_the_exact_trace_loss_on_a_fixed_network(projections, variance_reduction):
    denoiser = network_denoiser(3)
    x0 = ops.convert_to_tensor(GaussianMixture.ring(dim=3).sample(256, seed=0))
    # Equal seeds: both draw the same t and x_t first, then SSM draws its projections.
    exact = evaluate(ExactScoreMatching(noise_distribution="uniform"), denoiser, x0, 3)
    sliced = evaluate(SlicedScoreMatching(projections, 64, variance_reduction, noise_distribution="uniform"), denoiser, x0, 3)
    difference, error = mean_and_error(sliced - exact)
    assert abs(difference) < 4 * error, (difference, error)
    assert error < 0.1 * np.abs(to_numpy(exact)).mean()  # the projections' noise averages out


class ConditionScore:
    """s(x, t | c) = c["a"]: ½‖s‖² = ½‖a‖² and tr∇ₓs = 0, so each example's loss names its own condition."""

    schedule = SCHEDULE
    parameterization = keras_score.parameterization.get("edm")

    def score(self, x, t, condition=None, training=False):
        return condition["a"] + 0.0 * x


@pytest.mark.parametrize(
    "objective",
    [ExactScoreMatching(noise_distribution=FixedTime(0.5)), SlicedScoreMatching("gaussian", 3, True, noise_distribution=FixedTime(0.5))],
    ids=["exact", "ssm_vr"],
)
def test_every_example_keeps_its_own_condition_across_projections(objective):
    a = np.arange(12, dtype="float32").reshape(6, 2)
    weight, _, _ = score_weight("snr", 0.5, SCHEDULE)
    loss = objective(ConditionScore(), ops.zeros((6, 2)), {"a": ops.convert_to_tensor(a)}, seed())
    np.testing.assert_allclose(to_numpy(loss), weight * (2.0 / 2.0) * 0.5 * np.sum(a**2, axis=-1), rtol=1e-5)


def test_a_conditional_denoiser_trains_with_sliced_score_matching():
    keras.utils.set_random_seed(0)
    denoiser = Denoiser(TinyNet(16), schedule=SCHEDULE, conditions={"labels": {"shape": (), "dtype": "int32"}}, num_classes=4)
    denoiser.build((None, 2))
    x0, labels = RING.sample(64, seed=0, return_labels=True)
    condition = {"labels": ops.convert_to_tensor(labels, "int32"), "drop": ops.convert_to_tensor(labels == 0)}
    kwargs = {"noise_distribution": "uniform"}
    exact = ExactScoreMatching(**kwargs)(denoiser, ops.convert_to_tensor(x0), condition, seed(4))
    sliced = SlicedScoreMatching("sphere", 64, **kwargs)(denoiser, ops.convert_to_tensor(x0), condition, seed(4))
    difference, error = mean_and_error(sliced - exact)
    assert np.all(np.isfinite(to_numpy(exact))) and abs(difference) < 4 * error, (difference, error)


# ------------------------------------------------------------------ closed forms


GAUSSIAN_COVARIANCE = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, -0.1], [0.0, -0.1, 0.8]])

SCORE_MATCHING_OBJECTIVES = {
    "exact": lambda **kw: ExactScoreMatching(**kw),
    "ssm": lambda **kw: SlicedScoreMatching("rademacher", **kw),
    "ssm_vr": lambda **kw: SlicedScoreMatching("gaussian", variance_reduction=True, **kw),
    "ssm_sphere": lambda **kw: SlicedScoreMatching("sphere", num_projections=2, **kw),
}


@pytest.mark.parametrize("name", sorted(SCORE_MATCHING_OBJECTIVES))
def test_loss_of_the_exact_gaussian_score_is_minus_half_the_trace_of_the_precision(name):
    # p_t = N(αμ, C), C = α²Σ + σ²I: s = −C⁻¹(x − αμ), so E½‖s‖² = ½tr C⁻¹, tr∇s = −tr C⁻¹, J = −½tr C⁻¹.
    schedule, t = VPSchedule(), 0.3
    gaussian = GaussianMixture([[1.0, -1.0, 0.5]], GAUSSIAN_COVARIANCE[None])
    weight, alpha, sigma = score_weight("edm", t, schedule)
    precision = np.linalg.inv(alpha**2 * GAUSSIAN_COVARIANCE + sigma**2 * np.eye(3))
    expected = weight * (2.0 / 3.0) * (-0.5 * np.trace(precision))
    objective = SCORE_MATCHING_OBJECTIVES[name](weighting="edm", noise_distribution=FixedTime(t))
    x0 = ops.convert_to_tensor(gaussian.sample(8192, seed=0))
    mean, error = mean_and_error(evaluate(objective, ExactDenoiser(gaussian, schedule), x0))
    assert abs(mean - expected) < 4 * error, (mean, expected, error)


@pytest.mark.parametrize("name", sorted(SCORE_MATCHING_OBJECTIVES))
def test_exact_mixture_score_minimises_the_loss(name):
    # J(s* + c) − J(s*) = ½E‖c‖² for a constant shift c (E s* = 0), times the weight·2/d.
    t, shift = 0.5, np.array([0.3, -0.2], dtype="float32")
    weight, _, _ = score_weight("snr", t, SCHEDULE)
    objective = SCORE_MATCHING_OBJECTIVES[name](noise_distribution=FixedTime(t))
    x0 = ops.convert_to_tensor(RING.sample(8192, seed=0))
    exact = evaluate(objective, ExactDenoiser(RING, SCHEDULE), x0, 5)
    shifted = evaluate(objective, ExactDenoiser(RING, SCHEDULE, shift=ops.convert_to_tensor(shift)), x0, 5)
    excess, error = mean_and_error(shifted - exact)
    expected = weight * (2.0 / 2.0) * 0.5 * np.sum(shift**2)
    assert excess > 0 and abs(excess - expected) < 4 * error, (excess, expected, error)


@pytest.mark.parametrize("t", [0.2, 0.6])
def test_denoising_loss_exceeds_score_matching_by_a_constant_for_any_network(t):
    # Vincent (2011): ½E‖s − ∇log p(x_t|x₀)‖² = J(s) + ½E‖ε/σ‖² = J(s) + d/(2σ²); times λσ⁴/α²·2/d: λσ²/α².
    schedule = VPSchedule()
    denoiser = network_denoiser(2, schedule)
    weight, alpha, sigma = score_weight("edm", t, schedule)
    x0 = ops.convert_to_tensor(RING.sample(8192, seed=0))
    kwargs = {"weighting": "edm", "noise_distribution": FixedTime(t)}
    dsm, dsm_error = mean_and_error(evaluate(DenoisingScoreMatching(**kwargs), denoiser, x0, 1))
    sm, sm_error = mean_and_error(evaluate(ExactScoreMatching(**kwargs), denoiser, x0, 2))
    expected = weight / sigma**2
    assert abs(dsm - sm - expected) < 4 * np.hypot(dsm_error, sm_error), (dsm - sm, expected)


# ------------------------------------------------------------------ training


def fisher_divergence(model, mixture, seed=1, num_points=2048):
    """Mean over noise levels of σ²·E‖s_θ(x_t, t) − ∇log p_t(x_t)‖² at held-out perturbed points."""
    return keras_score.metrics.fisher_divergence(
        model.score, lambda x, t: mixture.score(x, t, model.schedule), mixture.sample(num_points, seed=seed),
        model.schedule, np.linspace(0.0, 1.0, 6), seed=seed,
    )


TRAINED_OBJECTIVES = {
    "dsm": lambda: DenoisingScoreMatching(weighting="snr", noise_distribution="uniform"),
    "ssm": lambda: SlicedScoreMatching(noise_distribution="uniform"),
    "ssm_vr": lambda: SlicedScoreMatching("gaussian", variance_reduction=True, noise_distribution="uniform"),
    "exact": lambda: ExactScoreMatching(noise_distribution="uniform"),
}


def train(objective, mixture, steps, units=64):
    keras.utils.set_random_seed(0)
    model = keras_score.ScoreModel(TinyNet(units), schedule=SCHEDULE, objective=objective, normalize=False, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    model.build((None, mixture.dim))
    before = fisher_divergence(model, mixture)
    model.fit(mixture.sample(256 * steps, seed=0), batch_size=256, epochs=1, verbose=0)
    return model, before, fisher_divergence(model, mixture)


@pytest.fixture(scope="module")
def trained():
    return {name: train(TRAINED_OBJECTIVES[name](), RING, steps=200) for name in ("ssm", "ssm_vr", "exact")}


@pytest.mark.parametrize("name", ["ssm", "ssm_vr", "exact"])
def test_training_brings_the_score_close_to_the_exact_one(trained, name):
    _, before, after = trained[name]
    assert after < 0.3 * before, (before, after)


def test_sliced_training_in_ten_dimensions_is_as_good_as_denoising():
    mixture = GaussianMixture.ring(num_components=4, radius=2.0, std=0.4, dim=10)
    _, _, dsm = train(TRAINED_OBJECTIVES["dsm"](), mixture, steps=200)
    _, before, ssm_vr = train(TRAINED_OBJECTIVES["ssm_vr"](), mixture, steps=200)
    assert ssm_vr < 1.5 * dsm and ssm_vr < 0.5 * before, (before, dsm, ssm_vr)


@pytest.mark.parametrize(
    "sampler, time_grid", [(keras_score.samplers.AnnealedLangevin(epsilon=2e-3), "uniform"), ("heun", "karras")]
)
def test_a_sliced_model_samples_with_any_sampler(trained, sampler, time_grid):
    model, _, _ = trained["ssm"]
    samples = model.generate(512, sampler=sampler, steps=20, time_grid=time_grid, seed=0, verbose=0)
    assert samples.shape == (512, 2) and np.all(np.isfinite(samples))
    # The samples lie where the data does: their mean log-density is close to that of true samples
    # (−2.5 here; samples collapsed to the centre of the ring would score −12.5).
    log_density = float(np.mean(to_numpy(RING.log_prob(samples))))
    assert log_density > float(np.mean(to_numpy(RING.log_prob(RING.sample(512, seed=1))))) - 0.75, log_density


# ------------------------------------------------------------------ configuration and saving


@pytest.mark.parametrize(
    "objective",
    [
        SlicedScoreMatching("sphere", 3, True, weighting="edm", noise_distribution="discrete"),
        SlicedScoreMatching(),
        ExactScoreMatching(weighting="likelihood", noise_distribution="uniform"),
    ],
    ids=["ssm_vr_sphere", "ssm", "exact"],
)
def test_objective_config_round_trip(objective):
    config = objective.get_config()
    assert type(objective).from_config(config).get_config() == config
    restored = objectives.get(keras.saving.serialize_keras_object(objective))
    assert type(restored) is type(objective) and restored.get_config() == config


def test_objectives_by_name():
    assert isinstance(objectives.get("ssm"), SlicedScoreMatching)
    assert isinstance(objectives.get("exact_sm"), ExactScoreMatching)


@pytest.mark.parametrize(
    "arguments", [{"projections": "uniform"}, {"num_projections": 0}, {"num_projections": 1.5}, {"variance_reduction": 1}]
)
def test_sliced_rejects_bad_arguments(arguments):
    with pytest.raises(ValueError, match=next(iter(arguments))):
        SlicedScoreMatching(**arguments)


@pytest.mark.parametrize("name", sorted(TRAINED_OBJECTIVES))
def test_model_with_each_objective_saves_and_loads(name, tmp_path):
    model = keras_score.ScoreModel(TinyNet(16), schedule=SCHEDULE, objective=TRAINED_OBJECTIVES[name](), normalize=False)
    model.build((None, 2))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.objective) is type(model.objective)
    assert loaded.objective.get_config() == model.objective.get_config()
    x = ops.convert_to_tensor(RING.sample(16, seed=3))
    np.testing.assert_array_equal(to_numpy(loaded.denoise(x, 0.3)), to_numpy(model.denoise(x, 0.3)))


def test_keras_normalisation_layers_are_refused_on_tensorflow_only():
    network = keras.Sequential([keras.layers.Dense(8), keras.layers.LayerNormalization(), keras.layers.Dense(2)])
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(ValueError, match="LayerNormalization"):
            SlicedScoreMatching()(Denoiser(network), ops.convert_to_tensor(RING.sample(8, seed=0)), seed=seed())
    else:
        assert backend.check_second_derivatives(network) is None
    assert backend.check_second_derivatives(Denoiser(MLP(hidden_units=16, num_blocks=1))) is None  # its LayerNorm is twice differentiable
