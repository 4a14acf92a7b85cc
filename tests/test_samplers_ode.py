"""RK4, RK45, EDM, DPM-Solver++ and UniPC samplers against the exact mixture denoiser.

Deterministic samplers must converge to a tight-tolerance RK45 solution of the
probability-flow ODE from the same noise, at their theoretical order: the
error ratio between N and 2N steps is ≈ 2^order. Stochastic ones must
reproduce the mixture.
"""

import functools

import keras
import numpy as np
import pytest
from conftest import to_numpy
from test_samplers import MIXTURE, assert_matches_mixture, draw, exact_denoiser

from keras_score import samplers, schedules
from keras_score.samplers import dormand_prince
from keras_score.samplers.dpm_solver import DPMSolverPP2M, DPMSolverPP2MSDE, DPMSolverPP3M
from keras_score.samplers.edm import EDMHeun, EDMStochastic
from keras_score.samplers.ode import RK4, RK45
from keras_score.samplers.unipc import UniPC

SCHEDULES = {"edm": schedules.EDMSchedule(), "vp": schedules.VPSchedule()}
NUM_SAMPLES = 64


def prior(schedule, n=NUM_SAMPLES):
    return samplers.initial_noise(n, (2,), 0) * float(to_numpy(schedule.sigma(schedule.t_max)))


def solve(sampler, schedule, **kwargs):
    return to_numpy(sampler.sample(exact_denoiser(schedule), prior(schedule), schedule, **kwargs))


@functools.cache
def reference(schedule_name):
    """RK45 at rtol = atol = 1e-6 and its number of evaluations."""
    schedule = SCHEDULES[schedule_name]
    x, nfe = RK45(rtol=1e-6, atol=1e-6).sample(
        exact_denoiser(schedule), prior(schedule), schedule, return_num_function_evals=True
    )
    return to_numpy(x), nfe


def end_point_error(x, schedule_name):
    return np.linalg.norm(x - reference(schedule_name)[0], axis=1).mean()


def test_rk45_reference_is_converged_and_reports_its_evaluations():
    nfe_ref = reference("edm")[1]
    schedule = SCHEDULES["edm"]
    x, trajectory, nfe = RK45(rtol=1e-5, atol=1e-5).sample(
        exact_denoiser(schedule), prior(schedule), schedule, return_trajectory=True, return_num_function_evals=True
    )
    assert isinstance(nfe, int) and trajectory.shape[0] == 3  # [t_max, t_min, 0]
    # Tolerances 1e-5 and 1e-6 agree to ~1e-5: the reference is converged far
    # below the errors measured in the order tests (≥ 1e-4).
    assert end_point_error(to_numpy(x), "edm") < 3e-5
    assert 50 < nfe < nfe_ref, (nfe, nfe_ref)
    # The evaluations come back from the run: 2 to start, 6 per attempted step, 1 for the last step to σ = 0.
    assert (nfe - 3) % 6 == 0


