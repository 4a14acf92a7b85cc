"""ODE samplers on exact Gaussian mixtures: accuracy per denoiser evaluation, and loop overhead.

Usage:
    KERAS_BACKEND=jax python benchmarks/samplers.py [--quick] [--schedule edm]

For a 2-D ring of 8 unequally weighted modes and a 64-D mixture of 16 random
full-covariance modes, with their exact denoisers, every ODE sampler runs
with about 5, 10, 20, 35 and 50 denoiser evaluations (NFE; the steps are
chosen to come closest, and the actual NFE is printed) from the same prior
noise, on the Karras grid (ρ = 7), the log-SNR grid and, for UniPC, the
Karras grid with ρ = 4 ("karras4"), and the table reports:

- err: end-point error, the mean L2 distance to the RK45 solution of the
  probability-flow ODE at rtol = atol = 1e-6 (its own error is printed as
  its distance to the 1e-5 solution);
- SW: sliced Wasserstein distance to true samples, beside the floor of two
  true sample sets of the same size and the distance of the RK45 solution
  (the limit of every ODE sampler for this prior noise);
- overhead: wall time of the compiled run divided by NFE × the time of one
  compiled denoiser call (`keras_score.backend.compile_function`, the
  sampler's compiler) measured in the same run, both the best of several
  calls and including the transfer of the result to NumPy; 1.0 = no loop
  overhead, below 1 when the run saves the per-call dispatch; the summary
  gives its median and range over all runs.

With `--lower-order-final` it instead measures UniPC's `lower_order_final`
at 5, 8, 10 and 20 steps on both mixtures: the err above for the
reference codes' schedule (diffusers, wl-zhao/UniPC: step i of N predicts
with order min(p, i + 1, N − i)), for the schedule keras_score used before
it (the orders lowered one step earlier, min(p, i + 1, N − i − 1) but at
least 1) and without lowering. `--only unipc` restricts the main table to
the samplers whose label starts with "unipc".
"""

import argparse
import time

import keras
import numpy as np
from keras import ops

from keras_score import backend, schedules
from keras_score.datasets import GaussianMixture
from keras_score.metrics import sliced_wasserstein_distance
from keras_score.samplers import Euler, Heun, initial_noise, time_grid, time_grids
from keras_score.samplers.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from keras_score.samplers.edm import EDMHeun
from keras_score.samplers.ode import RK4, RK45
from keras_score.samplers.unipc import UniPC

TARGET_NFE = (5, 10, 20, 35, 50)
SAMPLERS = [
    (Euler(), "karras"),
    (Heun(), "karras"),
    (RK4(), "karras"),
    (EDMHeun(), "karras"),
    (DPMSolverPP2M(), "karras"),
    (DPMSolverPP2M(), "log_snr"),
    (DPMSolverPP3M(), "karras"),
    (DPMSolverPP3M(), "log_snr"),
    (UniPC(), "karras"),
    (UniPC(), "log_snr"),
    (UniPC(), "karras4"),
    (UniPC(order=3), "karras"),
    (UniPC(order=3), "log_snr"),
]
GRIDS = {
    "karras": lambda schedule, steps: time_grid(schedule, steps, "karras"),
    "log_snr": lambda schedule, steps: time_grid(schedule, steps, "log_snr"),
    "karras4": lambda schedule, steps: time_grid(schedule, steps, "karras", rho=4.0),
}


class UniPCLoweredEarly(UniPC):
    """UniPC with the orders lowered one step earlier than the reference: the old keras_score schedule."""

    def prediction_orders(self, steps):
        orders = UniPC(self.order, self.variant, lower_order_final=False).prediction_orders(steps)
        return [max(min(order, steps - 1 - i), 1) for i, order in enumerate(orders)]


def label(sampler):
    """The sampler's name, with its order where it has one to choose."""
    return f"{sampler.name}-{sampler.order}" if isinstance(sampler, UniPC) else sampler.name


def steps_for(sampler, target, ends_at_zero):
    """The number of steps (≥ 2) whose NFE is closest to `target`, the smaller on a tie."""
    candidates = range(2, target + 2)
    return min(candidates, key=lambda n: (abs(sampler.num_function_evals(n, ends_at_zero) - target), n))


