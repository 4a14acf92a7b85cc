"""Score-matching objectives side by side: Fisher divergence to the exact score and time per training step.

Usage:
    KERAS_BACKEND=jax python benchmarks/objectives.py [--dims 2 8 32 64] [--steps 1000] [--quick]

For every dimension d, one random Gaussian mixture (8 components with full
covariances, `GaussianMixture.random`) and four `ScoreModel`s that differ
only in their objective: denoising score matching (DSM), sliced score
matching (SSM, one Rademacher projection), SSM-VR (one Gaussian projection)
and exact score matching (the full trace). All share the network, the VE
schedule, the λ = σ² weighting and log-uniform noise levels (NCSN's setup),
the optimiser, the batches and the seed. After training, the Fisher
divergence of each model to the exact score of the standardised data is

    (1/L)·Σ_l σ_l²·E‖s_θ(x, σ_l) − ∇log p_{σ_l}(x)‖² / d

over L = 8 noise levels geometric in [σ_min, σ_max], at held-out data
perturbed at each level (per coordinate, so dimensions compare). The time
per step is that of `fit` after a warm-up that pays for compilation.
"""

import argparse
import time

import keras
import numpy as np
from keras import ops

import keras_score
from keras_score.datasets import GaussianMixture
from keras_score.objectives import DenoisingScoreMatching, ExactScoreMatching, SlicedScoreMatching
from keras_score.schedules import VESchedule

OBJECTIVES = {
    "DSM": lambda: DenoisingScoreMatching(weighting="snr", noise_distribution="uniform"),
    "SSM": lambda: SlicedScoreMatching("rademacher", weighting="snr", noise_distribution="uniform"),
    "SSM-VR": lambda: SlicedScoreMatching("gaussian", variance_reduction=True, weighting="snr", noise_distribution="uniform"),
    "exact SM": lambda: ExactScoreMatching(weighting="snr", noise_distribution="uniform"),
}


def fisher_divergence(model, mixture, data, num_levels=8, seed=1):
    """σ²-weighted Fisher divergence per coordinate, averaged over noise levels, in the standardised space."""
    exact = mixture.affine(ops.convert_to_numpy(model.normalizer.mean), ops.convert_to_numpy(model.normalizer.std))
    schedule = model.schedule
    return keras_score.metrics.fisher_divergence(
        model.score, lambda x, t: exact.score(x, t, schedule), ops.convert_to_numpy(model.normalize_data(data)),
        schedule, np.linspace(schedule.t_min, schedule.t_max, num_levels), seed=seed, per_dimension=True,
    )


def run(objective, mixture, args):
    """Trains one model; returns (Fisher divergence before, after, seconds per step)."""
    keras.utils.set_random_seed(0)
    data = mixture.sample(args.batch_size * args.steps, seed=0)
    held_out = mixture.sample(args.eval_points, seed=1)
    network = keras_score.networks.MLP(hidden_units=args.hidden_units, num_blocks=2)
    model = keras_score.ScoreModel(network, schedule=VESchedule(sigma_min=0.01, sigma_max=args.sigma_max), objective=objective, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    model.build((None, mixture.dim))
    model.normalizer.adapt(data)
    before = fisher_divergence(model, mixture, held_out)
    model.fit(data[: args.batch_size * 3], batch_size=args.batch_size, epochs=1, verbose=0)  # compiles the step
    start = time.perf_counter()
    model.fit(data, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
    step = (time.perf_counter() - start) / args.steps
    return before, fisher_divergence(model, mixture, held_out), step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8, 32, 64])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden-units", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--sigma-max", type=float, default=20.0)
    parser.add_argument("--eval-points", type=int, default=2048)
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    parser.add_argument("--quick", action="store_true", help="dims 2 and 8, 100 steps: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.dims, args.steps, args.eval_points = [2, 8], 100, 512

    print(f"backend={keras.backend.backend()} steps={args.steps} batch={args.batch_size} hidden={args.hidden_units}")
    print("| d | objective | Fisher divergence, untrained | trained | ratio to DSM | ms per step | ratio to DSM |")
    print("|---|---|---|---|---|---|---|")
    for dim in args.dims:
        mixture = GaussianMixture.random(8, dim, seed=dim)
        results = {name: run(OBJECTIVES[name](), mixture, args) for name in args.objectives}
        base_fisher, base_step = results.get("DSM", (None, np.nan, np.nan))[1:]
        for name, (before, after, step) in results.items():
            print(
                f"| {dim} | {name} | {before:.4f} | {after:.4f} | {after / base_fisher:.2f} "
                f"| {1e3 * step:.1f} | {step / base_step:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