def test_rk45_trajectory_on_a_grid_that_ends_above_zero():
    # VE with D = 0: the ODE dx/dt = log(σ_max/σ_min)·x is solved by x(t) = x_T·σ(t)/σ_max.
    schedule = schedules.VESchedule(sigma_min=0.01, sigma_max=20.0)
    x_T = prior(schedule, 4)
    x, trajectory = RK45(rtol=1e-6, atol=1e-6).sample(
        lambda x, t: 0.0 * x, x_T, schedule, steps=3, return_trajectory=True
    )
    sigmas = to_numpy(schedule.sigma(samplers.time_grid(schedule, 3, "karras")))
    expected = sigmas[:, None, None] / 20.0 * x_T
    np.testing.assert_allclose(to_numpy(trajectory), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(x), expected[-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("times", [[0.0, 0.3, 1.0, 2.0], [2.0, 1.5, 0.2]], ids=["forward", "backward"])
def test_dormand_prince_driver_stops_at_every_time_in_either_direction(times):
    """dy/dt = −y·t has y(t) = y₀·exp(−(t² − t₀²)/2); the driver of RK45 and `log_prob` lands on every time."""
    y0 = keras.ops.convert_to_tensor([[1.0], [-2.0]])
    grid = keras.ops.convert_to_tensor(times)
    solution = dormand_prince.solve(lambda y, t: -y * t, y0, grid, 1e-6, 1e-6, 1000, return_trajectory=True)
    times = np.array(times)
    expected = np.exp(-(times**2 - times[0] ** 2) / 2)[:, None, None] * to_numpy(y0)
    np.testing.assert_allclose(to_numpy(solution["trajectory"]), expected, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(solution["y"]), expected[-1], rtol=1e-5)
    assert float(to_numpy(solution["t"])) == to_numpy(grid)[-1]  # exactly the last time
    assert int(to_numpy(solution["next_index"])) == len(times)
    # The first step costs 2 evaluations (the derivative and the step-size probe), each attempt 6 more.
    assert (int(to_numpy(solution["num_function_evals"])) - 2) % 6 == 0
    unfinished = dormand_prince.solve(lambda y, t: -y * t, y0, grid, 1e-6, 1e-6, 2)
    with pytest.raises(RuntimeError, match="after max_steps=2 steps"):
        dormand_prince.check_solved(unfinished, grid, 2)


@pytest.mark.parametrize(
    "sampler, schedule_name, grid, steps, band",
    [
        (samplers.Euler(), "edm", "karras", 64, (1.6, 2.5)),  # order 1: ratio ≈ 2
        (samplers.Heun(), "edm", "karras", 32, (2.8, 5.5)),  # order 2: ≈ 4
        (RK4(), "edm", "karras", 16, (11.0, 26.0)),  # order 4: ≈ 16
        (EDMHeun(), "vp", "karras", 32, (2.8, 5.5)),
        (DPMSolverPP2M(), "vp", "log_snr", 32, (2.8, 5.5)),
        (DPMSolverPP3M(), "vp", "log_snr", 32, (5.5, 12.0)),  # order 3: ≈ 8
        # UniPC-p is of order p + 1; measured ratios 4.2, 7.2 and 16.1.
        (UniPC(order=1), "vp", "log_snr", 32, (2.8, 5.5)),
        (UniPC(), "vp", "log_snr", 32, (5.5, 12.0)),
        (UniPC(order=3), "vp", "log_snr", 16, (11.0, 26.0)),
    ],
    ids=lambda v: v.name + str(getattr(v, "order", "")) if isinstance(v, samplers.Sampler) else None,
)
def test_convergence_order_to_the_rk45_solution(sampler, schedule_name, grid, steps, band):
    schedule = SCHEDULES[schedule_name]
    errors = [
        end_point_error(solve(sampler, schedule, steps=n, time_grid=grid), schedule_name) for n in (steps, 2 * steps)
    ]
    assert errors[1] < 0.05, errors
    assert band[0] < errors[0] / errors[1] < band[1], errors


def diffusers_orders(solver_order, num_steps, lower_order_final):
    """The order of every step of diffusers' `UniPCMultistepScheduler.step`, transcribed."""
    orders, lower_order_nums = [], 0
    for step_index in range(num_steps):
        this_order = min(solver_order, num_steps - step_index) if lower_order_final else solver_order
        orders.append(min(this_order, lower_order_nums + 1))  # warm-up of the multistep method
        lower_order_nums = min(lower_order_nums + 1, solver_order)
    return orders


def wl_zhao_orders(order, steps, lower_order_final):
    """The order of every step of wl-zhao/UniPC's multistep `sample` (which needs steps >= order)."""
    warm_up = list(range(1, order))  # `for step in range(1, order)`: order `step`
    return warm_up + [min(order, steps + 1 - step) if lower_order_final else order for step in range(order, steps + 1)]


@pytest.mark.parametrize("lower_order_final", [True, False])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_order_schedule_is_the_reference_codes(order, lower_order_final):
    sampler = UniPC(order=order, lower_order_final=lower_order_final)
    for steps in range(1, 26):
        expected = diffusers_orders(order, steps, lower_order_final)
        assert sampler.prediction_orders(steps) == expected, steps
        if steps >= order:
            assert expected == wl_zhao_orders(order, steps, lower_order_final), steps


def test_unipc_steps_follow_their_order_schedule():
    """UniPC-3 whose schedule is all ones takes the steps of UniPC-1: the sampler reads `prediction_orders`."""

    class FirstOrder(UniPC):
        def prediction_orders(self, steps):
            return [1] * steps

    schedule = SCHEDULES["vp"]
    first, third = (solve(sampler, schedule, steps=6, time_grid="log_snr") for sampler in (UniPC(order=1), FirstOrder(order=3)))
    np.testing.assert_allclose(third, first, rtol=1e-5, atol=1e-5)
    assert np.abs(solve(UniPC(order=3), schedule, steps=6, time_grid="log_snr") - first).max() > 1e-2


@pytest.mark.parametrize(
    "sampler, schedule, steps, grid",
    [
        (EDMStochastic(), schedules.VPSchedule(), 64, "karras"),
        (DPMSolverPP2MSDE(), schedules.VPSchedule(), 64, "log_snr"),
        # σ_max = 80: with σ_max = 20 the N(0, σ_max²) prior visibly misses p_T at this sample size.
        (DPMSolverPP2M(), schedules.VESchedule(sigma_min=0.01, sigma_max=80.0), 32, "log_snr"),
        # The VE grid ends above σ = 0, so UniPC's last step is an uncorrected prediction.
        (UniPC(), schedules.VESchedule(sigma_min=0.01, sigma_max=80.0), 32, "log_snr"),
    ],
    ids=["edm_stochastic-vp", "dpmpp_2m_sde-vp", "dpmpp_2m-ve", "unipc-ve"],
)
def test_samplers_reproduce_the_mixture(sampler, schedule, steps, grid):
    # 10 000 samples: the smallest component (weight 1/36) then has ~280, so its
    # mean is checked to about 3 standard errors.
    assert_matches_mixture(draw(sampler, schedule, n=10_000, steps=steps, grid=grid))


def test_number_of_function_evaluations():
    assert RK4().num_function_evals(8) == 29 and RK4().num_function_evals(8, ends_at_zero=False) == 32
    assert EDMHeun().num_function_evals(18) == 35 and EDMStochastic().num_function_evals(18, False) == 36
    for sampler in (DPMSolverPP2M(), DPMSolverPP2MSDE(), DPMSolverPP3M(), UniPC(), UniPC(order=3)):
        assert sampler.num_function_evals(10) == 10


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="counts Python calls, made per step on eager torch only")
@pytest.mark.parametrize(
    "sampler",
    [
        RK4(),
        EDMHeun(),
        EDMStochastic(),
        DPMSolverPP2M(),
        DPMSolverPP2MSDE(),
        DPMSolverPP3M(),
        UniPC(order=3),
        RK45(rtol=1e-3, atol=1e-3),
    ],
    ids=lambda s: s.name,
)
def test_counted_evaluations_match(sampler):
    schedule = SCHEDULES["vp"]
    calls = []

    def denoise(x, t):
        calls.append(t)
        return MIXTURE.denoise(x, t, schedule)

    _, nfe = sampler.sample(denoise, prior(schedule, 4), schedule, steps=5, return_num_function_evals=True)
    assert len(calls) == nfe
    if not isinstance(sampler, RK45):
        assert nfe == sampler.num_function_evals(5)
    assert min(float(to_numpy(t)) for t in calls) > 0.0  # never at σ = 0


def test_config_round_trips():
    for sampler in (
        RK4(),
        RK45(rtol=1e-4, atol=1e-6, max_steps=50, first_step=0.1),
        EDMHeun(),
        EDMStochastic(S_churn=10.0, S_tmin=0.1, S_tmax=None, S_noise=1.003),
        DPMSolverPP2M(),
        DPMSolverPP2MSDE(eta=0.5),
        DPMSolverPP3M(),
        UniPC(order=3, variant="bh1", lower_order_final=False),
    ):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sampler))
        assert type(restored) is type(sampler) and restored.get_config() == sampler.get_config()