def best_time(fn, repeats):
    """The shortest of `repeats` timed calls: the least disturbed by other load on the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def prior_noise(mixture, schedule, num_samples):
    sigma_max = float(ops.convert_to_numpy(schedule.sigma(schedule.t_max)))
    return ops.convert_to_tensor(initial_noise(num_samples, (mixture.dim,), 0) * sigma_max)


def end_point_error(sampler, denoise, schedule, x_init, grid, steps, reference):
    """The mean L2 distance of the sampler's end points to `reference`, and the run's NFE."""
    run = sampler.compile(denoise, schedule, time_grids.ends_at_zero(schedule))
    times = ops.convert_to_tensor(GRIDS[grid](schedule, steps), dtype="float32")
    result = run(x_init, times, ops.convert_to_tensor(0, dtype="int32"))
    x = ops.convert_to_numpy(result["x"])
    return np.linalg.norm(x - reference, axis=1).mean(), int(ops.convert_to_numpy(result["num_function_evals"]))


def lower_order_final(mixture, schedule, num_samples, steps=(5, 8, 10, 20)):
    """UniPC's end-point error with the reference's, the early and no lowering of the last orders."""
    denoise = lambda x, t: mixture.denoise(x, t, schedule)  # noqa: E731
    x_init = prior_noise(mixture, schedule, num_samples)
    reference = ops.convert_to_numpy(RK45(rtol=1e-6, atol=1e-6).sample(denoise, x_init, schedule))
    print(f"\n{mixture.name}: d={mixture.dim}, n={num_samples}, schedule={type(schedule).__name__}")
    print(f"{'sampler':<8} {'grid':<8} {'steps':>5} {'reference':>10} {'early':>10} {'none':>10}")
    for order in (2, 3):
        for grid in ("karras", "log_snr"):
            for n in steps:
                errors = [
                    end_point_error(sampler, denoise, schedule, x_init, grid, n, reference)[0]
                    for sampler in (UniPC(order), UniPCLoweredEarly(order), UniPC(order, lower_order_final=False))
                ]
                print(f"{'unipc-' + str(order):<8} {grid:<8} {n:>5} " + " ".join(f"{e:>10.3g}" for e in errors))


def benchmark(mixture, schedule, num_samples, targets, repeats, only=""):
    denoise = lambda x, t: mixture.denoise(x, t, schedule)  # noqa: E731
    x_init = prior_noise(mixture, schedule, num_samples)
    truth = mixture.sample(num_samples, seed=1)
    floor = sliced_wasserstein_distance(truth, mixture.sample(num_samples, seed=2))
    zero_end = time_grids.ends_at_zero(schedule)

    call = backend.compile_function(denoise)
    t_mid = ops.convert_to_tensor(1.0, dtype="float32")
    ops.convert_to_numpy(call(x_init, t_mid))

    def call_time():
        return best_time(lambda: ops.convert_to_numpy(call(x_init, t_mid)), repeats)

    check = ops.convert_to_numpy(RK45(rtol=1e-5, atol=1e-5).sample(denoise, x_init, schedule))
    reference, reference_nfe = RK45(rtol=1e-6, atol=1e-6).sample(
        denoise, x_init, schedule, return_num_function_evals=True
    )
    reference = ops.convert_to_numpy(reference)
    print(
        f"\n{mixture.name}: d={mixture.dim}, K={mixture.num_components}, n={num_samples}, "
        f"schedule={type(schedule).__name__}, one denoiser call {1e3 * call_time():.3f} ms, "
        f"RK45(1e-6) reference: {reference_nfe} NFE, "
        f"|RK45(1e-5) − reference| = {np.linalg.norm(check - reference, axis=1).mean():.1e}, "
        f"SW floor {floor:.4f}, SW of the reference {sliced_wasserstein_distance(reference, truth):.4f}"
    )
    print(f"{'sampler':<10} {'grid':<8} {'target':>6} {'NFE':>4} {'steps':>5} {'err':>9} {'SW':>7} {'overhead':>8}")

    rows = []
    for sampler, grid in SAMPLERS:
        if not label(sampler).startswith(only):
            continue
        for target in targets:
            steps = steps_for(sampler, target, zero_end)
            run = sampler.compile(denoise, schedule, zero_end)
            times = ops.convert_to_tensor(GRIDS[grid](schedule, steps), dtype="float32")
            seed = ops.convert_to_tensor(0, dtype="int32")
            result = run(x_init, times, seed)
            x, nfe = ops.convert_to_numpy(result["x"]), int(ops.convert_to_numpy(result["num_function_evals"]))
            wall = best_time(lambda: ops.convert_to_numpy(run(x_init, times, seed)["x"]), repeats)
            error = np.linalg.norm(x - reference, axis=1).mean()
            distance = sliced_wasserstein_distance(x, truth)
            overhead = wall / (nfe * call_time())  # timed next to the run: the same machine load
            rows.append((label(sampler), grid, target, nfe, error, overhead))
            print(
                f"{label(sampler):<10} {grid:<8} {target:>6} {nfe:>4} {steps:>5} {error:>9.2e} "
                f"{distance:>7.4f} {overhead:>8.2f}"
            )
    return rows


def summarize(rows, target=10):
    at_target = [r for r in rows if r[2] == target]
    best = min(at_target, key=lambda r: r[4])
    dpm = next((r for r in at_target if r[0] == "dpmpp_2m" and r[1] == "karras"), None)
    if dpm is not None:
        verdict = "below" if best[4] < dpm[4] else "not below"
        print(
            f"NFE≈{target}: best {best[0]} ({best[1]}, {best[3]} NFE) err {best[4]:.2e}, {verdict} "
            f"DPM-Solver++(2M) on the Karras grid ({dpm[3]} NFE) err {dpm[4]:.2e}"
        )
    overheads = [r[5] for r in rows]
    print(f"overhead: median {np.median(overheads):.2f} (range {min(overheads):.2f}-{max(overheads):.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, NFE 5 and 10 only")
    parser.add_argument("--schedule", default="edm", help="schedule name (edm, vp, cosine, ...)")
    parser.add_argument("--only", default="", help="only the samplers whose label starts with this, e.g. unipc")
    parser.add_argument(
        "--lower-order-final", action="store_true", help="compare UniPC's lowering of the last orders instead"
    )
    args = parser.parse_args()
    schedule = schedules.get(args.schedule)
    targets = TARGET_NFE[:2] if args.quick else TARGET_NFE
    repeats = 3 if args.quick else 7
    ring = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5, weights=np.arange(1.0, 9.0))
    print(f"backend={keras.backend.backend()}")
    for mixture, num_samples in ((ring, 8192), (GaussianMixture.random(16, 64, seed=0), 2048)):
        if args.quick:
            num_samples //= 8
        if args.lower_order_final:
            lower_order_final(mixture, schedule, num_samples)
        else:
            summarize(benchmark(mixture, schedule, num_samples, targets, repeats, args.only))


if __name__ == "__main__":
    main()
