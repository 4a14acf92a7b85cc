"""The `keras-score` command line: train on a table, sample from a saved model, run a demo.

    keras-score train data.csv --out model.keras [--steps 3000] [--hidden-units 128] ...
    keras-score sample model.keras -n 1000 --out samples.csv [--sampler heun] [--steps 32]
    keras-score evaluate model.keras data.csv [--num-samples 1000] [--steps 32] [--divergence exact]
    keras-score demo [--out-dir demo_output] [--data mixture] [--quick]

The backend comes from the KERAS_BACKEND environment variable. Input and
usage errors print one line starting with "error: " on stderr and exit with
status 2; a diverging run or a failed write exits with status 1. Output files are
written atomically, so a failed run never leaves a partial file behind.
"""

import argparse
import math
import os
import sys
import time
import zipfile

from keras_score import io as table_io

TRAIN_DEFAULTS = {"steps": 3000, "batch_size": 256, "hidden_units": 128, "blocks": 3, "learning_rate": 1e-3}
QUICK_DEFAULTS = {"steps": 20, "batch_size": 64, "hidden_units": 16, "blocks": 1, "learning_rate": 1e-3}
DEMO_ROWS = 20000
SAMPLER_STEPS = 32
QUICK_SAMPLER_STEPS = 4
EVALUATE_SAMPLES = 1000
HELD_OUT_FRACTION = 0.2
MODEL_EXTENSION = ".keras"


class UsageError(Exception):
    """A command line that cannot be run: bad arguments or unusable input files."""


