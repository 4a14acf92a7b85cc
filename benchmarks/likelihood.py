"""Log-likelihoods by the probability-flow ODE against exact Gaussian-mixture densities.

Usage:
    KERAS_BACKEND=jax python benchmarks/likelihood.py [--quick] [--schedule vp]
    KERAS_BACKEND=jax python benchmarks/likelihood.py --vdm [--epochs 60] [--quick]

For a 2-D ring of 8 modes and a 64-D mixture of 8 random full-covariance
modes, both standardised (per-feature mean 0, std 1, as a `ScoreModel` sees
its data), with their exact denoisers, `keras_score.likelihood.log_prob`
(RK45 at rtol = atol = 1e-5, in one compiled loop) computes log p_{t_min}(x)
with the exact divergence and with Hutchinson's estimator (Rademacher
probes), and the table reports, against the mixture's exact log p_{t_min}(x):

- err/dim: mean |error| per example, in nats per dimension;
- bias ± se: the mean signed error (nats per example) and its standard error;
- ODE err/dim: the same with the mixture's exact p_T(x(T)) in place of the
  N(0, σ(T)²I) prior, i.e. the error of the ODE solve and divergence alone;
- NFE: evaluations of the drift (each one a batched Jacobian-vector product);
- wall: seconds of one `log_prob` call, compilation included; run: the
  best of 3 calls of the same compiled integration, without compilation.

The reference row integrates the same augmented ODE (drift and exact
divergence from one compiled function call per evaluation) with
`scipy.integrate.solve_ivp(method="RK45")` on the host in float64, at the
same tolerances, as score_sde's `likelihood.py` does; its wall time
excludes the compilation of the drift.

`--vdm`: variational diffusion models on held-out digits as 17-level
discrete data (`examples/vdm_digits.py`: scikit-learn's split 1,437 / 360,
random_state 0; the same UNet with VDM's learned γ and with its fixed linear
γ, trained `--epochs` by the VDM bound). For each: the bound in bits/dim
(mean of 10 evaluations on the 360 test digits, EMA weights), and the
probability-flow ODE's bits/dim of the same model on uniformly dequantized
digits (`ImageModel.bits_per_dim`, RK45 at 1e-5, Hutchinson's divergence
with 4 Rademacher probes); beside them the two baselines fitted to the same
split: an independent per-pixel categorical and a full-covariance Gaussian
on dequantized pixels; and the fit time.
"""

import argparse
import importlib.util
import os
import time

import keras
import numpy as np
from keras import ops
from scipy import integrate

from keras_score import backend, likelihood, schedules
from keras_score.datasets import GaussianMixture
from keras_score.samplers import dormand_prince
from keras_score.sde import SDE


def standardised(mixture, n, seed):
    reference = mixture.sample(8192, seed=100)
    mixture = mixture.affine(reference.mean(0), reference.std(0))
    return mixture, mixture.sample(n, seed=seed)


def ours(denoise, schedule, x, divergence="exact", probes=1, rtol=1e-5, atol=1e-5):
    """`log_prob` with details and its wall time; and the best run time of its compiled integration."""
    start = time.perf_counter()
    log_p, details = likelihood.log_prob(
        denoise, schedule, x, divergence=divergence, probes=probes, rtol=rtol, atol=atol, return_details=True
    )
    wall = time.perf_counter() - start
    n, dim = x.shape
    v = ops.convert_to_tensor(likelihood.divergence_probes(n, (dim,), divergence, probes))

    def run(y, v, times):
        dy_dt = likelihood.augmented_drift(denoise, schedule, v, (dim,), divergence)
        return dormand_prince.solve(dy_dt, y, times, rtol, atol, 10_000)["y"]

    compiled = backend.compile_function(run)
    y = ops.convert_to_tensor(np.concatenate([x, np.zeros((n, 1), "float32")], axis=1))
    times = ops.convert_to_tensor([schedule.t_min, schedule.t_max], dtype="float32")
    ops.convert_to_numpy(compiled(y, v, times))
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        ops.convert_to_numpy(compiled(y, v, times))
        runs.append(time.perf_counter() - start)
    return log_p, details, wall, min(runs)


def scipy_reference(denoise, schedule, x, rtol, atol):
    """The augmented ODE solved by scipy's RK45 on the host; one compiled drift call per evaluation."""
    n, dim = x.shape
    probes = ops.convert_to_tensor(likelihood.divergence_probes(1, (dim,), "exact"))
    drift = backend.compile_function(likelihood.augmented_drift(denoise, schedule, probes, (dim,), "exact"))

    def fun(t, y):
        state = ops.convert_to_tensor(y.reshape(n, dim + 1).astype("float32"))
        time_ = ops.convert_to_tensor(t, dtype="float32")
        return np.asarray(ops.convert_to_numpy(drift(state, time_)), dtype=np.float64).reshape(-1)

    drift(ops.convert_to_tensor(np.zeros((n, dim + 1), "float32")), ops.convert_to_tensor(1.0))  # compile first
    start = time.perf_counter()
    y0 = np.concatenate([x, np.zeros((n, 1))], axis=1).reshape(-1).astype(np.float64)
    solution = integrate.solve_ivp(fun, (schedule.t_min, schedule.t_max), y0, method="RK45", rtol=rtol, atol=atol)
    wall = time.perf_counter() - start
    y = solution.y[:, -1].reshape(n, dim + 1)
    latent, delta = y[:, :-1], y[:, -1]
    return latent, delta, solution.nfev, wall


