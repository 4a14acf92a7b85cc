"""Log-likelihoods through the probability-flow ODE against exact Gaussian-mixture densities.

Starting at t_min > 0, the ODE gives log p_{t_min}(x), the density of the
data noised to σ(t_min); the exact targets below are therefore
`mixture.log_prob(x, t_min, schedule)`, not the clean density. The ODE
itself is checked with the exact p_T(x(T)) of the mixture (from
`return_details`, so that only the solver and the divergence contribute),
and the whole estimate with the default prior N(0, σ(T)²I) on standardised
data, as a `ScoreModel` sees it.
"""

import math

import keras
import numpy as np
import pytest
from conftest import to_numpy
from test_samplers import float64  # noqa: F401 (a fixture)

import keras_score
from keras_score import likelihood, schedules
from keras_score.datasets import GaussianMixture
from keras_score.networks import MLP

RING = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5)
SCHEDULES = {"ve": schedules.VESchedule(), "vp": schedules.VPSchedule(), "edm": schedules.EDMSchedule()}


def standardised(mixture, n, seed):
    """The mixture and n of its samples in standardised units (per-feature mean 0, std 1)."""
    reference = mixture.sample(4096, seed=100)
    mixture = mixture.affine(reference.mean(0), reference.std(0))
    return mixture, mixture.sample(n, seed=seed)


def exact_denoiser(mixture, schedule):
    return lambda x, t: mixture.denoise(x, t, schedule)


def ode_log_prob(mixture, schedule, x, **kwargs):
    """Our estimate, and the same with the mixture's exact log p_T(x(T)) in place of the prior."""
    log_p, details = likelihood.log_prob(exact_denoiser(mixture, schedule), schedule, x, return_details=True, **kwargs)
    exact_prior = to_numpy(mixture.log_prob(details["latent"], schedule.t_max, schedule))
    return log_p, details["delta_log_prob"] + exact_prior, details


@pytest.mark.parametrize("dim", [2, 8])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_exact_trace_matches_the_mixture_density(name, dim):
    schedule = SCHEDULES[name]
    mixture = RING if dim == 2 else GaussianMixture.random(4, dim, seed=0)
    mixture, x = standardised(mixture, 32, seed=1)
    log_p, log_p_exact_prior, details = ode_log_prob(mixture, schedule, x)
    target = to_numpy(mixture.log_prob(x, schedule.t_min, schedule))
    assert log_p.shape == (32,) and log_p.dtype == np.float64
    # The ODE and the exact divergence: ~1e-6 nats per dimension at rtol = atol = 1e-5.
    assert np.abs(log_p_exact_prior - target).mean() / dim < 1e-4
    # With the N(0, σ(T)²I) prior (the default), which is p_T only approximately.
    assert np.abs(log_p - target).mean() / dim < 0.01
    assert 20 < details["num_function_evals"] < 1000
    np.testing.assert_allclose(details["prior_log_prob"], log_p - details["delta_log_prob"], atol=1e-9)


@pytest.mark.parametrize("name", ["vp", "edm"])
def test_float64_log_prob_matches_the_mixture_density_beyond_float32(name, float64):
    """In float64 the ODE's log p_{t_min}(x) meets the exact mixture density to ~1e-10 nats.

    The exact p_T(x(T)) replaces the prior, so only the solver and the exact divergence count.
    In float32 the same integration stops improving at ~3e-6 nats (rtol = atol = 1e-7 and below).
    """
    schedule = SCHEDULES[name]
    x = RING.sample(16, seed=1).astype("float64")
    log_p, details = likelihood.log_prob(
        exact_denoiser(RING, schedule),
        schedule,
        x,
        rtol=1e-10,
        atol=1e-10,
        prior_log_prob=lambda z: RING.log_prob(z, schedule.t_max, schedule),
        return_details=True,
    )
    assert details["latent"].dtype == np.float64
    target = to_numpy(RING.log_prob(keras.ops.convert_to_tensor(x), schedule.t_min, schedule))
    assert np.abs(log_p - target).max() < 1e-8, np.abs(log_p - target).max()
    # The fixed-step grid and the Hutchinson probes are float64 too.
    hutchinson = likelihood.log_prob(
        exact_denoiser(RING, schedule), schedule, x, solver="heun", steps=4, divergence="hutchinson", probes=2
    )
    assert np.all(np.isfinite(hutchinson))


