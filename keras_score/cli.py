"""The `keras-score` command line: train on a typed table or on images, sample from a saved model, run a demo.

    keras-score inspect data.csv [--schema-out schema.json]
    keras-score train data.csv --out model.keras [--steps 500] [--schema schema.json] [--hidden-units 256] ...
    keras-score train images/ --out model.keras [--levels 256] [--image-size 28x28] (or an .npz of images)
    keras-score sample model.keras -n 1000 --out samples.csv [--where gender=F] [--sampler heun] [--steps 32]
    keras-score sample model.keras -n 64 --out grid.png [--labels 3,7] (or --out folder/, one PNG per sample)
    keras-score evaluate model.keras held_out.csv [--train data.csv] [--num-samples 1000] [--divergence exact]
    keras-score demo [--out-dir demo_output] [--data mixture] [--quick]

The backend is the one KERAS_BACKEND or ~/.keras/keras.json names; when
neither names one, the first installed of JAX, TensorFlow and PyTorch.
TensorFlow's start-up log is kept off stderr unless TF_CPP_MIN_LOG_LEVEL is
set. Input and usage errors print one line starting with "error: " on stderr
and exit with status 2; a diverging run, a failed write or a missing backend
exits with status 1, Ctrl-C with status 130. Output files are written
atomically, so a failed run never leaves a partial file behind, and an
existing output is replaced only with --overwrite. `sample` streams its
samples to --out batch by batch, with a counter on stderr when stderr is a
terminal, so its memory does not grow with -n.
"""

import argparse
import contextlib
import csv
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
import zipfile

import numpy as np

from keras_score import cli_images, cli_tables
from keras_score import io as table_io
from keras_score.cli_training import fit_from_command_line
from keras_score.validation import SEED_MAX

TRAIN_DEFAULTS = {"steps": None, "batch_size": 256, "hidden_units": 256, "blocks": 3, "learning_rate": 2e-3}
DEMO_DEFAULTS = {"steps": 3000, "batch_size": 256, "hidden_units": 128, "blocks": 3, "learning_rate": 1e-3}
QUICK_DEFAULTS = {"steps": 20, "batch_size": 64, "hidden_units": 16, "blocks": 1, "learning_rate": 1e-3}
DEMO_ROWS = 20000
SAMPLER_STEPS = 32
QUICK_SAMPLER_STEPS = 4
EVALUATE_SAMPLES = 1000
HELD_OUT_FRACTION = 0.2
MODEL_EXTENSION = ".keras"
DEMO_FILES = ("model.keras", "samples.csv", "demo.png")
INTERRUPTED_STATUS = 130
BACKENDS = ("jax", "tensorflow", "torch")  # the order in which a backend is chosen when none is named
NO_BACKEND = (
    'no Keras backend is installed; install one with pip install "keras_score[jax]" (or [tensorflow], [torch]) '
    "and choose it with KERAS_BACKEND=jax|tensorflow|torch."
)
# The choices of --sampler and --data, named here so that building the parser
# (and `--help`) imports no Keras; the tests check them against
# keras_score.samplers.SAMPLERS and keras_score.datasets.EMBEDDED.
SAMPLER_NAMES = (
    "annealed_langevin", "ddim", "ddpm", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m", "edm_heun", "edm_stochastic",
    "euler", "euler_maruyama", "heun", "langevin", "predictor_corrector", "rk4", "rk45", "unipc",
)
DATASET_NAMES = ("checkerboard", "digits", "mixture", "moons", "rings", "swiss_roll", "wine")


class UsageError(Exception):
    """A command line that cannot be run: bad arguments or unusable input files."""


class TrainingError(Exception):
    """Training produced a non-finite loss."""


class OutputError(Exception):
    """An output could not be written once the work was done."""


class BackendError(Exception):
    """No Keras backend can be imported."""