def test_errors():
    for kwargs, match in [
        ({"rtol": 0.0}, "`rtol` must be a finite number > 0"),
        ({"atol": -1e-5}, "`atol` must be a finite number > 0"),
        ({"max_steps": 0}, "`max_steps` must be an integer >= 1"),
        ({"first_step": 0.0}, "`first_step` must be a finite number > 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            RK45(**kwargs)
    for kwargs, match in [
        ({"S_churn": -1.0}, "`S_churn` must be a finite number >= 0"),
        ({"S_tmin": 2.0, "S_tmax": 1.0}, "`S_tmax` must be a finite number >= 2.0"),
        ({"S_noise": 0.0}, "`S_noise` must be a finite number > 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            EDMStochastic(**kwargs)
    with pytest.raises(ValueError, match="`eta` must be a finite number >= 0"):
        DPMSolverPP2MSDE(eta=-0.1)
    for kwargs, match in [
        ({"order": 4}, "`order` must be an integer >= 1 and <= 3"),
        ({"order": True}, "`order` must be an integer >= 1 and <= 3"),
        ({"variant": "bh3"}, "`variant` must be one of"),
    ]:
        with pytest.raises(ValueError, match=match):
            UniPC(**kwargs)
    with pytest.raises(RuntimeError, match="RK45 is adaptive: its number of evaluations is known only after a run"):
        RK45().num_function_evals(8)
    schedule = SCHEDULES["edm"]
    with pytest.raises(RuntimeError, match="after max_steps=3 steps"):
        RK45(max_steps=3).sample(lambda x, t: 0.0 * x, prior(schedule, 2), schedule)
