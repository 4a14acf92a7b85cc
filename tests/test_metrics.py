"""Sample-quality metrics: closed forms, unbiasedness, batching, configs and errors."""

import keras
import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import pdist

from keras_score import datasets
from keras_score import metrics
from keras_score.metrics import (
    ClassifierFeatures,
    FrechetDistance,
    InceptionScore,
    InceptionV3Features,
    KernelDistance,
    MaximumMeanDiscrepancy,
    SlicedWassersteinDistance,
    frechet_distance,
    kernel_distance,
    maximum_mean_discrepancy,
    sliced_wasserstein_distance,
)


def closed_form_fid(mu1, cov1, mu2, cov2):
    root1 = scipy.linalg.sqrtm(cov1).real
    middle = scipy.linalg.sqrtm(root1 @ cov2 @ root1).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(middle))


def random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def fid_of(real, generated, batch_size=None):
    metric = FrechetDistance(feature_extractor=None)
    batch_size = batch_size or max(len(real), len(generated))
    for start in range(0, max(len(real), len(generated)), batch_size):
        metric.update_state(real[start : start + batch_size], generated[start : start + batch_size])
    return float(metric.result())


@pytest.fixture(scope="module")
def digits_split():
    images, labels = datasets.load_digits(return_labels=True)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order], labels[order]


@pytest.fixture(scope="module")
def digits_model(digits_split):
    images, labels = digits_split
    return metrics.train_digits_classifier(images[:1400], labels[:1400], epochs=10, seed=0)


# Fréchet distance (FID)


def test_frechet_distance_function_matches_scipy_closed_form():
    rng = np.random.default_rng(0)
    for d in (1, 3, 8):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        cov1, cov2 = random_covariance(rng, d), random_covariance(rng, d)
        expected = closed_form_fid(mu1, cov1, mu2, cov2)
        # float32 eigendecompositions: relative error ~1e-5 of the traces.
        assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-4, abs=1e-4)
        assert frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0.0, abs=1e-4 * np.trace(cov1))


def test_fid_metric_matches_closed_form_of_sample_moments_and_of_population():
    rng = np.random.default_rng(1)
    d = 4
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    cov1, cov2 = random_covariance(rng, d), random_covariance(rng, d)
    real = rng.multivariate_normal(mu1, cov1, size=20_000)
    generated = rng.multivariate_normal(mu2, cov2, size=20_000)
    value = fid_of(real, generated, batch_size=5_000)
    sample_moments = closed_form_fid(real.mean(0), np.cov(real.T), generated.mean(0), np.cov(generated.T))
    assert value == pytest.approx(sample_moments, rel=1e-4)
    # Sampling error of 20,000 draws: a few hundredths on a value of order 1 to 10.
    assert value == pytest.approx(closed_form_fid(mu1, cov1, mu2, cov2), rel=0.03, abs=0.02)


def test_fid_of_a_set_with_itself_is_zero_and_batching_does_not_matter():
    features = np.random.default_rng(2).normal(size=(600, 16))
    assert abs(fid_of(features, features)) < 1e-4
    other = features[::-1] * 1.5 + 0.3
    one_batch = fid_of(features, other)
    assert one_batch > 1.0
    assert fid_of(features, other, batch_size=64) == pytest.approx(one_batch, rel=1e-4)


def test_fid_is_accurate_in_float32_for_features_far_from_the_origin():
    rng = np.random.default_rng(3)
    real, generated = rng.normal(size=(2_000, 8)), rng.normal(size=(2_000, 8)) * 1.2
    reference = fid_of(real, generated)
    assert fid_of(real + 1_000.0, generated + 1_000.0, batch_size=100) == pytest.approx(reference, rel=1e-3, abs=1e-3)


def test_fid_reset_state_and_one_sided_updates():
    rng = np.random.default_rng(4)
    real, generated = rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 1.0
    metric = FrechetDistance(feature_extractor=None)
    metric.update_state(rng.normal(size=(50, 3)) * 5, rng.normal(size=(50, 3)))
    metric.reset_state()
    metric.update_state(real)
    metric.update_state(generated=generated)
    assert float(metric.result()) == pytest.approx(fid_of(real, generated), rel=1e-5)
    mean, covariance = metric.statistics("real")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(covariance), np.cov(real.T), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mean), real.mean(0), atol=1e-5)


def test_fid_works_as_a_compiled_metric_in_model_evaluate():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(256, 3)).astype("float32")
    y = rng.normal(size=(256, 3)).astype("float32") + 2.0
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    model.compile(loss="mse", metrics=[FrechetDistance(feature_extractor=None)])
    logs = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    expected = fid_of(y, keras.ops.convert_to_numpy(model.predict(x, verbose=0)))
    assert logs["frechet_distance"] == pytest.approx(expected, rel=1e-3)


# Maximum mean discrepancy


