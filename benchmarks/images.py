"""Class-conditional digits: the UNet `ImageModel` against the residual-MLP `ScoreModel`, FID over NFE.

Usage:
    KERAS_BACKEND=jax python benchmarks/images.py [--quick] [--unet-epochs 60,200] [--mlp-epochs 150] [--fit-only]

Protocol (the images issue's baseline): scikit-learn's 1,797 digits split
1,437 / 360 by a permutation of seed 0. A classifier
(`metrics.feature_extractors.train_digits_classifier`, seed 0) is trained
on the training split; its 64-d penultimate features (`ClassifierFeatures`)
define the FID, and its accuracy on the test split is printed. The floor is
FID(train, test) in those features. Both models are class-conditional
(p_uncond = 0.1) and trained on the training split, each timed:

- MLP: `ScoreModel(MLP(512, 4))` on the images scaled to [−1, 1] (the
  project's digits example), Adam 1e-3, batch 128;
- UNet: `ImageModel(UNet(...), levels=17)` on the 17 pixel levels, EDM's
  preconditioning and power-EMA sampling, Adam 1e-3 cosine-decayed to 10 %,
  batch 128; one model per entry of --unet-epochs, so that one can be held
  to the issue's fit-time budget (5x the MLP's) and another run longer.

For each sampler and NFE target (10, 20, 35, 50) the largest step count
whose NFE fits is used; 1,437 samples (the training split's size, the
labels cycling through the classes, guidance scale 1: the conditional
model) are compared with the test split by FID, and the classifier's
accuracy on them against their labels is printed. The "guided" rows use
classifier-free guidance w = 2. The UNet's images are rounded to their
levels, as `ImageModel.generate` returns them; the MLP's are clipped to
[−1, 1]. The last lines report training images per second of each fit.
"""

import argparse
import time

import keras
import numpy as np

from keras_score import ScoreModel, samplers
from keras_score.datasets import load_digits
from keras_score.images import ImageModel
from keras_score.metrics import frechet_distance
from keras_score.metrics.feature_extractors import ClassifierFeatures, train_digits_classifier
from keras_score.networks import MLP, UNet

TRAIN_SIZE = 1437
LEVELS = 17
NFE_TARGETS = (10, 20, 35, 50)
SAMPLERS = ("euler", "heun", "dpmpp_2m")
GUIDED = (("heun", 35), ("dpmpp_2m", 10))


def split(seed=0):
    """(train images, train labels, test images, test labels): 17-level uint8 images and int labels."""
    images, labels = load_digits(return_labels=True, pixel_values=True)
    order = np.random.default_rng(seed).permutation(len(images))
    train, test = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return images[train], labels[train], images[test], labels[test]


def to_unit(images):
    """17-level images as floats in [−1, 1], as `load_digits()` gives them and the classifier takes them."""
    return np.asarray(images, "float32") / (LEVELS - 1) * 2 - 1


def statistics(features):
    features = np.asarray(features, "float64")
    return features.mean(0), np.cov(features, rowvar=False)


def classifier_metrics(classifier):
    """(embed, accuracy) of a classifier: the FID features of images (in batches of about 1,000) and the
    fraction of images it assigns to their labels."""
    features = ClassifierFeatures(classifier)

    def embed(images):
        batches = np.array_split(np.asarray(images), max(1, len(images) // 1000))
        return np.concatenate([keras.ops.convert_to_numpy(features(keras.ops.convert_to_tensor(b))) for b in batches])

    def accuracy(images, labels):
        predicted = np.argmax(keras.ops.convert_to_numpy(classifier(keras.ops.convert_to_tensor(images))), -1)
        return float(np.mean(predicted == labels))

    return embed, accuracy


def steps_for(sampler, nfe):
    """The largest step count whose NFE (ending at σ = 0) is at most `nfe`, and that NFE."""
    instance = samplers.get(sampler)
    best = 1
    for steps in range(1, nfe + 1):
        if instance.num_function_evals(steps) <= nfe:
            best = steps
    return best, instance.num_function_evals(best)


def train_mlp(images, labels, epochs, seed):
    keras.utils.set_random_seed(seed)
    model = ScoreModel(MLP(hidden_units=512, num_blocks=4), num_classes=10, p_uncond=0.1, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(to_unit(images), labels, batch_size=128, epochs=epochs, verbose=0)
    return model, time.perf_counter() - start


def train_unet(images, labels, epochs, seed, channels, blocks):
    keras.utils.set_random_seed(seed)
    network = UNet(channels=channels, channel_multipliers=(1, 2), blocks_per_level=blocks, attention_resolutions=(4,))
    model = ImageModel(network, levels=LEVELS, num_classes=10, p_uncond=0.1, seed=seed)
    steps = epochs * int(np.ceil(len(images) / 128))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps, alpha=0.1)))
    start = time.perf_counter()
    model.fit(images, labels, batch_size=128, epochs=epochs, verbose=0)
    return model, time.perf_counter() - start