def row(name, log_p, latent, delta, nfe, wall, run, mixture, schedule, target, dim):
    exact_prior = np.asarray(ops.convert_to_numpy(mixture.log_prob(latent.astype("float32"), schedule.t_max, schedule)))
    error = log_p - target
    ode_error = delta + exact_prior - target
    se = error.std(ddof=1) / np.sqrt(len(error))
    run_text = f"{run:8.2f}" if run is not None else f"{'-':>8}"
    print(
        f"| {name:<36} | {np.abs(error).mean() / dim:9.2e} | {error.mean():+8.4f} ± {se:6.4f} "
        f"| {np.abs(ode_error).mean() / dim:9.2e} | {nfe:5d} | {wall:7.2f} | {run_text} |"
    )


def benchmark(mixture, schedule, n, probes):
    mixture, x = standardised(mixture, n, seed=1)
    dim = mixture.dim
    denoise = lambda x, t: mixture.denoise(x, t, schedule)  # noqa: E731
    target = np.asarray(ops.convert_to_numpy(mixture.log_prob(x, schedule.t_min, schedule)), dtype=np.float64)
    print(
        f"\n**{mixture.name}: d = {dim}, K = {mixture.num_components}, n = {n}, "
        f"{type(schedule).__name__}, t_min = {schedule.t_min}**\n"
    )
    print("| method | err/dim | bias ± se (nats) | ODE err/dim | NFE | wall s | run s |")
    print("|---|---|---|---|---|---|---|")
    log_p, details, wall, run = ours(denoise, schedule, x)
    nfe = details["num_function_evals"]
    latent, delta = details["latent"], details["delta_log_prob"]
    row("exact trace", log_p, latent, delta, nfe, wall, run, mixture, schedule, target, dim)
    for m in probes:
        log_p, details, wall, run = ours(denoise, schedule, x, divergence="hutchinson", probes=m)
        nfe = details["num_function_evals"]
        name = f"Hutchinson, {m} probe{'s' * (m > 1)}"
        row(name, log_p, details["latent"], details["delta_log_prob"], nfe, wall, run, mixture, schedule, target, dim)
    latent, delta, nfe, wall = scipy_reference(denoise, schedule, x, 1e-5, 1e-5)
    log_p = delta + np.asarray(ops.convert_to_numpy(SDE(schedule).prior_log_prob(latent)))
    row("exact trace, scipy solve_ivp (host)", log_p, latent, delta, nfe, wall, None, mixture, schedule, target, dim)


def vdm_example():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "vdm_digits.py")
    spec = importlib.util.spec_from_file_location("vdm_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vdm_benchmark(epochs, channels, quick):
    example = vdm_example()
    train_images, test_images = example.split(0)
    if quick:
        test_images = test_images[:32]
    print(f"\n**Digits, 17 levels: {len(train_images)} train / {len(test_images)} test, {epochs} epochs**\n")
    print("| model | bound bits/dim | ODE bits/dim (dequantized) | fit s |")
    print("|---|---|---|---|")
    categorical = example.categorical_bits_per_dim(train_images, test_images)
    gaussian = example.gaussian_bits_per_dim(train_images, test_images)
    print(f"| independent per-pixel categorical | {categorical:.3f} | - | - |")
    print(f"| full-covariance Gaussian | - | {gaussian:.3f} | - |")
    gammas = {
        "learned γ (MonotoneGamma)": example.MonotoneGamma(),
        "fixed linear γ": example.LinearGamma(trainable=False),
    }
    for name, gamma in gammas.items():
        model = example.build_model(gamma, channels, seed=0)
        start = time.perf_counter()
        example.train(model, train_images, epochs)
        fit = time.perf_counter() - start
        bound = example.test_bits_per_dim(model, test_images, repeats=2 if quick else 10)
        ode = model.bits_per_dim(test_images, seed=0, divergence="hutchinson", probes=4, batch_size=120).mean()
        print(f"| VDM, {name} | {bound:.3f} | {ode:.3f} | {fit:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points")
    parser.add_argument("--schedule", default="vp", help="schedule name (vp, ve, edm, ...)")
    parser.add_argument("--vdm", action="store_true", help="VDM on 17-level digits instead of the mixtures")
    parser.add_argument("--epochs", type=int, default=60, help="VDM training epochs")
    parser.add_argument("--channels", type=int, default=32, help="VDM UNet channels")
    args = parser.parse_args()
    if args.vdm:
        print(f"backend={keras.backend.backend()}")
        vdm_benchmark(2 if args.quick else args.epochs, 8 if args.quick else args.channels, args.quick)
        return
    schedule = schedules.get(args.schedule)
    print(f"backend={keras.backend.backend()}")
    ring = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5)
    cases = ((ring, 256), (GaussianMixture.random(8, 64, seed=0), 32))
    for mixture, n in cases:
        benchmark(mixture, schedule, n // 4 if args.quick else n, probes=(1, 16))


if __name__ == "__main__":
    main()
