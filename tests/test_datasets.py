"""Tests for keras_score.datasets: exact mixture identities, toys, real data.

Reference values come from scipy in float64, computed independently of the
library's eigendecomposition-based formulas.
"""

import keras
import numpy as np
import pytest
from keras import ops
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from keras_score import datasets
from keras_score.datasets import GaussianMixture
from keras_score.schedules import (
    CosineSchedule,
    EDMSchedule,
    SubVPSchedule,
    VESchedule,
    VPSchedule,
)

SCHEDULES = [VESchedule(), VPSchedule(), SubVPSchedule(), CosineSchedule(), EDMSchedule()]
LOG_SNRS = [3.0, 0.0, -3.0]
CASES = [(s, l) for s in SCHEDULES for l in LOG_SNRS]
CASE_IDS = [f"{type(s).__name__}-logsnr{l:g}" for s, l in CASES]


def _np(tensor):
    return ops.convert_to_numpy(tensor).astype(np.float64)


def _alpha_sigma(schedule, t):
    return float(_np(schedule.alpha(t))), float(_np(schedule.sigma(t)))


def _time(schedule, log_snr):
    return float(_np(schedule.t_from_log_snr(log_snr)))


def _ref_log_prob(mixture, x, alpha=1.0, sigma=0.0):
    """log p_t(x) in float64 with scipy, from means, covariances and weights."""
    eye = np.eye(mixture.dim)
    terms = [
        np.log(w) + multivariate_normal(alpha * mu, alpha**2 * cov + sigma**2 * eye).logpdf(x)
        for mu, cov, w in zip(mixture.means, mixture.covariances, mixture.weights)
    ]
    return logsumexp(np.stack(terms, axis=-1).reshape(len(x), -1), axis=-1)