def test_hutchinson_is_unbiased():
    """Hutchinson's estimate averages to the exact-trace value (same fixed-step solver, so the
    estimate is exactly linear in vvᵀ and E[vvᵀ] = I makes it unbiased)."""
    schedule = SCHEDULES["edm"]
    mixture, points = standardised(GaussianMixture.random(4, 8, seed=0), 4, seed=2)
    repeats = 64
    x = np.repeat(points, repeats, axis=0)  # row i has its own probe, drawn from (seed, i)
    solver = {"solver": "heun", "steps": 16}
    exact, exact_details = likelihood.log_prob(
        exact_denoiser(mixture, schedule), schedule, points, return_details=True, **solver
    )
    for distribution in ("rademacher", "gaussian"):
        estimate, details = likelihood.log_prob(
            exact_denoiser(mixture, schedule),
            schedule,
            x,
            divergence="hutchinson",
            probe_distribution=distribution,
            seed=3,
            return_details=True,
            **solver,
        )
        # The trajectory does not depend on the probes: only the divergence integral is random.
        np.testing.assert_allclose(
            details["latent"], np.repeat(exact_details["latent"], repeats, axis=0), rtol=1e-4, atol=1e-4
        )
        deviation = estimate - np.repeat(exact, repeats)
        spread = deviation.reshape(4, repeats).std(axis=1, ddof=1)
        assert np.all(spread > 0.05), spread  # a real estimate, with a visible variance
        standard_error = np.sqrt(np.mean(spread**2) / deviation.size)
        assert abs(deviation.mean()) < 3 * standard_error, (distribution, deviation.mean(), standard_error)


def test_divergence_of_a_linear_drift():
    """F = f·x − ½g²(α·D − x)/σ² with D(x) = x·diag(m): tr J = Σᵢ f + ½g²(1 − α·mᵢ)/σ².

    With a diagonal J, every Rademacher probe gives the trace exactly, so the mean over several
    probes of one example must too (not their sum).
    """
    schedule = SCHEDULES["vp"]
    m = np.array([0.5, 2.0, -1.0], dtype="float32")
    t = 0.3
    f, g2, alpha, sigma = (
        float(to_numpy(fn(t)))
        for fn in (schedule.drift_coefficient, schedule.diffusion_squared, schedule.alpha, schedule.sigma)
    )
    trace = np.sum(f + 0.5 * g2 * (1.0 - alpha * m) / sigma**2)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    y = np.concatenate([x, np.zeros((2, 1), "float32")], axis=1)
    for divergence, probes in (("exact", 1), ("hutchinson", 4)):
        v = likelihood.divergence_probes(1, (3,), divergence, probes)
        scale = keras.ops.convert_to_tensor(m)
        v = keras.ops.convert_to_tensor(v)
        dy_dt = likelihood.augmented_drift(lambda z, t: z * scale, schedule, v, (3,), divergence)
        result = to_numpy(dy_dt(keras.ops.convert_to_tensor(y), keras.ops.convert_to_tensor(t)))
        np.testing.assert_allclose(result[:, -1], [trace, trace], rtol=1e-5)
        expected_drift = f * x - 0.5 * g2 * (alpha * x * m - x) / sigma**2
        np.testing.assert_allclose(result[:, :3], expected_drift, rtol=1e-5, atol=1e-5)


def test_hutchinson_probes_depend_only_on_the_example_index():
    whole = likelihood.divergence_probes(6, (2, 3), "hutchinson", probes=5, seed=7)
    part = likelihood.divergence_probes(4, (2, 3), "hutchinson", probes=5, seed=7, start=2)
    np.testing.assert_array_equal(whole[2:], part)
    assert set(np.unique(whole)) == {-1.0, 1.0} and whole.shape == (6, 5, 2, 3)
    gaussian = likelihood.divergence_probes(2000, (3,), "hutchinson", distribution="gaussian")
    np.testing.assert_allclose(np.cov(gaussian.reshape(2000, 3).T), np.eye(3), atol=0.1)
    exact = likelihood.divergence_probes(9, (2, 3), "exact")
    assert exact.shape == (1, 6, 2, 3)
    np.testing.assert_array_equal(exact.reshape(6, 6), np.eye(6))