def sample_unit(model, labels, sampler, steps, guidance_scale, seed):
    """Samples in [−1, 1]: the UNet's on their levels, the MLP's clipped."""
    kwargs = dict(labels=labels, sampler=sampler, steps=steps, guidance_scale=guidance_scale, seed=seed, batch_size=512)
    if isinstance(model, ImageModel):
        return to_unit(model.generate(len(labels), **kwargs))
    return np.clip(model.generate(len(labels), **kwargs), -1, 1)


def main():
    parser = argparse.ArgumentParser(description="FID over NFE of UNet and MLP models of the digits.")
    parser.add_argument("--quick", action="store_true", help="a few epochs and samples: a smoke run")
    parser.add_argument("--unet-epochs", default="60,200", help="comma-separated: one UNet model per entry")
    parser.add_argument("--mlp-epochs", type=int, default=150)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-only", action="store_true", help="train and report fit times only (no sampling)")
    args = parser.parse_args()
    if args.quick:
        args.unet_epochs, args.mlp_epochs, args.channels, args.blocks = "2", 2, 8, 1
    x_train, y_train, x_test, y_test = split(args.seed)
    num_samples = 200 if args.quick else len(x_train)
    nfe_targets = (10,) if args.quick else NFE_TARGETS
    classifier = train_digits_classifier(to_unit(x_train), y_train, seed=args.seed)
    embed, accuracy = classifier_metrics(classifier)
    test_stats = statistics(embed(to_unit(x_test)))
    floor = frechet_distance(*statistics(embed(to_unit(x_train))), *test_stats)
    print(f"backend {keras.backend.backend()}; {len(x_train)} train / {len(x_test)} test digits, seed {args.seed}")
    print(f"classifier accuracy on real test digits: {accuracy(to_unit(x_test), y_test):.3f}")
    print(f"floor FID(train, test) = {floor:.3f}")

    models = {}
    models["MLP 512x4"] = train_mlp(x_train, y_train, args.mlp_epochs, args.seed) + (args.mlp_epochs,)
    for epochs in [int(e) for e in args.unet_epochs.split(",")]:
        models[f"UNet {args.channels}ch {epochs} ep"] = train_unet(
            x_train, y_train, epochs, args.seed, args.channels, args.blocks
        ) + (epochs,)
    labels = np.arange(num_samples) % 10
    print("\n| model | sampler | w | steps | NFE | FID | FID / floor | accuracy | sampling s |")
    print("|---|---|---|---|---|---|---|---|---|")
    runs = [(s, n, None) for s in SAMPLERS for n in nfe_targets] + [(s, n, 2.0) for s, n in GUIDED if n in nfe_targets]
    if args.fit_only:
        runs = []
    for name, (model, _, _) in models.items():
        for sampler, target, scale in runs:
            steps, nfe = steps_for(sampler, target)
            start = time.perf_counter()
            images = sample_unit(model, labels, sampler, steps, scale, args.seed)
            seconds = time.perf_counter() - start
            fid = frechet_distance(*statistics(embed(images)), *test_stats)
            print(
                f"| {name} | {sampler} | {scale or 1:g} | {steps} | {nfe} | {fid:.3f} | {fid / floor:.2f} | "
                f"{accuracy(images, labels):.3f} | {seconds:.1f} |",
                flush=True,
            )
    print()
    for name, (model, seconds, epochs) in models.items():
        parameters = model.denoiser.network.count_params()
        print(
            f"{name}: {parameters:,} parameters, fit {seconds:.1f} s for {epochs} epochs "
            f"({epochs * len(x_train) / seconds:.0f} training images/s)"
        )


if __name__ == "__main__":
    main()