def test_mmd_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(6)
    same = [maximum_mean_discrepancy(rng.normal(size=(200, 2)), rng.normal(size=(200, 2))) for _ in range(50)]
    # Unbiased: the mean over independent draws is within 3 standard errors of 0.
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    shifted = maximum_mean_discrepancy(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1.0)
    assert shifted > 10 * np.std(same)


def test_mmd_median_heuristic_and_explicit_bandwidth():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.5
    median = np.median(pdist(np.concatenate([x, y])))
    assert metrics.median_heuristic(x, y) == pytest.approx(median)
    assert maximum_mean_discrepancy(x, y) == pytest.approx(maximum_mean_discrepancy(x, y, bandwidth=median))
    k = lambda a, b: np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * 0.7**2))
    kxx, kyy = k(x, x), k(y, y)
    expected = (
        (kxx.sum() - np.trace(kxx)) / (40 * 39) + (kyy.sum() - np.trace(kyy)) / (30 * 29) - 2 * k(x, y).mean()
    )
    assert maximum_mean_discrepancy(x, y, bandwidth=0.7) == pytest.approx(expected)


def test_mmd_and_swd_metrics_equal_their_functions_over_batches():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(120, 2)), rng.normal(size=(90, 2)) + 0.5
    for metric, function in (
        (MaximumMeanDiscrepancy(), maximum_mean_discrepancy),
        (SlicedWassersteinDistance(num_projections=64, seed=3), lambda a, b: sliced_wasserstein_distance(a, b, 64, 3)),
    ):
        metric.update_state(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)))
        metric.reset_state()
        for i in range(3):
            metric.update_state(x[40 * i : 40 * (i + 1)], y[30 * i : 30 * (i + 1)])
        # The metrics see the features in float32.
        assert float(metric.result()) == pytest.approx(function(x.astype("float32"), y.astype("float32")), rel=1e-6)


# Kernel distance (KID)


def test_kid_is_unbiased_for_identical_distributions_and_positive_for_a_shift():
    rng = np.random.default_rng(9)
    draws = [
        kernel_distance(rng.normal(size=(50, 4)), rng.normal(size=(50, 4)), num_subsets=1, subset_size=50)
        for _ in range(200)
    ]
    assert abs(np.mean(draws)) < 3 * np.std(draws) / np.sqrt(len(draws))
    shifted = kernel_distance(rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 1.0, num_subsets=1, subset_size=50)
    assert shifted > 10 * np.std(draws) / np.sqrt(len(draws))


def test_kid_metric_mean_std_batches_and_reset():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) * 1.3
    metric = KernelDistance(num_subsets=20, subset_size=100, seed=1, feature_extractor=None)
    metric.update_state(rng.normal(size=(100, 5)), rng.normal(size=(100, 5)))
    metric.reset_state()
    for start in range(0, 300, 100):
        metric.update_state(x[start : start + 100], y[start : start + 100])
    estimates = metrics.kernel_distance_subsets(x, y, num_subsets=20, subset_size=100, seed=1)
    assert float(metric.result()) == pytest.approx(estimates.mean(), rel=1e-6)
    assert float(metric.std()) == pytest.approx(estimates.std(), rel=1e-6)
    assert float(metric.result()) > 3 * float(metric.std()) / np.sqrt(20)


# Inception Score


def test_inception_score_of_constant_and_of_confident_uniform_predictions():
    constant = np.tile([[0.1, 0.6, 0.3]], (90, 1))
    confident = np.eye(10)[np.arange(200) % 10] * 0.999 + 0.001 / 10
    metric = InceptionScore(classifier=None, num_splits=5)
    metric.update_state(constant)
    assert float(metric.result()) == pytest.approx(1.0, abs=1e-6)
    assert float(metric.std()) == pytest.approx(0.0, abs=1e-6)
    metric.reset_state()
    for start in range(0, 200, 50):
        metric.update_state(confident[start : start + 50])
    assert float(metric.result()) == pytest.approx(10.0, rel=0.02)
    assert metrics.inception_score_splits(np.eye(10), num_splits=1)[0] == pytest.approx(10.0)


# Feature extractors and the digits classifier


def test_digits_classifier_accuracy_and_fid_of_real_halves_versus_noise(digits_split, digits_model):
    images, labels = digits_split
    probabilities = keras.ops.convert_to_numpy(digits_model.predict(images[1400:], verbose=0))
    assert np.mean(probabilities.argmax(1) == labels[1400:]) > 0.9
    extractor = ClassifierFeatures(digits_model)
    assert tuple(extractor(images[:5]).shape) == (5, 64)
    halves = FrechetDistance(feature_extractor=extractor)
    halves.update_state(images[:800], images[800:1600])
    noise = FrechetDistance(feature_extractor=extractor)
    noise.update_state(images[:800], np.random.default_rng(11).uniform(-1, 1, images[:800].shape).astype("float32"))
    assert 20 * float(halves.result()) < float(noise.result())
    score = InceptionScore(classifier=digits_model, num_splits=2)
    score.update_state(images[:1000])
    assert float(score.result()) > 8.0


