"""Samplers driven by the exact score of a Gaussian mixture."""

import inspect

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_score import samplers, schedules
from keras_score.datasets import GaussianMixture
from keras_score.metrics import sliced_wasserstein_distance

MIXTURE = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5, weights=np.arange(1.0, 9.0))


def exact_denoiser(schedule, mixture=MIXTURE):
    return lambda x, t: mixture.denoise(x, t, schedule)


@pytest.fixture
def float64():
    """`keras.config.floatx()` = "float64" for one test (with JAX's 64-bit mode), restored afterwards."""
    previous = keras.config.floatx()
    jax_x64 = None
    if keras.backend.backend() == "jax":
        import jax

        jax_x64 = jax.config.read("jax_enable_x64")
        jax.config.update("jax_enable_x64", True)
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous)
        if jax_x64 is not None:
            jax.config.update("jax_enable_x64", jax_x64)


def draw(sampler, schedule, n=3000, steps=32, seed=0, grid="karras"):
    prior = samplers.initial_noise(n, (2,), seed) * float(to_numpy(schedule.sigma(schedule.t_max)))
    return to_numpy(sampler.sample(exact_denoiser(schedule), prior, schedule, steps=steps, time_grid=grid, seed=seed))


def assert_matches_mixture(x, mixture=MIXTURE):
    """Component weights, per-component means and spreads, and SW distance against the exact mixture."""
    probs = to_numpy(mixture.posterior_probs(keras.ops.convert_to_tensor(x.astype("float32"))))
    labels = np.argmax(probs, axis=1)
    frequencies = np.bincount(labels, minlength=mixture.num_components) / len(x)
    # Weights (1..8)/36: losing them puts some component off by more than 0.025.
    np.testing.assert_allclose(frequencies, mixture.weights, atol=0.025)
    for k in range(mixture.num_components):
        members = x[labels == k]
        spread = np.sqrt(np.diag(mixture.covariances[k]))
        # Five standard errors of the component mean; of its spread, 15% or five standard errors,
        # σ/√(2(n − 1)), when the component is small (1/36 of 3000 samples: 83 members, 39%).
        np.testing.assert_allclose(members.mean(0), mixture.means[k], atol=5 * spread.max() / np.sqrt(len(members)))
        np.testing.assert_allclose(members.std(0), spread, rtol=max(0.15, 5 / np.sqrt(2 * (len(members) - 1))))
    truth = mixture.sample(len(x), seed=1)
    floor = sliced_wasserstein_distance(truth, mixture.sample(len(x), seed=2))
    distance = sliced_wasserstein_distance(x, truth)
    assert distance < 2.5 * floor, (distance, floor)


@pytest.mark.parametrize(
    "sampler, schedule, steps",
    [
        (samplers.Heun(), schedules.EDMSchedule(), 32),
        (samplers.Heun(), schedules.VPSchedule(), 32),
        (samplers.EulerMaruyama(), schedules.VPSchedule(), 400),
        (samplers.EulerMaruyama(), schedules.VESchedule(sigma_min=0.01, sigma_max=20.0), 1000),
    ],
    ids=["heun-edm", "heun-vp", "em-vp", "em-ve"],
)
def test_exact_score_reproduces_the_mixture(sampler, schedule, steps):
    x = draw(sampler, schedule, steps=steps, grid="karras" if not sampler.stochastic else "uniform")
    assert_matches_mixture(x)


def test_mixture_check_rejects_wrong_weights():
    equal_weights = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5).sample(3000, seed=3)
    with pytest.raises(AssertionError):
        assert_matches_mixture(equal_weights)


def test_heun_is_second_order_on_the_probability_flow():
    schedule = schedules.EDMSchedule()
    reference = draw(samplers.Heun(), schedule, n=64, steps=256)
    errors = [np.abs(draw(samplers.Heun(), schedule, n=64, steps=s) - reference).mean() for s in (16, 32)]
    euler = [np.abs(draw(samplers.Euler(), schedule, n=64, steps=s) - reference).mean() for s in (64, 128)]
    assert 2.5 < errors[0] / errors[1] < 6, errors  # ≈ 4 for order 2
    assert 1.5 < euler[0] / euler[1] < 2.6, euler  # ≈ 2 for order 1


