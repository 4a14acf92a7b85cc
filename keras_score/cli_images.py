"""The image commands of `keras-score`: train an `ImageModel` on a folder or an .npz of images, sample PNGs.

    keras-score train digits/ --out digits.keras [--levels 17] [--image-size 28x28] [--steps 2000]
    keras-score sample digits.keras -n 64 --out grid.png [--labels 3,7] [--guidance-scale 2]
    keras-score sample digits.keras -n 1000 --out samples/

DATA is images when it is a folder (PNG, JPEG, BMP or GIF files; images in
sub-folders are labelled by the sub-folder's name, and a model trained on
two or more classes is class-conditional) or an .npz whose "images" (or
"x") array has three or four dimensions, (n, H, W[, C]), with "labels" (or
"y") as class indices. The network is `UNet(channels=--hidden-units,
blocks_per_level=--blocks, channel_multipliers=--channel-multipliers)`;
the multipliers default to (1, 2), (1, 2, 2) from 16 pixels and
(1, 2, 2, 2) from 64, as far as H and W divide. `sample` writes a grid to
a .png --out, and one PNG per image to a folder --out (a path ending in
"/", an existing folder, or a path without extension), written into a
temporary folder and moved into place once all are done.
"""

import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from keras_score import io as table_io
from keras_score.cli_training import fit_from_command_line

IMAGE_DEFAULTS = {"steps": 2000, "batch_size": 64, "hidden_units": 64, "blocks": 2, "learning_rate": 1e-3}
GRID_EXTENSION = ".png"
GRID_MIN_PIXELS = 32  # each image of a grid is enlarged (nearest neighbour) to at least this many pixels
MAX_GRID_COLUMNS = 16
SAMPLE_PREFIX = "sample"


def is_image_data(path):
    """Whether DATA names images: a folder, or an .npz whose image array has 3 or 4 dimensions."""
    if os.path.isdir(path):
        return True
    if table_io.extension(path) != ".npz" or not os.path.isfile(path):
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = archive.files
            key = next((k for k in ("images", "x") if k in names), names[0] if len(names) == 1 else None)
            return key is not None and archive[key].ndim in (3, 4)
    except (OSError, ValueError):
        return False


def is_image_output(path):
    """Whether --out asks for images: a .png grid, or a folder (ending in a separator, existing, or without extension)."""
    text = os.fspath(path)
    return (
        table_io.extension(text) == GRID_EXTENSION
        or text.endswith(("/", os.sep))
        or os.path.isdir(text)
        or not os.path.splitext(text)[1]
    )


def _image_size(text, usage_error):
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise usage_error(f"--image-size: expected HxW with positive integers, e.g. 28x28; received {text!r}.")
    return int(parts[0]), int(parts[1])


def read_images(args, usage_error):
    """Reads DATA as images: `(uint8 or numeric images (n, H, W, C), labels or None, class names or None)`."""
    from keras_score import images as image_io

    size = _image_size(args.image_size, usage_error)
    try:
        if os.path.isdir(args.data):
            images, labels, names = image_io.load_image_folder(args.data, size, args.color_mode)
        else:
            if size is not None or args.color_mode is not None:
                raise ValueError("--image-size and --color-mode apply to a folder of images, not to an .npz.")
            images, labels = image_io.load_npz(args.data)
            names = None
    except ValueError as error:
        raise usage_error(f"DATA {args.data!r}: {error}") from None
    images = images[..., None] if images.ndim == 3 else images
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu" or labels.min() < 0:
            raise usage_error(
                f"DATA {args.data!r}: the labels must be {len(images)} class indices ≥ 0 (one per image); "
                f"received shape {labels.shape} and dtype {labels.dtype}."
            )
        names = names or [str(k) for k in range(int(labels.max()) + 1)]
        if len(names) < 2:  # one class: nothing to condition on
            labels, names = None, None
    return images, labels, names


def _channel_multipliers(args, height, width, usage_error):
    if args.channel_multipliers is not None:
        try:
            return tuple(int(m) for m in args.channel_multipliers.split(","))
        except ValueError:
            raise usage_error(
                f"--channel-multipliers: expected positive integers separated by commas, e.g. 1,2,2; "
                f"received {args.channel_multipliers!r}."
            ) from None
    multipliers = (1, 2) + (2,) * (min(height, width) >= 16) + (2,) * (min(height, width) >= 64)
    while len(multipliers) > 1 and (height % 2 ** (len(multipliers) - 1) or width % 2 ** (len(multipliers) - 1)):
        multipliers = multipliers[:-1]
    return multipliers


def build_image_model(args, images, class_names, usage_error):
    """The compiled `ImageModel` the options in `args` describe, for `images` (n, H, W, C)."""
    import keras

    from keras_score.images import ImageModel
    from keras_score.networks import UNet

    keras.utils.set_random_seed(args.seed)
    height, width = images.shape[1:3]
    levels = 256 if args.levels is None else args.levels
    try:
        network = UNet(
            channels=args.hidden_units,
            channel_multipliers=_channel_multipliers(args, height, width, usage_error),
            blocks_per_level=args.blocks,
        )
        model = ImageModel(
            network,
            levels=levels,
            num_classes=None if class_names is None else len(class_names),
            class_names=class_names,
            seed=args.seed,
        )
    except ValueError as error:
        raise usage_error(str(error)) from None
    batch_size = min(args.batch_size, len(images))
    steps = args.epochs * math.ceil(len(images) / batch_size) if args.epochs else args.steps
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps, alpha=0.1)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    return model