def _ref_score(mixture, x, alpha=1.0, sigma=0.0, h=1e-4):
    """Central finite differences of the scipy log-density, float64."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for j in range(x.shape[1]):
        step = np.zeros(x.shape[1])
        step[j] = h
        up = _ref_log_prob(mixture, x + step, alpha, sigma)
        down = _ref_log_prob(mixture, x - step, alpha, sigma)
        grad[:, j] = (up - down) / (2 * h)
    return grad


def _ref_posterior(mixture, x, alpha=1.0, sigma=0.0):
    eye = np.eye(mixture.dim)
    log_joint = np.stack(
        [
            np.log(w) + multivariate_normal(alpha * mu, alpha**2 * cov + sigma**2 * eye).logpdf(x)
            for mu, cov, w in zip(mixture.means, mixture.covariances, mixture.weights)
        ],
        axis=-1,
    ).reshape(len(x), -1)
    return np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True))


def _assert_close(actual, expected, rtol=2e-3):
    """Relative to the largest magnitude, so tiny entries do not dominate."""
    atol = rtol * max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def mixture():
    return GaussianMixture.random(4, 3, seed=7)


def _points(mixture, alpha, sigma, n=48, seed=0):
    """Points from p_t plus midpoints between modes, where posteriors mix."""
    rng = np.random.default_rng(seed)
    x0 = mixture.sample(n, seed=seed).astype(np.float64)
    x = alpha * x0 + sigma * rng.standard_normal(x0.shape)
    means = alpha * mixture.means
    middles = 0.5 * (means[:-1] + means[1:])
    return np.concatenate([x, middles]).astype(np.float32)


# ----------------------------------------------------------- exact identities


def test_clean_log_prob_and_score_match_scipy(mixture):
    x = _points(mixture, 1.0, 0.0)
    _assert_close(_np(mixture.log_prob(x)), _ref_log_prob(mixture, x), rtol=1e-4)
    _assert_close(_np(mixture.score(x)), _ref_score(mixture, x))
    np.testing.assert_allclose(_np(mixture.denoise(x)), x, atol=1e-4)


@pytest.mark.parametrize("schedule,log_snr", CASES, ids=CASE_IDS)
def test_perturbed_density_score_denoiser_are_exact(mixture, schedule, log_snr):
    t = _time(schedule, log_snr)
    alpha, sigma = _alpha_sigma(schedule, t)
    x = _points(mixture, alpha, sigma)
    ref_score = _ref_score(mixture, x, alpha, sigma)

    log_prob = _np(mixture.log_prob(x, t, schedule))
    score = _np(mixture.score(x, t, schedule))
    denoised = _np(mixture.denoise(x, t, schedule))
    probs = _np(mixture.posterior_probs(x, t, schedule))

    _assert_close(log_prob, _ref_log_prob(mixture, x, alpha, sigma), rtol=1e-4)
    _assert_close(score, ref_score)
    # Tweedie: E[x0 | x] = (x + σ²∇log p_t(x)) / α, from the scipy reference.
    _assert_close(denoised, (x + sigma**2 * ref_score) / alpha)
    # The library's own score and denoiser agree: score = (α·D − x)/σ².
    _assert_close(score, (alpha * denoised - x) / sigma**2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, _ref_posterior(mixture, x, alpha, sigma), atol=1e-4)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_per_example_times(mixture, schedule):
    x = _points(mixture, 1.0, 1.0)
    unique = np.array([_time(schedule, l) for l in LOG_SNRS], dtype=np.float32)
    which = np.arange(len(x)) % len(unique)
    log_prob = _np(mixture.log_prob(x, unique[which], schedule))
    score = _np(mixture.score(x, unique[which], schedule))
    for i, t in enumerate(unique):
        alpha, sigma = _alpha_sigma(schedule, t)
        rows = which == i
        _assert_close(log_prob[rows], _ref_log_prob(mixture, x[rows], alpha, sigma), rtol=1e-4)
        _assert_close(score[rows], _ref_score(mixture, x[rows], alpha, sigma))


class MixtureScoreModel(keras.Model):
    def __init__(self, mixture, schedule):
        super().__init__()
        self.mixture = mixture
        self.schedule = schedule

    def call(self, inputs):
        x, t = inputs
        return self.mixture.score(x, ops.reshape(t, (-1,)), self.schedule)


def test_score_inside_compiled_predict(mixture):
    schedule = VPSchedule()
    x = _points(mixture, 0.5, 0.5)
    times = np.linspace(0.1, 0.9, len(x)).astype(np.float32)
    model = MixtureScoreModel(mixture, schedule)
    compiled = model.predict([x, times[:, None]], batch_size=17, verbose=0)
    _assert_close(np.asarray(compiled, np.float64), _np(mixture.score(x, times, schedule)), 1e-5)


# ---------------------------------------------------------- sampling, affine


def test_sample_moments_match_components():
    mixture = GaussianMixture.random(3, 2, seed=3)
    x, labels = mixture.sample(200_000, seed=1, return_labels=True)
    assert x.dtype == np.float32 and x.shape == (200_000, 2)
    np.testing.assert_allclose(np.bincount(labels) / len(labels), mixture.weights, atol=5e-3)
    for k in range(3):
        xk = x[labels == k].astype(np.float64)
        np.testing.assert_allclose(xk.mean(axis=0), mixture.means[k], atol=0.02)
        np.testing.assert_allclose(np.cov(xk.T), mixture.covariances[k], atol=0.03)
    np.testing.assert_array_equal(mixture.sample(10, seed=5), mixture.sample(10, seed=5))


def test_affine_is_the_transformed_density(mixture):
    shift = np.array([1.0, -2.0, 0.5])
    scale = np.array([2.0, 0.5, -3.0])
    moved = mixture.affine(shift, scale)
    x = _points(mixture, 1.0, 0.0)
    y = ((x - shift) / scale).astype(np.float32)
    expected = _ref_log_prob(mixture, x) + np.log(np.abs(scale)).sum()
    _assert_close(_np(moved.log_prob(y)), expected, rtol=1e-4)
    samples = mixture.sample(100_000, seed=2).astype(np.float64)
    moved_samples = moved.sample(100_000, seed=2).astype(np.float64)
    np.testing.assert_allclose(
        ((samples - shift) / scale).mean(axis=0), moved_samples.mean(axis=0), atol=0.1
    )
    identity = mixture.affine(0.0, 1.0)
    np.testing.assert_allclose(identity.covariances, mixture.covariances)


def test_covariance_formats_expand_to_full():
    means = [[0.0, 0.0], [3.0, 1.0]]
    full = GaussianMixture(means, [np.diag([0.5, 2.0]), np.diag([1.5, 1.5])])
    diagonal = GaussianMixture(means, [[0.5, 2.0], [1.5, 1.5]])
    np.testing.assert_allclose(full.covariances, diagonal.covariances)
    isotropic = GaussianMixture(means, [0.5, 1.5])
    np.testing.assert_allclose(isotropic.covariances[1], 1.5 * np.eye(2))
    np.testing.assert_allclose(GaussianMixture(means).covariances, np.eye(2)[None].repeat(2, 0))
    np.testing.assert_allclose(GaussianMixture(means, 2.0).covariances[0], 2.0 * np.eye(2))
    np.testing.assert_allclose(GaussianMixture(means, weights=[1, 3]).weights, [0.25, 0.75])


# ------------------------------------------------------ factories and config


def test_ring_geometry():
    ring = GaussianMixture.ring(num_components=6, radius=3.0, std=0.25, dim=4)
    assert (ring.num_components, ring.dim) == (6, 4)
    np.testing.assert_allclose(np.linalg.norm(ring.means, axis=1), 3.0)
    np.testing.assert_allclose(ring.means[:, 2:], 0.0)
    np.testing.assert_allclose(ring.means[1, :2], [1.5, 1.5 * np.sqrt(3)])
    np.testing.assert_allclose(ring.covariances, 0.0625 * np.eye(4)[None].repeat(6, 0))
    np.testing.assert_allclose(ring.weights, 1 / 6)


def test_random_is_separated_and_reproducible():
    mixture = GaussianMixture.random(6, 5, seed=0, min_std=0.2, max_std=0.8)
    distances = np.linalg.norm(mixture.means[:, None] - mixture.means[None], axis=-1)
    assert distances[~np.eye(6, dtype=bool)].min() >= 6 * 0.8
    eigvals = np.linalg.eigvalsh(mixture.covariances)
    assert eigvals.min() >= 0.2**2 - 1e-9 and eigvals.max() <= 0.8**2 + 1e-9
    np.testing.assert_allclose(mixture.weights.sum(), 1.0)
    again = GaussianMixture.random(6, 5, seed=0, min_std=0.2, max_std=0.8)
    np.testing.assert_array_equal(mixture.covariances, again.covariances)


def test_config_round_trip(mixture):
    registered = keras.saving.get_registered_object("keras_score>GaussianMixture")
    restored = registered.from_config(mixture.get_config())
    assert registered is GaussianMixture and restored.name == mixture.name
    np.testing.assert_allclose(restored.covariances, mixture.covariances)
    x = _points(mixture, 1.0, 0.0)
    np.testing.assert_allclose(_np(restored.log_prob(x)), _np(mixture.log_prob(x)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"means": [0.0, 1.0]}, "`means`"),
        ({"means": [[0.0, 0.0]], "covariances": np.ones((1, 3))}, "`covariances`"),
        ({"means": [[0.0, 0.0]], "covariances": [[[1.0, 2.0], [2.0, 1.0]]]}, "positive definite"),
        ({"means": [[0.0, 0.0]], "covariances": [[[1.0, 0.5], [0.0, 1.0]]]}, "symmetric"),
        ({"means": [[0.0], [1.0]], "weights": [1.0, -1.0]}, "`weights`"),
        ({"means": [[0.0], [1.0]], "weights": [1.0]}, "`weights`"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**kwargs)


def test_invalid_call_arguments(mixture):
    x = mixture.sample(2, seed=0)
    with pytest.raises(ValueError, match="`schedule`"):
        mixture.log_prob(x, 0.5)
    with pytest.raises(ValueError, match="`scale`"):
        mixture.affine(0.0, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="`shift`"):
        mixture.affine([0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="`dim`"):
        GaussianMixture.ring(dim=1)


# ------------------------------------------------------------------ toy sets

TOYS = [
    datasets.make_moons,
    datasets.make_swiss_roll,
    datasets.make_checkerboard,
    datasets.make_rings,
]


@pytest.mark.parametrize("make", TOYS, ids=lambda f: f.__name__)
def test_toy_shape_dtype_and_seed(make):
    data = make(501, seed=0)
    assert data.shape == (501, 2) and data.dtype == np.float32
    assert 0.3 < data.std() < 3.0 and np.abs(data.mean(axis=0)).max() < 1.0
    np.testing.assert_array_equal(data, make(501, seed=0))
    assert not np.array_equal(data, make(501, seed=1))
    with pytest.raises(ValueError, match="`noise`"):
        make(10, noise=-1.0)
    with pytest.raises(ValueError, match="`n`"):
        make(0)


def test_moons_lie_on_two_arcs():
    x = datasets.make_moons(1000, seed=0, noise=0.0).astype(np.float64)
    upper = np.linalg.norm(x - [-1.0, -0.5], axis=1)
    lower = np.linalg.norm(x - [1.0, 0.5], axis=1)
    on_upper = np.isclose(upper, 2.0, atol=1e-5) & (x[:, 1] >= -0.5 - 1e-5)
    on_lower = np.isclose(lower, 2.0, atol=1e-5) & (x[:, 1] <= 0.5 + 1e-5)
    assert np.all(on_upper | on_lower) and on_upper.sum() == 500
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.1)


def test_swiss_roll_follows_the_spiral():
    x = datasets.make_swiss_roll(1000, seed=0, noise=0.0).astype(np.float64)
    radius = np.linalg.norm(x, axis=1)
    assert radius.min() >= 0.3 * np.pi - 1e-5 and radius.max() <= 0.9 * np.pi + 1e-5
    theta = 5.0 * radius
    spiral = radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    np.testing.assert_allclose(x, spiral, atol=1e-4)


def test_checkerboard_fills_dark_squares_evenly():
    x = datasets.make_checkerboard(8000, seed=0)
    assert np.abs(x).max() <= 2.0
    cells = np.floor(x + 2.0).astype(int)
    assert np.all((cells[:, 0] + cells[:, 1]) % 2 == 0)
    counts = np.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16)
    dark = counts[counts > 0]
    assert len(dark) == 8 and np.abs(dark / 8000 - 1 / 8).max() < 0.02


def test_rings_radii_and_shares():
    x = datasets.make_rings(6000, seed=0, noise=0.0, num_rings=3)
    radius = np.linalg.norm(x.astype(np.float64), axis=1).round(4)
    values, counts = np.unique(radius, return_counts=True)
    np.testing.assert_allclose(values, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(counts / 6000, [1 / 6, 2 / 6, 3 / 6], atol=0.02)


# ---------------------------------------------------------------- real data


def test_digits_scaling_and_labels():
    images, labels = datasets.load_digits(return_labels=True)
    assert images.shape == (1797, 8, 8, 1) and images.dtype == np.float32
    np.testing.assert_allclose((images + 1.0) * 8.0, np.round((images + 1.0) * 8.0), atol=1e-5)
    assert images.min() == -1.0 and images.max() == 1.0
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))


def test_wine_table_and_names():
    data, labels = datasets.load_wine(return_labels=True)
    names = datasets.wine_feature_names()
    assert data.shape == (178, 13) and data.dtype == np.float32
    assert len(names) == 13 and names[0] == "alcohol" and names[-1] == "proline"
    assert np.bincount(labels).tolist() == [59, 71, 48]
    np.testing.assert_allclose(data[0, 0], 14.23, rtol=1e-6)


# ----------------------------------------------------------------- registry


@pytest.mark.parametrize("name", sorted(datasets.EMBEDDED))
def test_registry_loads_tables(name):
    data, columns = datasets.load(name, n=100, seed=0)
    assert data.dtype == np.float32 and data.ndim == 2 and data.shape[0] == 100
    assert data.shape[1] == len(columns) and np.all(np.isfinite(data))
    np.testing.assert_array_equal(data, datasets.load(name, n=100, seed=0)[0])


def test_registry_contents():
    data, _ = datasets.load("mixture", n=50, seed=3)
    np.testing.assert_array_equal(data, GaussianMixture.ring().sample(50, seed=3))
    assert datasets.load("moons")[0].shape == (datasets.DEFAULT_SIZE, 2)
    digits, columns = datasets.load("digits")
    assert digits.shape == (1797, 64) and columns[9] == "pixel_1_1"
    np.testing.assert_array_equal(digits[:, 9], datasets.load_digits()[:, 1, 1, 0])
    with pytest.raises(ValueError, match="checkerboard"):
        datasets.load("nope")
    with pytest.raises(ValueError, match="`n`"):
        datasets.load("wine", n=1000)