def test_same_seed_same_samples_and_batch_independence():
    schedule = schedules.EDMSchedule()
    a = draw(samplers.EulerMaruyama(), schedule, n=50, steps=20, seed=7)
    b = draw(samplers.EulerMaruyama(), schedule, n=50, steps=20, seed=7)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - draw(samplers.EulerMaruyama(), schedule, n=50, steps=20, seed=8)).max() > 0.1
    # Deterministic sampler: sample i depends only on (seed, i).
    np.testing.assert_allclose(
        draw(samplers.Heun(), schedule, n=5, steps=10)[:5], draw(samplers.Heun(), schedule, n=12, steps=10)[:5], atol=1e-4
    )


def test_trajectory():
    schedule = schedules.VPSchedule()
    prior = samplers.initial_noise(16, (2,), 0)
    x, trajectory = samplers.Heun().sample(
        exact_denoiser(schedule), prior, schedule, steps=6, return_trajectory=True
    )
    trajectory = to_numpy(trajectory)
    assert trajectory.shape == (7, 16, 2)
    np.testing.assert_allclose(trajectory[0], prior, rtol=1e-6)
    np.testing.assert_allclose(trajectory[-1], to_numpy(x), rtol=1e-6)


@pytest.mark.parametrize("schedule", [schedules.EDMSchedule(), schedules.VPSchedule(), schedules.VESchedule()], ids=str)
@pytest.mark.parametrize("spacing", ["uniform", "karras", "log_snr"])
def test_time_grids(schedule, spacing):
    times = samplers.time_grid(schedule, 10, spacing)
    zero_end = samplers.time_grids.ends_at_zero(schedule)
    assert len(times) == 11 and times[0] == pytest.approx(schedule.t_max)
    assert np.all(np.diff(times) < 0)
    assert times[-1] == (0.0 if zero_end else pytest.approx(schedule.t_min))
    if spacing == "log_snr":
        lam = to_numpy(schedule.log_snr(times[: 10 if zero_end else 11]))
        np.testing.assert_allclose(np.diff(lam), np.diff(lam)[0], rtol=2e-3)
    if spacing == "karras" and isinstance(schedule, schedules.EDMSchedule):
        i = np.arange(10) / 9
        expected = (80 ** (1 / 7) + i * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
        np.testing.assert_allclose(times[:10], expected, rtol=1e-4)


def test_time_grids_and_samples_keep_float64(float64):
    """Under float64 the grids are exact to float64 and the samplers keep the dtype."""
    vp, edm = schedules.VPSchedule(), schedules.EDMSchedule()
    times = samplers.time_grid(vp, 10, "log_snr")
    lam = to_numpy(vp.log_snr(times[:10]))
    np.testing.assert_allclose(np.diff(lam), np.diff(lam)[0], rtol=1e-10)  # float32: only to ~1e-3
    i = np.arange(10) / 9
    karras = (80 ** (1 / 7) + i * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(samplers.time_grid(edm, 10, "karras")[:10], karras, rtol=1e-12)
    # VE with D = 0: the probability-flow ODE is solved by x(t) = x_T·σ(t)/σ_max.
    ve = schedules.VESchedule(sigma_min=0.01, sigma_max=20.0)
    x_T = samplers.initial_noise(4, (2,), 0) * 20.0
    assert x_T.dtype == np.float64
    x, trajectory = samplers.RK45(rtol=1e-11, atol=1e-11).sample(
        lambda x, t: 0.0 * x, x_T, ve, steps=3, return_trajectory=True
    )
    assert keras.backend.standardize_dtype(x.dtype) == "float64"
    sigmas = to_numpy(ve.sigma(samplers.time_grid(ve, 3, "karras")))
    np.testing.assert_allclose(to_numpy(trajectory), sigmas[:, None, None] / 20.0 * x_T, rtol=1e-9)
    heun, heun_trajectory = samplers.Heun().sample(
        exact_denoiser(vp), samplers.initial_noise(4, (2,), 0), vp, steps=4, return_trajectory=True
    )
    assert keras.backend.standardize_dtype(heun.dtype) == "float64"
    np.testing.assert_array_equal(to_numpy(heun_trajectory[-1]), to_numpy(heun))


def test_sampler_errors():
    schedule = schedules.EDMSchedule()
    with pytest.raises(ValueError, match="Unknown sampler 'nope'.*heun"):
        samplers.get("nope")
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1"):
        samplers.Heun().sample(exact_denoiser(schedule), np.zeros((2, 2)), schedule, steps=0)
    with pytest.raises(ValueError, match="strictly decreasing"):
        samplers.Heun().sample(exact_denoiser(schedule), np.zeros((2, 2)), schedule, time_grid=[1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="Unknown time grid"):
        samplers.time_grid(schedule, 4, "cosine")


def test_score_function_adapter():
    schedule = schedules.VPSchedule()
    x = keras.ops.convert_to_tensor(MIXTURE.sample(8, seed=0))
    denoise = samplers.denoiser_from_score(lambda x, t: MIXTURE.score(x, t, schedule), schedule)
    np.testing.assert_allclose(to_numpy(denoise(x, 0.3)), to_numpy(MIXTURE.denoise(x, 0.3, schedule)), rtol=1e-4, atol=1e-4)


# Constructor arguments whose default None means "not set" and that take a number when set.
OPTIONAL_NUMBERS = {"first_step", "corrector_steps", "snr", "S_tmax"}


def constructor_arguments():
    """(sampler name, argument, kind) for every constructor argument of every registered sampler."""
    cases = []
    for name, cls in sorted(samplers.SAMPLERS.items()):
        for parameter in inspect.signature(cls).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            default = parameter.default
            if isinstance(default, bool):
                kind = "bool"
            elif isinstance(default, (int, float)) or parameter.name in OPTIONAL_NUMBERS:
                kind = "number"
            elif isinstance(default, str):
                kind = "name"
            else:
                raise AssertionError(f"{name}: classify the argument `{parameter.name}` in this test.")
            cases.append((name, parameter.name, kind))
    return cases


WRONG_VALUES = {
    "number": (True, False, float("nan"), float("inf"), -float("inf"), "1", None),
    "bool": (1, 0, "yes", None),
    "name": (3, None),
}


@pytest.mark.parametrize("name, argument, kind", constructor_arguments(), ids=lambda v: str(v))
def test_every_constructor_argument_is_checked(name, argument, kind):
    """Booleans, NaN, ±Inf and wrong types are rejected by every sampler with the argument named."""
    cls = samplers.SAMPLERS[name]
    for value in WRONG_VALUES[kind]:
        if value is None and argument in OPTIONAL_NUMBERS:
            continue  # None is the default there
        with pytest.raises(ValueError, match=f"`{argument}`"):
            cls(**{argument: value})


@pytest.mark.parametrize("name", sorted(samplers.SAMPLERS))
def test_run_returns_samples_and_their_evaluations(name):
    """`compile` returns run(x, times, seed) -> {"x", "num_function_evals", "trajectory"}; `sample` unpacks it."""
    schedule = schedules.VESchedule(sigma_min=0.01, sigma_max=20.0)  # α = 1 and a ratio ε/σ_L² < 4 for Langevin
    sampler = samplers.SAMPLERS[name]()
    times = samplers.time_grid(schedule, 3, "uniform")
    x_init = samplers.initial_noise(4, (2,), 0) * 20.0
    run = sampler.compile(exact_denoiser(schedule), schedule, zero_end=False, return_trajectory=True)
    result = run(
        keras.ops.convert_to_tensor(x_init),
        keras.ops.convert_to_tensor(times, dtype="float32"),
        keras.ops.convert_to_tensor(0, dtype="int32"),
    )
    assert sorted(result) == ["num_function_evals", "trajectory", "x"]
    nfe = result["num_function_evals"]
    assert tuple(nfe.shape) == () and keras.backend.standardize_dtype(nfe.dtype) == "int32"
    assert tuple(result["x"].shape) == (4, 2) and tuple(result["trajectory"].shape) == (4, 4, 2)
    if name != "rk45":  # adaptive: counted during the run
        assert int(to_numpy(nfe)) == sampler.num_function_evals(3, ends_at_zero=False)
    x, trajectory, count = sampler.sample(
        exact_denoiser(schedule), x_init, schedule, time_grid=times, return_trajectory=True, return_num_function_evals=True
    )
    assert isinstance(count, int) and count == int(to_numpy(nfe))
    np.testing.assert_array_equal(to_numpy(x), to_numpy(result["x"]))
    np.testing.assert_array_equal(to_numpy(trajectory), to_numpy(result["trajectory"]))
    x_only = sampler.sample(exact_denoiser(schedule), x_init, schedule, time_grid=times)
    np.testing.assert_array_equal(to_numpy(x_only), to_numpy(x))
