"""Training-step time of `ScoreModel.fit` on the 2-D Gaussian mixture.

Usage:
    KERAS_BACKEND=jax python benchmarks/train_step.py [--batch-size 256] [--steps 200]

Prints the time of one `fit` step (compiled, after a warm-up epoch that pays
for tracing and compilation), and beside it the time of one forward pass of
the network on the same batch measured in the same run, so the ratio shows
what a training step costs in network evaluations.
"""

import argparse
import time

import keras
import numpy as np

import keras_score
from keras_score.datasets import GaussianMixture


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--hidden-units", type=int, default=256)
    args = parser.parse_args()

    data = GaussianMixture.ring().sample(args.batch_size * args.steps, seed=0)
    model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=args.hidden_units), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(data[: args.batch_size * 5], batch_size=args.batch_size, epochs=1, verbose=0)

    start = time.perf_counter()
    model.fit(data, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
    step = (time.perf_counter() - start) / args.steps

    x = keras.ops.convert_to_tensor(data[: args.batch_size])
    model.denoise(x, 1.0)
    repeats = 50
    start = time.perf_counter()
    for _ in range(repeats):
        keras.ops.convert_to_numpy(model.denoise(x, 1.0))
    call = (time.perf_counter() - start) / repeats

    print(f"backend={keras.backend.backend()} batch={args.batch_size} hidden={args.hidden_units}")
    print(f"fit step: {1e3 * step:.2f} ms | eager denoiser call: {1e3 * call:.2f} ms | ratio {step / call:.2f}")


if __name__ == "__main__":
    main()