@pytest.mark.parametrize("solver, steps, ratio, tolerance", [("heun", 16, 3.0, 0.02), ("rk4", 8, 8.0, 0.01)])
def test_fixed_step_solvers_converge_at_their_order(solver, steps, ratio, tolerance):
    """Doubling the steps divides the error by about 2^order: 4 for Heun, 16 for RK4."""
    schedule = SCHEDULES["vp"]
    mixture, x = standardised(RING, 32, seed=4)
    target = to_numpy(mixture.log_prob(x, schedule.t_min, schedule))
    errors = []
    for n in (steps, 2 * steps):
        _, log_p, details = ode_log_prob(mixture, schedule, x, solver=solver, steps=n)
        assert details["num_function_evals"] == {"heun": 2, "rk4": 4}[solver] * n
        errors.append(np.abs(log_p - target).mean())
    assert errors[1] < tolerance, errors
    assert errors[1] < errors[0] / ratio, errors


def test_prior_log_prob_argument():
    schedule = SCHEDULES["ve"]
    mixture, x = standardised(RING, 8, seed=5)
    log_p = likelihood.log_prob(
        exact_denoiser(mixture, schedule),
        schedule,
        x,
        solver="rk4",
        steps=16,
        prior_log_prob=lambda z: mixture.log_prob(z, schedule.t_max, schedule),
        t_min=0.1,
    )
    np.testing.assert_allclose(log_p, to_numpy(mixture.log_prob(x, 0.1, schedule)), atol=0.02)


def test_model_log_prob_in_data_units_untrained_and_trained(capsys):
    """A `ScoreModel` on the ring, in data units (radius 4, so std ≈ 2.9 per feature).

    Untrained, the MLP's zero output layer makes D = c_skip·z = z/(1 + σ²), the exact denoiser
    of N(0, I) in standardised units: log p_x(x) = log N(z; 0, (1 + t_min²)I) − Σ log std,
    which pins the Jacobian of the standardisation; its NLL is that of a Gaussian fit, 1.5
    nats above the truth. Briefly trained (400 steps), it must come within 0.5 nats of the
    true NLL on held-out data.
    """
    keras.utils.set_random_seed(0)
    data = RING.sample(4096, seed=0)
    held_out = RING.sample(128, seed=1)
    true_nll = -to_numpy(RING.log_prob(held_out)).mean()
    model = keras_score.ScoreModel(MLP(hidden_units=64, num_blocks=2), seed=0)
    model.build((None, 2))
    model.normalizer.adapt(data)
    options = {"rtol": 1e-3, "atol": 1e-3}  # ~1e-3 nats here, at a third of the evaluations of 1e-5

    z = to_numpy(model.normalize_data(held_out))
    variance = 1.0 + model.schedule.t_min**2
    gaussian = -0.5 * np.sum(z**2, axis=1) / variance - math.log(2 * math.pi * variance)
    expected = gaussian - np.sum(np.log(to_numpy(model.normalizer.std)))
    log_p, details = model.log_prob(held_out, return_details=True, **options)
    np.testing.assert_allclose(log_p, expected, atol=0.01)
    assert details["latent"].shape == (128, 2)
    untrained_nll = -log_p.mean()
    assert untrained_nll - true_nll > 1.0, (untrained_nll, true_nll)

    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, 400, alpha=0.1)))
    model.fit(data, batch_size=256, epochs=25, verbose=0)
    trained_nll = -model.log_prob(held_out, batch_size=64, verbose=True, **options).mean()
    assert "128/128" in capsys.readouterr().out
    assert abs(trained_nll - true_nll) < 0.5, (trained_nll, true_nll)
    # One compiled integration served both calls and saw the trained weights.
    assert len(model._log_prob_functions) == 1
    with pytest.raises(ValueError, match="`x` must have shape"):
        model.log_prob(held_out[:, :1])