def train_images(args, usage_error, training_error, interrupt_check=None):
    """`keras-score train` on images: reads DATA, trains an `ImageModel`, prints what it did; returns the model."""
    images, labels, class_names = read_images(args, usage_error)
    levels = 256 if args.levels is None else args.levels
    model = build_image_model(args, images, class_names, usage_error)
    n, height, width, channels = images.shape
    classes = "unconditional" if class_names is None else f"{len(class_names)} classes: {', '.join(class_names[:10])}"
    print(f"training on {n} images of {height}x{width}x{channels}, {levels} levels ({classes})", flush=True)
    batch_size = min(args.batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    epochs = args.epochs or math.ceil(args.steps / steps_per_epoch)

    def fit(callbacks, verbose):
        return model.fit(images, labels, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks)

    start = time.perf_counter()
    try:
        loss, steps = fit_from_command_line(model, fit, args, training_error, interrupt_check)
    except ValueError as error:
        raise usage_error(f"DATA {args.data!r}: {error}") from None
    print(
        f"trained a UNet of {model.denoiser.network.count_params():,} parameters for {steps} steps "
        f"in {time.perf_counter() - start:.1f} s; final loss {loss:.4f}"
    )
    return model


def check_image_output(path, overwrite):
    """Checks before any work that --out can take a grid (.png) or a folder of PNGs; raises `UsageError` otherwise."""
    from keras_score.cli import UsageError, check_writable_folder  # the CLI is loaded: it calls this

    text = os.fspath(path)
    if table_io.extension(text) == GRID_EXTENSION and not os.path.isdir(text):
        if os.path.exists(text) and not overwrite:
            raise UsageError(f"--out {text!r} already exists; pass --overwrite to replace it.")
        check_writable_folder(os.path.dirname(os.path.abspath(text)), f"--out {text!r}")
        return
    if os.path.exists(text) and not os.path.isdir(text):
        raise UsageError(f"--out {text!r} is a file; expected a .png grid or a folder for one PNG per sample.")
    if os.path.isdir(text) and os.listdir(text) and not overwrite:
        raise UsageError(f"--out {text!r} is a folder that is not empty; pass --overwrite to write into it.")
    check_writable_folder(os.path.dirname(os.path.abspath(text.rstrip("/" + os.sep))) or ".", f"--out {text!r}")


def sample_labels(model, text, num_samples, usage_error):
    """The labels of -n samples and how many classes they cycle through: --labels (names or indices), else every class.

    Returns:
        `(labels, num_labels)`: int32 (num_samples,) and the length of the
        cycle, or (None, 0) for an unconditional model.
    """
    if model.num_classes is None:
        if text is not None:
            raise usage_error("--labels: the model is unconditional; it takes no labels.")
        return None, 0
    names = model.class_names or [str(k) for k in range(model.num_classes)]
    if text is None:
        chosen = list(range(model.num_classes))
    else:
        chosen = []
        for item in text.split(","):
            item = item.strip()
            if item in names:
                chosen.append(names.index(item))
            elif item.isdigit() and int(item) < model.num_classes:
                chosen.append(int(item))
            else:
                raise usage_error(f"--labels: {item!r} is not a class of the model; expected one of {', '.join(names)}.")
    return np.resize(np.asarray(chosen, dtype="int32"), num_samples), len(chosen)


def _grid_columns(num_samples, num_labels):
    if num_labels and num_labels <= MAX_GRID_COLUMNS:
        return min(num_labels, num_samples)
    return math.ceil(math.sqrt(num_samples))


def sample_images(model, args, usage_error, progress, interruptible):
    """`keras-score sample` on an `ImageModel`: a PNG grid at a .png --out, else one PNG per sample in the folder --out.

    Args:
        model: the loaded `ImageModel`.
        args: the parsed arguments of `sample`.
        usage_error: the exception class of a bad command line.
        progress: None, or a function (batches, total, stream) that draws
            a counter while it yields the batches.
        interruptible: a function that yields the batches and raises
            `KeyboardInterrupt` after one for a dropped Ctrl-C.
    """
    from keras_score import images as image_io

    labels, num_labels = sample_labels(model, args.labels, args.num_samples, usage_error)
    try:
        batches = model.generate_batches(
            args.num_samples,
            sampler=args.sampler,
            steps=args.steps,
            seed=args.seed,
            labels=labels,
            guidance_scale=args.guidance_scale,
            batch_size=min(args.batch_size, args.num_samples),
            verbose=0,
        )
    except ValueError as error:
        raise usage_error(str(error)) from None
    if progress:
        batches = progress(batches, args.num_samples, sys.stderr)
    batches = interruptible(batches)
    out = os.fspath(args.out)
    if table_io.extension(out) == GRID_EXTENSION and not os.path.isdir(out):
        images = np.concatenate(list(batches))
        grid = image_io.image_grid(images, columns=_grid_columns(len(images), num_labels))
        scale = max(1, math.ceil(GRID_MIN_PIXELS / max(images.shape[1:3])))
        with table_io.atomic_path(out) as tmp:
            image_io.save_png(tmp, grid, scale=scale)
        print(f"wrote a grid of {len(images)} samples to {out}")
        return
    folder = out.rstrip("/" + os.sep) or out
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".keras-score-samples-")
    try:
        done = 0
        for batch in batches:
            image_io.save_pngs(staging, batch, prefix=SAMPLE_PREFIX, start=done)
            done += len(batch)
        if not os.path.exists(folder):
            os.rename(staging, folder)
        else:
            for name in sorted(os.listdir(staging)):
                os.replace(os.path.join(staging, name), os.path.join(folder, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {args.num_samples} samples as PNG files {SAMPLE_PREFIX}-000000.png, ... to {folder}")