class TrainingError(Exception):
    """Training produced a non-finite loss."""


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` that raises `UsageError` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def positive_int(text):
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text!r}")
    return value


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
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int, help="number of passes over the data")
    length.add_argument(
        "--steps",
        type=positive_int,
        help=f"number of optimiser steps, rounded up to whole epochs (default {defaults['steps']})",
    )
    parser.add_argument("--batch-size", type=positive_int, help=f"batch size (default {defaults['batch_size']})")
    parser.add_argument(
        "--hidden-units", type=positive_int, help=f"width of the MLP (default {defaults['hidden_units']})"
    )
    parser.add_argument(
        "--blocks", type=positive_int, help=f"residual blocks of the MLP (default {defaults['blocks']})"
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        help=f"peak Adam learning rate, cosine-decayed to 10%% (default {defaults['learning_rate']})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--verbose", action="store_true", help="print the Keras log of every epoch")


def build_parser():
    """The argument parser of `keras-score`."""
    from keras_score.datasets import EMBEDDED
    from keras_score.samplers import SAMPLERS

    parser = _Parser(prog="keras-score", description="Score-based generative models for tables, on Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,sample,evaluate,demo}")

    train = commands.add_parser("train", help="train a model on a CSV, NPY or NPZ table")
    train.add_argument("data", metavar="DATA", help="training table: .csv (optional header row), .npy or .npz")
    train.add_argument("--out", required=True, help="where to save the model (.keras)")
    _add_training_arguments(train, TRAIN_DEFAULTS)
    train.set_defaults(handler=run_train)

    sample = commands.add_parser("sample", help="draw samples from a trained model")
    sample.add_argument("model", metavar="MODEL", help="a model saved by `keras-score train` (.keras)")
    sample.add_argument("-n", "--num-samples", type=positive_int, required=True, help="number of samples")
    sample.add_argument("--out", required=True, help="where to write the samples (.csv with header, or .npy)")
    sample.add_argument("--steps", type=positive_int, default=SAMPLER_STEPS, help="sampler steps (default 32)")
    sample.add_argument("--sampler", default="heun", choices=sorted(SAMPLERS), help="sampler (default heun)")
    sample.add_argument("--batch-size", type=positive_int, default=4096, help="samples per batch (default 4096)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.set_defaults(handler=run_sample)

    evaluate = commands.add_parser(
        "evaluate", help="negative log-likelihood of a table and distances between samples and the table"
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model saved by `keras-score train` (.keras)")
    evaluate.add_argument("data", metavar="DATA", help="table to evaluate on (.csv, .npy or .npz), e.g. held-out rows")
    evaluate.add_argument(
        "-n",
        "--num-samples",
        type=positive_int,
        help=f"samples drawn and data rows they are compared with (default: all rows, at most {EVALUATE_SAMPLES})",
    )
    evaluate.add_argument("--steps", type=positive_int, default=SAMPLER_STEPS, help="sampler steps (default 32)")
    evaluate.add_argument("--sampler", default="heun", choices=sorted(SAMPLERS), help="sampler (default heun)")
    evaluate.add_argument(
        "--divergence",
        default="exact",
        choices=["exact", "hutchinson"],
        help="divergence in the likelihood ODE: exact (small tables) or Hutchinson's estimate (default exact)",
    )
    evaluate.add_argument("--batch-size", type=positive_int, default=1024, help="rows per batch (default 1024)")
    evaluate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    evaluate.set_defaults(handler=run_evaluate)

    demo = commands.add_parser("demo", help="train on an embedded data set and compare samples with held-out data")
    demo.add_argument("--out-dir", default="demo_output", help="folder for the outputs (default demo_output)")
    demo.add_argument("--data", default="mixture", choices=sorted(EMBEDDED), help="embedded data set (default mixture)")
    demo.add_argument(
        "--rows",
        type=positive_int,
        help=f"rows to use (default {DEMO_ROWS}, or all the rows of a smaller real table)",
    )
    demo.add_argument(
        "--quick", action="store_true", help="tiny defaults for the training options, to run in seconds (a smoke test)"
    )
    _add_training_arguments(demo, TRAIN_DEFAULTS)
    demo.set_defaults(handler=run_demo)
    return parser


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
    try:
        history = model.fit(data, batch_size=batch_size, epochs=epochs, verbose=2 if args.verbose else 0)
    except FloatingPointError as error:
        raise TrainingError(f"training diverged; try a smaller --learning-rate. {error}") from None
    loss = history.history["loss"][-1]
    return model, loss, epochs * steps_per_epoch


def save_model(model, path):
    """Saves `model` to `path` atomically."""
    with table_io.atomic_path(path) as tmp:
        model.save(tmp)


def _train_and_report(data, columns, args):
    """Trains with `fit_model` and prints a one-line summary."""
    print(f"training on {len(data)} rows x {data.shape[1]} columns ({', '.join(columns[:8])}"
          f"{', ...' if len(columns) > 8 else ''})", flush=True)
    start = time.perf_counter()
    model, loss, steps = fit_model(data, columns, args)
    print(f"trained {steps} steps in {time.perf_counter() - start:.1f} s; final loss {loss:.4f}")
    return model


def run_train(args):
    """`keras-score train`: reads DATA, trains, saves --out."""
    _resolve(args, TRAIN_DEFAULTS)
    table_io.check_output_path(args.out, (MODEL_EXTENSION,))
    data, columns = table_io.read_table(args.data)
    model = _train_and_report(data, columns, args)
    save_model(model, args.out)
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
        model = keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for foreign or corrupt archives.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"MODEL {path!r} cannot be loaded as a keras_score model ({reason}).") from None
    if not isinstance(model, ScoreModel) or model.data_shape is None:
        raise UsageError(
            f"MODEL {path!r} holds a {type(model).__name__}, not a trained keras_score ScoreModel; "
            "expected a model saved by `keras-score train`."
        )
    return model


def run_sample(args):
    """`keras-score sample`: loads MODEL, generates -n samples, writes --out."""
    table_io.check_output_path(args.out, table_io.WRITE_FORMATS)
    model = load_score_model(args.model)
    samples = model.generate(
        args.num_samples,
        sampler=args.sampler,
        steps=args.steps,
        seed=args.seed,
        batch_size=min(args.batch_size, args.num_samples),
    )
    samples = samples.reshape(len(samples), -1)
    columns = model.feature_names or table_io.default_column_names(samples.shape[1])
    table_io.write_table(args.out, samples, columns)
    print(f"wrote {len(samples)} samples x {samples.shape[1]} columns to {args.out}")
    return 0


def run_evaluate(args):
    """`keras-score evaluate`: NLL of DATA under MODEL and sample-to-data distances."""
    import numpy as np

    from keras_score.likelihood import bits_per_dim
    from keras_score.metrics import maximum_mean_discrepancy, sliced_wasserstein_distance

    model = load_score_model(args.model)
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
    import numpy as np

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

    _resolve(args, QUICK_DEFAULTS if args.quick else TRAIN_DEFAULTS)
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise UsageError(f"--out-dir {args.out_dir!r} is a file; expected a folder.")
    start = time.perf_counter()
    data, columns = load_demo_data(args)
    train, held_out = split_held_out(data, HELD_OUT_FRACTION, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    model = _train_and_report(train, columns, args)
    save_model(model, os.path.join(args.out_dir, "model.keras"))
    steps = QUICK_SAMPLER_STEPS if args.quick else SAMPLER_STEPS
    samples = model.generate(len(held_out), sampler="heun", steps=steps, seed=args.seed)
    table_io.write_table(os.path.join(args.out_dir, "samples.csv"), samples, columns)
    plot_comparison(os.path.join(args.out_dir, "demo.png"), held_out, samples, columns)
    reference = train[: len(held_out)]
    print(
        f"sliced Wasserstein(samples, held-out) = {sliced_wasserstein_distance(samples, held_out):.3f} | "
        f"(training rows, held-out) = {sliced_wasserstein_distance(reference, held_out):.3f} [noise floor]"
    )
    print(f"wrote model.keras, samples.csv and demo.png to {args.out_dir} in {time.perf_counter() - start:.1f} s")
    return 0


def main(argv=None):
    """Runs `keras-score` with `argv` (default: `sys.argv[1:]`) and returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except SystemExit as exit_request:  # --help
        return exit_request.code
    except (UsageError, table_io.TableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TrainingError, FloatingPointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