def test_bits_per_dim_of_uniform_and_discrete_densities():
    # The uniform density 2^−D on [−1, 1]^D of 8-bit data: exactly log2(256) = 8 bits per dimension.
    dim = 5
    assert likelihood.bits_per_dim(-dim * math.log(2.0), dim, num_levels=256) == pytest.approx(8.0, abs=1e-12)
    # Continuous: −log p/(D ln 2), no offset.
    np.testing.assert_allclose(likelihood.bits_per_dim([-math.log(2.0) * 6], 3), [2.0])
    # A density constant on each dequantization bin, p(x) = P(k)·K/(hi − lo): the bound is tight
    # and bits per dimension is −log2 P(x_int)/D exactly, for any range.
    num_levels, lo, hi = 4, 0.0, 3.0
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    rng = np.random.default_rng(0)
    x_int = rng.choice(num_levels, size=(100, 3), p=probs)
    x = likelihood.dequantize(x_int, num_levels, (lo, hi), seed=1)
    bins = np.floor((x - lo) / (hi - lo) * num_levels).astype(int)
    np.testing.assert_array_equal(bins, x_int)
    density = np.sum(np.log(probs[bins] * num_levels / (hi - lo)), axis=1)
    expected = -np.sum(np.log2(probs[x_int]), axis=1) / 3
    np.testing.assert_allclose(likelihood.bits_per_dim(density, 3, num_levels, (lo, hi)), expected, rtol=1e-6)


def test_dequantize_maps_8_bit_data_into_bins_of_minus_one_to_one():
    x_int = np.array([[0, 255, 128]])
    x = likelihood.dequantize(x_int, seed=0)
    assert x.dtype == np.float32
    lower = x_int / 256 * 2 - 1
    assert np.all(x >= lower) and np.all(x < lower + 2 / 256)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"solver": "euler"}, "`solver` must be one of"),
        ({"divergence": "trace"}, "`divergence` must be one of"),
        ({"divergence": "hutchinson", "probe_distribution": "uniform"}, "`probe_distribution` must be one of"),
        ({"divergence": "hutchinson", "probes": 0}, "`probes` must be an integer >= 1"),
        ({"probes": 4}, "`probes` applies to divergence='hutchinson' only"),
        ({"solver": "heun"}, "`steps` is required"),
        ({"solver": "rk4", "steps": 2.5}, "`steps` must be an integer >= 1"),
        ({"steps": 8}, "`steps` is for the fixed-step solvers"),
        ({"rtol": 0.0}, "`rtol` must be a finite number > 0"),
        ({"atol": -1.0}, "`atol` must be a finite number > 0"),
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1"),
        ({"t_min": 0.0}, r"σ\(t_min\) > 0"),
        ({"t_min": 2.0}, "`t_min` must be a finite number >= 0.0 and < 1.0"),
        ({"max_steps": 0}, "`max_steps` must be an integer >= 1"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    schedule = SCHEDULES["vp"]
    with pytest.raises(ValueError, match=fragment):
        likelihood.log_prob(exact_denoiser(RING, schedule), schedule, RING.sample(4, seed=0), **kwargs)


def test_bad_data_and_unit_arguments():
    schedule = SCHEDULES["vp"]
    denoise = exact_denoiser(RING, schedule)
    with pytest.raises(ValueError, match=r"`x` must have shape \(n, ...\)"):
        likelihood.log_prob(denoise, schedule, np.zeros(3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        likelihood.log_prob(denoise, schedule, np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="`num_dims` must be an integer >= 1"):
        likelihood.bits_per_dim([0.0], 0)
    with pytest.raises(ValueError, match="`data_range` must satisfy lo < hi"):
        likelihood.bits_per_dim([0.0], 2, num_levels=256, data_range=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"`x` must hold integers in \{0, ..., 255\}"):
        likelihood.dequantize(np.array([256]))
    with pytest.raises(ValueError, match="`x` must hold integers"):
        likelihood.dequantize(np.array([0.5]))


def test_rk45_reports_running_out_of_steps():
    schedule = SCHEDULES["edm"]
    with pytest.raises(RuntimeError, match="max_steps=3"):
        likelihood.log_prob(exact_denoiser(RING, schedule), schedule, RING.sample(4, seed=0), max_steps=3)