class _Interrupts:
    """Remembers a Ctrl-C that Python dropped, for `raise_if_interrupted`.

    A `KeyboardInterrupt` raised inside a garbage-collector callback (JAX
    installs one, and Keras imports JAX, when installed, on every backend) is not raised but
    passed to `sys.unraisablehook`, which would print it as "Exception
    ignored in ..." and go on; here it is recorded instead, and the
    training and sampling loops check for it between batches.
    """

    requested = False

    @classmethod
    @contextlib.contextmanager
    def remembered(cls):
        cls.requested = False
        previous = sys.unraisablehook

        def hook(unraisable):
            if isinstance(unraisable.exc_value, KeyboardInterrupt):
                cls.requested = True
            else:
                previous(unraisable)

        sys.unraisablehook = hook
        try:
            yield
        finally:
            sys.unraisablehook = previous


def raise_if_interrupted():
    """Raises `KeyboardInterrupt` if a Ctrl-C of this run was dropped by Python."""
    if _Interrupts.requested:
        raise KeyboardInterrupt


def _interruptible(batches):
    """Yields `batches`, checking for a dropped Ctrl-C after each."""
    for batch in batches:
        yield batch
        raise_if_interrupted()


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` that raises `UsageError` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _integer(text, minimum, maximum, expected):
    """`text` as an integer in [minimum, maximum] (maximum None: unbounded), else an argparse error."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise argparse.ArgumentTypeError(f"expected {expected}; received {text!r}")
    return value


def levels_int(text):
    """argparse type: a number of pixel levels, an integer ≥ 2."""
    return _integer(text, 2, None, "an integer ≥ 2 (the number of pixel values)")


def positive_int(text):
    """argparse type: an integer ≥ 1."""
    return _integer(text, 1, None, "a positive integer")


def seed_int(text):
    """argparse type: a seed, an integer in [0, 2³¹ − 1] (the range every backend's generator takes)."""
    return _integer(text, 0, SEED_MAX, f"an integer in [0, {SEED_MAX}]")


def _add_seed_argument(parser):
    parser.add_argument("--seed", type=seed_int, default=0, help=f"random seed in [0, {SEED_MAX}] (default 0)")


def _add_overwrite_argument(parser, help):
    parser.add_argument("--overwrite", action="store_true", help=help)


def positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number; received {text!r}")
    return value


def _add_training_arguments(parser, defaults):
    """Adds the network and optimisation options; their defaults are filled in by `_resolve`."""
    images = cli_images.IMAGE_DEFAULTS
    steps = defaults["steps"] or f"a table's 400 passes over its rows, 100-2000; images {images['steps']}"
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int, help="number of passes over the data")
    length.add_argument(
        "--steps", type=positive_int, help=f"number of optimiser steps, rounded up to whole epochs (default {steps})"
    )
    parser.add_argument("--batch-size", type=positive_int, help=f"batch size (default {defaults['batch_size']})")
    parser.add_argument(
        "--hidden-units",
        type=positive_int,
        help=f"width of the MLP (default {defaults['hidden_units']}); for images, the UNet's channels "
        f"(default {images['hidden_units']})",
    )
    parser.add_argument(
        "--blocks",
        type=positive_int,
        help=f"residual blocks of the MLP (default {defaults['blocks']}); for images, the UNet's blocks per level "
        f"(default {images['blocks']})",
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        help=f"peak Adam learning rate, cosine-decayed to 10%% (default {defaults['learning_rate']})",
    )
    _add_seed_argument(parser)
    parser.add_argument("--verbose", action="store_true", help="print the Keras log of every epoch")


def build_parser():
    """The argument parser of `keras-score` (building it imports no Keras)."""
    parser = _Parser(prog="keras-score", description="Score-based generative models for tables, on Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{inspect,train,sample,evaluate,demo}")

    inspect = commands.add_parser("inspect", help="print the schema detected for a table")
    inspect.add_argument("data", metavar="DATA", help="a table: .csv, .parquet, .npy or .npz")
    cli_tables.add_reading_arguments(inspect)
    inspect.add_argument("--schema-out", metavar="JSON", help="also write the schema to this JSON file, to edit")
    inspect.set_defaults(handler=run_inspect)

    train = commands.add_parser("train", help="train a model on a typed table (CSV, Parquet, NPY or NPZ) or on images")
    train.add_argument(
        "data",
        metavar="DATA",
        help="a table: .csv (header detected), .parquet, .npy or .npz; or images: a folder of PNG/JPEG files "
        "(sub-folders are classes) or an .npz of (n, H, W[, C]) images with labels",
    )
    train.add_argument("--out", required=True, help="where to save the model (.keras)")
    _add_overwrite_argument(train, "replace --out if it exists")
    cli_tables.add_reading_arguments(train)
    _add_training_arguments(train, TRAIN_DEFAULTS)
    train.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="write the training state to DIR every --checkpoint-every steps; run the same command again to resume",
    )
    train.add_argument(
        "--checkpoint-every", type=positive_int, default=500, help="steps between checkpoints (default 500)"
    )
    _add_image_arguments(train)
    train.set_defaults(handler=run_train)

    sample = commands.add_parser("sample", help="draw samples from a trained model")
    sample.add_argument("model", metavar="MODEL", help="a model saved by `keras-score train` (.keras)")
    sample.add_argument("-n", "--num-samples", type=positive_int, required=True, help="number of samples")
    sample.add_argument(
        "--out",
        required=True,
        help="where to write the samples (.csv with header or .parquet; .npy for numeric models); "
        "for an image model a .png grid or a folder for one PNG per sample",
    )
    sample.add_argument(
        "--labels",
        metavar="CLASS,...",
        help="class names or indices of a class-conditional image model, cycled over the samples (default: every class)",
    )
    sample.add_argument(
        "--guidance-scale",
        type=float,
        help="classifier-free guidance scale of a class-conditional model (default: none, the conditional model)",
    )
    sample.add_argument(
        "--where",
        action="append",
        metavar="COLUMN=VALUE",
        help="fix a column in every row and sample the others given it (repeat for several columns)",
    )
    _add_overwrite_argument(sample, "replace --out if it exists")
    sample.add_argument("--steps", type=positive_int, default=SAMPLER_STEPS, help="sampler steps (default 32)")
    sample.add_argument("--sampler", default="heun", choices=SAMPLER_NAMES, help="sampler (default heun)")
    sample.add_argument("--batch-size", type=positive_int, default=4096, help="samples per batch (default 4096)")
    _add_seed_argument(sample)
    sample.set_defaults(handler=run_sample)

    evaluate = commands.add_parser(
        "evaluate", help="negative log-likelihood of a table and distances between samples and the table"
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model saved by `keras-score train` (.keras)")
    evaluate.add_argument("data", metavar="DATA", help="table to evaluate on, e.g. held-out rows (.csv, .parquet, .npy, .npz)")
    evaluate.add_argument("--train", metavar="TRAIN", help="the training table, for the closest-record (privacy) check")
    evaluate.add_argument("--delimiter", help="CSV delimiter (default: detected)")
    evaluate.add_argument("--header", dest="header", action="store_true", default=None, help=argparse.SUPPRESS)
    evaluate.add_argument(
        "-n",
        "--num-samples",
        type=positive_int,
        help=f"samples drawn and data rows they are compared with (default: all rows, at most {EVALUATE_SAMPLES})",
    )
    evaluate.add_argument("--steps", type=positive_int, default=SAMPLER_STEPS, help="sampler steps (default 32)")
    evaluate.add_argument("--sampler", default="heun", choices=SAMPLER_NAMES, help="sampler (default heun)")
    evaluate.add_argument(
        "--divergence",
        default="exact",
        choices=["exact", "hutchinson"],
        help="divergence in the likelihood ODE: exact (small tables) or Hutchinson's estimate (default exact)",
    )
    evaluate.add_argument("--batch-size", type=positive_int, default=1024, help="rows per batch (default 1024)")
    _add_seed_argument(evaluate)
    evaluate.set_defaults(handler=run_evaluate)

    demo = commands.add_parser("demo", help="train on an embedded data set and compare samples with held-out data")
    demo.add_argument("--out-dir", default="demo_output", help="folder for the outputs (default demo_output)")
    _add_overwrite_argument(demo, f"replace the {', '.join(DEMO_FILES)} of --out-dir if they exist")
    demo.add_argument("--data", default="mixture", choices=DATASET_NAMES, help="embedded data set (default mixture)")
    demo.add_argument(
        "--rows",
        type=positive_int,
        help=f"rows to use (default {DEMO_ROWS}, or all the rows of a smaller real table)",
    )
    demo.add_argument(
        "--quick", action="store_true", help="tiny defaults for the training options, to run in seconds (a smoke test)"
    )
    _add_training_arguments(demo, DEMO_DEFAULTS)
    demo.set_defaults(handler=run_demo)
    return parser


def _add_image_arguments(parser):
    """Adds `train`'s options for image data."""
    parser.add_argument(
        "--levels", type=levels_int, help="pixel levels of the images (default 256; 17 for scikit-learn's 0-16 digits)"
    )
    parser.add_argument("--image-size", metavar="HxW", help="resize the images of a folder to H x W pixels")
    parser.add_argument(
        "--color-mode",
        choices=["grayscale", "rgb"],
        help="read a folder's images as grayscale or RGB (default: grayscale when all are)",
    )
    parser.add_argument(
        "--channel-multipliers",
        metavar="M1,M2,...",
        help="the UNet's channel multiplier per level (default 1,2, with a level more from 16 and from 64 pixels)",
    )


IMAGE_OPTIONS = ("levels", "image_size", "color_mode", "channel_multipliers")


def _resolve(args, defaults):
    """Fills the options left unset with `defaults`; --epochs, when given, replaces the default --steps."""
    for key, value in defaults.items():
        if getattr(args, key, None) is None and not (key == "steps" and args.epochs is not None):
            setattr(args, key, value)


def fit_model(data, columns, args):
    """Builds, compiles and trains a `ScoreModel(MLP)` on `data` with the options in `args`.

    Returns:
        (model, final_loss, steps): the trained model, the last epoch's mean
        loss and the number of optimiser steps taken.

    Raises:
        TrainingError: if the loss became NaN or Inf.
    """
    import keras

    from keras_score.model import ScoreModel
    from keras_score.networks import MLP

    keras.utils.set_random_seed(args.seed)
    batch_size = min(args.batch_size, len(data))
    steps_per_epoch = math.ceil(len(data) / batch_size)
    epochs = args.epochs or math.ceil(args.steps / steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, epochs * steps_per_epoch, alpha=0.1)
    model = ScoreModel(MLP(args.hidden_units, args.blocks), seed=args.seed, feature_names=columns)
    model.compile(optimizer=keras.optimizers.Adam(schedule))

    def fit(callbacks, verbose):
        return model.fit(data, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks)

    loss, steps = fit_from_command_line(model, fit, args, TrainingError, raise_if_interrupted)
    return model, loss, steps


def _first_line(error):
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_new_output(path, formats, overwrite, argument="--out"):
    """Checks, before any work, that `path` can be written: extension, folder, not there yet (or `overwrite`).

    Raises:
        TableError: for a bad extension, a missing folder or a folder given as the file.
        UsageError: if `path` exists and not `overwrite`, or its folder takes no new file.
    """
    table_io.check_output_path(path, formats, argument)
    if os.path.exists(path) and not overwrite:
        raise UsageError(f"{argument} {str(path)!r} already exists; pass --overwrite to replace it.")
    check_writable_folder(os.path.dirname(os.path.abspath(path)), f"{argument} {str(path)!r}")


def check_writable_folder(folder, target):
    """Creates and removes a temporary file in `folder`, or in the nearest existing folder above it.

    Args:
        folder: the folder outputs will be written to (it may not exist yet).
        target: the argument and its value, for the message, e.g. "--out 'model.keras'".

    Raises:
        UsageError: if no file can be created there.
    """
    folder = os.path.abspath(folder)
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".keras-score-write-check-")
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise UsageError(f"{target}: cannot write to the folder {folder!r} ({error.strerror or error}).") from None


def _save_atomically(model, path):
    with table_io.atomic_path(path) as tmp:
        model.save(tmp)


def save_model(model, path, argument="--out"):
    """Saves `model` to `path` atomically; if that fails, keeps the model in a fallback file.

    The fallback is `keras-score-<timestamp>-<pid>.keras` in the temporary
    folder, else in the current folder.

    Raises:
        OutputError: naming `path`, the reason and where the model was kept.
    """
    try:
        _save_atomically(model, path)
        return
    except Exception as error:  # a full disk, a folder made read-only during training, ...
        reason = _first_line(error)
    name = f"keras-score-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{MODEL_EXTENSION}"
    kept = None
    for folder in (tempfile.gettempdir(), os.getcwd()):
        try:
            _save_atomically(model, os.path.join(folder, name))
        except Exception:
            continue
        kept = os.path.join(folder, name)
        break
    where = f"the trained model was kept in {kept!r}" if kept else "the trained model could not be kept anywhere"
    raise OutputError(f"saving the model to {argument} {str(path)!r} failed ({reason}); {where}.")


def _with_progress(batches, total, stream):
    """Yields `batches` unchanged while a one-line counter of the rows done is drawn on `stream`."""
    done = 0
    try:
        for batch in batches:
            yield batch
            done += len(batch)
            stream.write(f"\rsampled {done}/{total} rows")
            stream.flush()
    finally:
        stream.write("\n")  # an error or Ctrl-C then starts on a line of its own


def write_samples(path, batches, columns, num_rows, progress=False):
    """Writes batches of samples to a CSV (a header, then `%.9g` rows) or NPY file as they come, atomically.

    Only one batch is in memory at a time: CSV rows are appended, an NPY
    file is filled through a memory map.

    Args:
        path: output path ending in .csv or .npy.
        batches: iterable of arrays with `num_rows` rows in all, each row
            of `len(columns)` values (or of a shape that has that many).
        columns: the column names, written as the CSV header.
        num_rows: the number of rows in all.
        progress: draw a counter of the rows written on stderr.
    """
    if progress:
        batches = _with_progress(batches, num_rows, sys.stderr)
    with table_io.atomic_path(path) as tmp:
        if table_io.extension(path) == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\n").writerow(columns)
                for batch in batches:
                    np.savetxt(f, np.reshape(batch, (len(batch), -1)), delimiter=",", fmt="%.9g")
            return
        array, row = None, 0
        for batch in batches:
            batch = np.reshape(batch, (len(batch), -1))
            if array is None:
                shape = (num_rows, batch.shape[1])
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=batch.dtype, shape=shape)
            array[row : row + len(batch)] = batch
            row += len(batch)
        array.flush()
        del array


def _train_and_report(data, columns, args):
    """Trains with `fit_model` and prints a one-line summary."""
    print(f"training on {len(data)} rows x {data.shape[1]} columns ({', '.join(columns[:8])}"
          f"{', ...' if len(columns) > 8 else ''})", flush=True)
    start = time.perf_counter()
    model, loss, steps = fit_model(data, columns, args)
    print(f"trained {steps} steps in {time.perf_counter() - start:.1f} s; final loss {loss:.4f}")
    return model


def run_inspect(args):
    """`keras-score inspect`: prints the detected schema of DATA."""
    return cli_tables.run_inspect(args, UsageError)


def run_train(args):
    """`keras-score train`: reads and types DATA and trains a `TableModel`, or reads images and trains an `ImageModel`; saves --out."""
    images = cli_images.is_image_data(args.data)
    _resolve(args, cli_images.IMAGE_DEFAULTS if images else TRAIN_DEFAULTS)
    check_new_output(args.out, (MODEL_EXTENSION,), args.overwrite)
    if images:
        model = cli_images.train_images(args, UsageError, TrainingError, raise_if_interrupted)
    else:
        given = [name for name in IMAGE_OPTIONS if getattr(args, name) is not None]
        if given:
            option = "--" + given[0].replace("_", "-")
            raise UsageError(f"{option} applies to images (a folder or an .npz of images); DATA {args.data!r} is a table.")
        frame, schema = cli_tables.read_typed_table(args, UsageError)
        try:
            model = cli_tables.report_training(frame, schema, args, TrainingError, raise_if_interrupted)
        except ValueError as error:
            raise UsageError(str(error)) from None
    save_model(model, args.out)
    args.written.append(args.out)
    print(f"saved model to {args.out}")
    return 0


def load_score_model(path):
    """Loads a `ScoreModel` saved as a .keras file, with a one-line error for anything else."""
    table_io.check_input_file(path, "MODEL")
    if table_io.extension(path) != MODEL_EXTENSION or not zipfile.is_zipfile(path):
        raise UsageError(f"MODEL {path!r} is not a .keras model file; expected a model saved by `keras-score train`.")
    import keras

    from keras_score.model import ScoreModel

    try:
        # safe_mode refuses what would run code at load (Lambda bytecode, functions outside Keras).
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for foreign, corrupt or crafted archives.
        raise UsageError(f"MODEL {path!r} cannot be loaded as a keras_score model ({_first_line(error)}).") from None
    if not isinstance(model, ScoreModel) or model.data_shape is None:
        raise UsageError(
            f"MODEL {path!r} holds a {type(model).__name__}, not a trained keras_score ScoreModel; "
            "expected a model saved by `keras-score train`."
        )
    return model


def run_sample(args):
    """`keras-score sample`: loads MODEL, generates -n samples batch by batch, streams them to --out."""
    from keras_score.images import ImageModel

    image_output = cli_images.is_image_output(args.out)
    if image_output:
        cli_images.check_image_output(args.out, args.overwrite)
    else:
        check_new_output(args.out, table_io.WRITE_FORMATS + table_io.TABLE_WRITE_FORMATS, args.overwrite)
    model = load_score_model(args.model)
    if isinstance(model, ImageModel) != image_output:
        expected = "a .png grid or a folder" if isinstance(model, ImageModel) else "a table (.csv, .parquet or .npy)"
        kind = "images" if isinstance(model, ImageModel) else "rows"
        raise UsageError(f"--out {args.out!r}: MODEL {args.model!r} samples {kind}; expected {expected}.")
    if image_output:
        if args.where:
            raise UsageError("--where applies to a model of a typed table; for an image model give --labels.")
        progress = _with_progress if sys.stderr.isatty() else None
        cli_images.sample_images(model, args, UsageError, progress, _interruptible)
        args.written.append(args.out)
        return 0
    if args.labels is not None or args.guidance_scale is not None:
        raise UsageError("--labels and --guidance-scale apply to a class-conditional image model.")
    if cli_tables.is_table_model(model):
        progress = _with_progress if sys.stderr.isatty() else None
        cli_tables.sample_table(model, args, UsageError, progress, _interruptible, write_samples)
        args.written.append(args.out)
        return 0
    if args.where:
        raise UsageError("--where needs a model of a typed table (saved by this version of `keras-score train`).")
    batches = model.generate_batches(
        args.num_samples,
        sampler=args.sampler,
        steps=args.steps,
        seed=args.seed,
        batch_size=min(args.batch_size, args.num_samples),
        verbose=0,
    )
    num_columns = math.prod(model.data_shape)
    columns = model.feature_names or table_io.default_column_names(num_columns)
    write_samples(args.out, _interruptible(batches), columns, args.num_samples, progress=sys.stderr.isatty())
    args.written.append(args.out)
    print(f"wrote {args.num_samples} samples x {num_columns} columns to {args.out}")
    return 0


def run_evaluate(args):
    """`keras-score evaluate`: NLL of DATA under MODEL and sample-to-data distances."""
    from keras_score.likelihood import bits_per_dim
    from keras_score.metrics import maximum_mean_discrepancy, sliced_wasserstein_distance

    model = load_score_model(args.model)
    if cli_tables.is_table_model(model):
        cli_tables.evaluate_table(model, args, UsageError)
        return 0
    if model.data_shape is not None and len(model.data_shape) > 1:
        raise UsageError(
            f"MODEL {args.model!r} models images; `evaluate` takes models of tables. For images, "
            "ImageModel.bits_per_dim gives the likelihood and benchmarks/images.py the FID."
        )
    data, _ = table_io.read_table(args.data)
    num_dims = math.prod(model.data_shape)
    if data.shape[1] != num_dims:
        raise UsageError(
            f"DATA {args.data!r} has {data.shape[1]} columns; the model was trained on {num_dims}."
        )
    data = data.reshape((len(data),) + tuple(model.data_shape))
    if len(data) < 2:
        raise UsageError(f"DATA {args.data!r} has {len(data)} row; expected at least 2 to compare samples with.")
    num_samples = args.num_samples or min(len(data), EVALUATE_SAMPLES)
    if num_samples < 2:
        raise UsageError(f"-n/--num-samples: expected at least 2 samples to compare; received {num_samples}.")
    print(f"evaluating on {len(data)} rows x {num_dims} columns", flush=True)
    start = time.perf_counter()
    log_p, details = model.log_prob(
        data, divergence=args.divergence, seed=args.seed, batch_size=args.batch_size, return_details=True
    )
    nll = -float(np.mean(log_p))
    bpd = float(np.mean(bits_per_dim(log_p, num_dims)))
    print(
        f"NLL = {nll:.4f} nats per row = {bpd:.4f} bits per dimension "
        f"(probability-flow ODE, RK45, {args.divergence} divergence, "
        f"{details['num_function_evals']} evaluations, {time.perf_counter() - start:.1f} s)"
    )
    samples = model.generate(
        num_samples,
        sampler=args.sampler,
        steps=args.steps,
        seed=args.seed,
        batch_size=min(args.batch_size, num_samples),
    )
    rows = np.random.default_rng(args.seed).permutation(len(data))[:num_samples]
    reference = data[rows]
    print(
        f"samples vs data ({num_samples} samples, {len(reference)} rows; {args.sampler}, {args.steps} steps): "
        f"sliced Wasserstein = {sliced_wasserstein_distance(samples, reference):.4f} | "
        f"MMD² (RBF, median bandwidth) = {maximum_mean_discrepancy(samples, reference):.5f}"
    )
    return 0


def split_held_out(data, fraction, seed):
    """Shuffles the rows of `data` and splits them into (train, held_out)."""
    rows = np.random.default_rng(seed).permutation(len(data))
    num_held_out = max(1, int(round(fraction * len(data))))
    return data[rows[num_held_out:]], data[rows[:num_held_out]]


def plot_comparison(path, data, samples, columns):
    """Saves a PNG with the data's and the samples' first two columns side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x, y = (0, 1) if data.shape[1] > 1 else (0, 0)
    figure, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    for ax, points, title in zip(axes, (data, samples), ("held-out data", "samples")):
        ax.scatter(points[:, x], points[:, y], s=3, alpha=0.5)
        ax.set_title(f"{title} ({len(points)})")
        ax.set_xlabel(columns[x])
    axes[0].set_ylabel(columns[y])
    figure.tight_layout()
    with table_io.atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)


def load_demo_data(args):
    """The demo's table: --rows rows, or `DEMO_ROWS` rows (all the rows of a smaller real table)."""
    from keras_score import datasets

    if args.rows is not None and args.rows < 2:
        raise UsageError(f"--rows: expected at least 2 rows to hold some out; received {args.rows}.")
    try:
        return datasets.load(args.data, n=args.rows or DEMO_ROWS, seed=args.seed)
    except ValueError as error:
        if args.rows is not None:
            raise UsageError(f"--rows: {error}") from None
    return datasets.load(args.data, seed=args.seed)


def run_demo(args):
    """`keras-score demo`: trains on an embedded data set and reports the sliced Wasserstein distances."""
    from keras_score.metrics import sliced_wasserstein_distance

    _resolve(args, QUICK_DEFAULTS if args.quick else DEMO_DEFAULTS)
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise UsageError(f"--out-dir {args.out_dir!r} is a file; expected a folder.")
    paths = {name: os.path.join(args.out_dir, name) for name in DEMO_FILES}
    existing = [name for name, path in paths.items() if os.path.exists(path)]
    if existing and not args.overwrite:
        raise UsageError(
            f"--out-dir {args.out_dir!r} already holds {', '.join(existing)}; pass --overwrite to replace them."
        )
    check_writable_folder(args.out_dir, f"--out-dir {args.out_dir!r}")
    start = time.perf_counter()
    data, columns = load_demo_data(args)
    train, held_out = split_held_out(data, HELD_OUT_FRACTION, args.seed)
    model = _train_and_report(train, columns, args)
    os.makedirs(args.out_dir, exist_ok=True)
    save_model(model, paths["model.keras"], "--out-dir")
    args.written.append(paths["model.keras"])
    steps = QUICK_SAMPLER_STEPS if args.quick else SAMPLER_STEPS
    samples = model.generate(len(held_out), sampler="heun", steps=steps, seed=args.seed)
    write_samples(paths["samples.csv"], [samples], columns, len(samples))
    args.written.append(paths["samples.csv"])
    plot_comparison(paths["demo.png"], held_out, samples, columns)
    args.written.append(paths["demo.png"])
    reference = train[: len(held_out)]
    print(
        f"sliced Wasserstein(samples, held-out) = {sliced_wasserstein_distance(samples, held_out):.3f} | "
        f"(training rows, held-out) = {sliced_wasserstein_distance(reference, held_out):.3f} [noise floor]"
    )
    print(f"wrote model.keras, samples.csv and demo.png to {args.out_dir} in {time.perf_counter() - start:.1f} s")
    return 0


def configured_backend():
    """The backend that KERAS_BACKEND or Keras' keras.json names, or None when neither does.

    keras.json is looked for where Keras looks: in $KERAS_HOME, else in
    ~/.keras (/tmp/.keras when the home folder is read-only).
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    folder = os.environ.get("KERAS_HOME")
    if folder is None:
        home = os.path.expanduser("~")
        folder = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(folder, "keras.json")) as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend else None


def _installed(module):
    """Whether `module` can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def choose_backend():
    """The Keras backend to run on: the one named, else the first installed of `BACKENDS` (set in KERAS_BACKEND).

    Returns:
        The backend's name, or None once Keras is imported (its backend is then fixed).

    Raises:
        BackendError: if no backend is named and none is installed.
    """
    backend = configured_backend()
    if backend is not None or "keras" in sys.modules:
        return backend
    for name in BACKENDS:
        if _installed(name):
            os.environ["KERAS_BACKEND"] = name
            return name
    raise BackendError(NO_BACKEND)


def quiet_tensorflow():
    """Sets TF_CPP_MIN_LOG_LEVEL=3 and TF_ENABLE_ONEDNN_OPTS=0 where unset; returns whether the log level was unset."""
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return quiet


@contextlib.contextmanager
def _stderr_silenced():
    """Points file descriptor 2 at /dev/null for the block: C++ libraries write there, past `sys.stderr`."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_keras(backend, quiet):
    """Imports Keras on `backend`; with `quiet` on TensorFlow, with stderr silenced while Keras imports it.

    Raises:
        BackendError: if the backend cannot be imported.
    """
    silence = quiet and backend == "tensorflow" and "keras" not in sys.modules
    try:
        # The absl and CPU-feature lines TensorFlow prints as it is imported precede its own logging settings.
        with _stderr_silenced() if silence else contextlib.nullcontext():
            import keras  # noqa: F401
    except Exception as error:
        backend = backend or "tensorflow"  # Keras' default
        install = f'install it with pip install "keras_score[{backend}]" or ' if backend in BACKENDS else ""
        raise BackendError(
            f"the Keras backend {backend!r} cannot be imported ({_first_line(error)}); "
            f"{install}choose one with KERAS_BACKEND=jax|tensorflow|torch."
        ) from None


def _interrupted_message(args):
    """The message of a run stopped by Ctrl-C: what was written, if anything."""
    written = getattr(args, "written", None)
    resume = ""
    if getattr(args, "checkpoint", None) and os.path.exists(os.path.join(args.checkpoint, "checkpoint.json")):
        resume = f" Training can resume from the checkpoint in {args.checkpoint!r}: run the same command again."
    if not written:
        return f"interrupted; nothing was written.{resume}"
    return f"interrupted; wrote only {', '.join(written)} (no partial file was left).{resume}"


def main(argv=None):
    """Runs `keras-score` with `argv` (default: `sys.argv[1:]`) and returns the exit status.

    Parsing (and `--help`) imports no Keras; the backend is chosen and
    imported only for a command that runs.
    """
    quiet = quiet_tensorflow()
    args = None
    try:
        with _Interrupts.remembered():
            args = build_parser().parse_args(argv)
            args.written = []
            import_keras(choose_backend(), quiet)
            return args.handler(args)
    except SystemExit as exit_request:  # --help
        return exit_request.code
    except KeyboardInterrupt:
        print(f"error: {_interrupted_message(args)}", file=sys.stderr)
        return INTERRUPTED_STATUS
    except (UsageError, table_io.TableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TrainingError, OutputError, BackendError, FloatingPointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