def test_inception_v3_features_run_resize_and_network_on_a_tiny_batch():
    if keras.backend.backend() == "jax":
        pytest.skip("Building InceptionV3 op by op takes about 90 s on a CPU with JAX; TensorFlow and torch check it.")
    extractor = InceptionV3Features(weights=None, value_range=(0, 255))
    grayscale = np.random.default_rng(12).integers(0, 256, size=(2, 8, 8)).astype("float32")
    features = keras.ops.convert_to_numpy(extractor(grayscale))
    assert features.shape == (2, 2048) and np.all(np.isfinite(features))


def test_missing_inception_weights_give_a_clear_error_at_first_use_only(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] no network")

    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    fid, kid, score = FrechetDistance(), KernelDistance(), InceptionScore()
    images = np.zeros((2, 8, 8, 1), "float32")
    for metric, arguments in ((fid, (images, images)), (kid, (images,)), (score, (images,))):
        with pytest.raises(RuntimeError, match="weights.*feature_extractor"):
            metric.update_state(*arguments)


# Configs and errors


def test_metrics_round_trip_through_config(digits_model):
    for metric in (
        FrechetDistance(),
        FrechetDistance(feature_extractor=InceptionV3Features(weights=None, value_range=(0, 255)), name="fid"),
        KernelDistance(num_subsets=7, subset_size=30, seed=2, feature_extractor=None),
        InceptionScore(classifier=None, num_splits=3),
        MaximumMeanDiscrepancy(bandwidth=0.5),
        SlicedWassersteinDistance(num_projections=12, seed=4),
        SlicedWassersteinDistance(feature_extractor=ClassifierFeatures(digits_model, layer="features")),
    ):
        config = keras.saving.serialize_keras_object(metric)
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(metric)
        assert restored.get_config() == metric.get_config()
    restored = SlicedWassersteinDistance.from_config(
        SlicedWassersteinDistance(feature_extractor=ClassifierFeatures(digits_model)).get_config()
    )
    assert tuple(restored._features(np.zeros((2, 8, 8, 1), "float32")).shape) == (2, 64)


def test_clear_errors():
    rng = np.random.default_rng(13)
    fid = FrechetDistance(feature_extractor=None)
    with pytest.raises(ValueError, match="call `update_state` first"):
        fid.result()
    fid.update_state(rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="same size"):
        fid.update_state(generated=rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="sample_weight"):
        fid.update_state(rng.normal(size=(10, 3)), sample_weight=np.ones(10))
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    kid = KernelDistance(subset_size=100, feature_extractor=None)
    kid.update_state(rng.normal(size=(50, 3)), rng.normal(size=(200, 3)))
    with pytest.raises(ValueError, match="subset_size"):
        kid.result()
    with pytest.raises(ValueError, match="same size"):
        kid.update_state(rng.normal(size=(50, 4)))
    with pytest.raises(ValueError, match="bandwidth"):
        maximum_mean_discrepancy(np.zeros((3, 2)), np.ones((3, 2)), bandwidth=0.0)
    with pytest.raises(ValueError, match="same number of features"):
        maximum_mean_discrepancy(np.zeros((3, 2)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="probabilities"):
        score = InceptionScore(classifier=None)
        score.update_state(rng.normal(size=(20, 10)))
        score.result()
    with pytest.raises(ValueError, match="num_splits"):
        metrics.inception_score_splits(np.eye(3), num_splits=4)
    with pytest.raises(ValueError, match="Unknown feature_extractor"):
        MaximumMeanDiscrepancy(feature_extractor="resnet").update_state(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="layer"):
        ClassifierFeatures(metrics.digits_classifier(), layer="missing")


def test_fisher_divergence_of_a_shifted_score_is_its_closed_form():
    from keras_score.datasets import GaussianMixture
    from keras_score.metrics import fisher_divergence
    from keras_score.schedules import VESchedule

    mixture = GaussianMixture.ring(num_components=4, radius=2.0, std=0.5)
    schedule = VESchedule(sigma_min=0.1, sigma_max=2.0)
    times = np.linspace(0.0, 1.0, 4)
    data = mixture.sample(256, seed=0)

    def exact(x, t):
        return mixture.score(x, t, schedule)

    shift = keras.ops.convert_to_tensor(np.array([0.3, -0.4], "float32"))
    assert fisher_divergence(exact, exact, data, schedule, times) == 0.0
    sigmas = np.array([float(keras.ops.convert_to_numpy(schedule.sigma(t))) for t in times])
    shifted = fisher_divergence(lambda x, t: exact(x, t) + shift, exact, data, schedule, times)
    np.testing.assert_allclose(shifted, np.mean(sigmas**2) * 0.25, rtol=1e-5)
    halved = fisher_divergence(lambda x, t: exact(x, t) + shift, exact, data, schedule, times, per_dimension=True)
    np.testing.assert_allclose(halved, shifted / 2, rtol=1e-6)
