"""Fashion-MNIST (28×28): FID over NFE of a class-conditional UNet `ImageModel` after a fixed training time.

Usage:
    KERAS_BACKEND=jax python benchmarks/fashion_mnist.py [--minutes 60] [--samples 500] [--channels 16] [--quick]

The images issue asks for FID over NFE and its floor after one CPU hour of
training (and, where a GPU is lent, training to convergence). Protocol: the
60,000 training images (Debian's `dataset-fashion-mnist` IDX files, or
Keras' download), 256 levels; a classifier (`digits_classifier` of 28×28
inputs, an MLP 128-64, 5 epochs) trained by this script on the training
split gives the 64-d features of the FID and the accuracy of samples
against their labels. The floor is FID(n training images, the 10,000 test
images) for the same n as the samples. The model:
`ImageModel(UNet(channels, (1, 2, 2), 1 block per level, attention at 7×7),
levels=256, num_classes=10)` with EDM's preconditioning and power EMA,
Adam 1e-3, batch 64, stopped after `--minutes` of training. Samples: n (500
by default: sampling a 28×28 UNet on two CPU cores is slow) with labels
cycling through the classes, for DPM-Solver++ 2M at 10 and 20 NFE and Heun at
35, and guided (w = 2) at 35 NFE.
"""

import argparse
import time

import keras
import numpy as np
from images import classifier_metrics, statistics, steps_for

from keras_score.datasets import load_fashion_mnist
from keras_score.images import ImageModel
from keras_score.metrics import frechet_distance
from keras_score.metrics.feature_extractors import train_digits_classifier
from keras_score.networks import UNet

RUNS = (("dpmpp_2m", 10, None), ("dpmpp_2m", 20, None), ("heun", 35, None), ("heun", 35, 2.0))


class TimeBudget(keras.callbacks.Callback):
    """Stops training after `seconds` of wall time, at a batch's end; counts the steps taken."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.steps = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def to_levels(images):
    return np.rint((np.asarray(images) + 1.0) * 127.5).astype("uint8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--samples", type=int, default=500, help="samples per sampler and NFE")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 minute, 100 samples, 8 channels")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.samples, args.channels = 1.0, 100, 8
    x_train, y_train = load_fashion_mnist("train", return_labels=True)
    x_test, y_test = load_fashion_mnist("test", return_labels=True)
    classifier = train_digits_classifier(x_train, y_train, epochs=1 if args.quick else 5)
    embed, accuracy = classifier_metrics(classifier)
    test_stats = statistics(embed(x_test))
    floor = frechet_distance(*statistics(embed(x_train[: args.samples])), *test_stats)
    print(f"backend {keras.backend.backend()}; {len(x_train)} train / {len(x_test)} test images")
    print(f"classifier accuracy on real test images: {accuracy(x_test, y_test):.3f}")
    print(f"floor FID({args.samples} train, test) = {floor:.3f}", flush=True)

    keras.utils.set_random_seed(0)
    network = UNet(
        channels=args.channels, channel_multipliers=(1, 2, 2), blocks_per_level=1, attention_resolutions=(7,)
    )
    model = ImageModel(network, levels=256, num_classes=10, p_uncond=0.1, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    budget = TimeBudget(60.0 * args.minutes)
    start = time.perf_counter()
    model.fit(to_levels(x_train), y_train, batch_size=64, epochs=1000, verbose=0, callbacks=[budget])
    seconds = time.perf_counter() - start
    print(
        f"UNet {args.channels}ch: {network.count_params():,} parameters, {budget.steps} steps of 64 in {seconds:.0f} s "
        f"({budget.steps * 64 / seconds:.0f} training images/s, {budget.steps * 64 / len(x_train):.2f} epochs)"
    )
    labels = np.arange(args.samples) % 10
    print("\n| sampler | w | steps | NFE | FID | FID / floor | accuracy | sampling s |")
    print("|---|---|---|---|---|---|---|---|")
    for sampler, target, scale in RUNS:
        steps, nfe = steps_for(sampler, target)
        start = time.perf_counter()
        kwargs = dict(sampler=sampler, steps=steps, guidance_scale=scale, seed=0, batch_size=250)
        images = model.generate(args.samples, labels=labels, **kwargs).astype("float32") / 127.5 - 1.0
        elapsed = time.perf_counter() - start
        fid = frechet_distance(*statistics(embed(images)), *test_stats)
        print(
            f"| {sampler} | {scale or 1:g} | {steps} | {nfe} | {fid:.3f} | {fid / floor:.2f} | "
            f"{accuracy(images, labels):.3f} | {elapsed:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
