"""The table commands of `keras-score`: inspect a table, train a `TableModel`, sample and evaluate it.

`keras_score.cli` parses the command line and handles errors; these
functions do the work of `inspect`, `train`, and of `sample` and `evaluate`
on a model of a typed table. Messages that a user should read go to stdout,
notes about how the input was read start with "note: ".
"""

import sys
import time

import numpy as np

from keras_score import io as table_io
from keras_score.cli_training import fit_from_command_line


def add_reading_arguments(parser):
    """--delimiter, --header / --no-header and --schema: how DATA is read and typed."""
    parser.add_argument("--delimiter", help="CSV delimiter (default: detected among , ; tab |)")
    header = parser.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None, help="the first row names the columns")
    header.add_argument("--no-header", dest="header", action="store_false", help="the first row is data")
    parser.add_argument(
        "--schema", metavar="JSON", help="column types and fields overriding the detected ones (see docs/tables.md)"
    )


def delimiter(args, usage_error):
    """The --delimiter character ("\\t" typed as two characters means a tab), or None to detect it."""
    if args.delimiter is None:
        return None
    character = args.delimiter.replace("\\t", "\t")
    if len(character) != 1:
        raise usage_error(f"--delimiter: expected one character; received {args.delimiter!r}.")
    return character


def read_typed_table(args, usage_error):
    """(frame, schema, hints) of DATA as `args` say, printing the reading notes; errors as `usage_error`."""
    from keras_score.tables import TableSchema

    frame, hints, notes = table_io.read_frame(args.data, delimiter=delimiter(args, usage_error), header=args.header)
    for note in notes:
        print(f"note: {note}", flush=True)
    try:
        schema = TableSchema.detect(frame, overrides=args.schema, hints=hints)
    except ValueError as error:
        raise usage_error(f"--schema: {error}" if args.schema else f"DATA {args.data!r}: {error}") from None
    return frame, schema


def run_inspect(args, usage_error):
    """`keras-score inspect`: prints the schema detected for DATA; --schema-out writes it as JSON."""
    frame, schema = read_typed_table(args, usage_error)
    print(f"{args.data}: {len(frame)} rows x {frame.shape[1]} columns")
    print(schema.describe())
    if args.schema_out:
        table_io.check_output_path(args.schema_out, (".json",), "--schema-out")
        with table_io.atomic_path(args.schema_out) as tmp:
            schema.to_json(tmp)
        print(f"wrote the schema to {args.schema_out}")
    return 0


def train_table_model(args, frame, schema, training_error, interrupt_check=None):
    """Builds and trains a `TableModel` with the options in `args`; returns (model, final loss, steps)."""
    import keras

    from keras_score.networks import MLP
    from keras_score.tables import TableModel

    keras.utils.set_random_seed(args.seed)
    model = TableModel(MLP(args.hidden_units, args.blocks), schema=schema, seed=args.seed)

    def fit(callbacks, verbose):
        return model.fit(
            frame,
            steps=None if args.epochs else args.steps,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            verbose=verbose,
            callbacks=callbacks,
        )

    loss, steps = fit_from_command_line(model, fit, args, training_error, interrupt_check)
    return model, loss, steps


def report_training(frame, schema, args, training_error, interrupt_check=None):
    """Prints the table's shape and schema, trains, prints a one-line summary; returns the model."""
    print(f"training on {len(frame)} rows x {frame.shape[1]} columns:", flush=True)
    print("  " + schema.describe().replace("\n", "\n  "), flush=True)
    start = time.perf_counter()
    model, loss, steps = train_table_model(args, frame, schema, training_error, interrupt_check)
    print(f"trained {steps} steps in {time.perf_counter() - start:.1f} s; final loss {loss:.4f}")
    return model


def sample_table(model, args, usage_error, progress, interruptible, write_array_samples):
    """Streams `-n` rows of a `TableModel` (with --where) to --out batch by batch.

    CSV and Parquet keep the table's types and formats; NPY takes a table of
    numbers only (written by `write_array_samples`, the CLI's numeric writer).
    """
    from keras_score.tables.text import parse_where

    try:
        where = parse_where(args.where or [], model.schema)
        frames = model.generate_frames(
            args.num_samples,
            where=where,
            sampler=args.sampler,
            steps=args.steps,
            seed=args.seed,
            batch_size=min(args.batch_size, args.num_samples),
            verbose=0,
        )
    except ValueError as error:
        raise usage_error(str(error)) from None
    if table_io.extension(args.out) == ".npy":
        text = [c.name for c in model.schema.columns if c.type not in ("continuous", "integer", "discrete")]
        if text:
            raise usage_error(f"--out {args.out!r}: NPY holds numbers only, and {text[0]!r} is not; write .csv or .parquet.")
        arrays = (frame.to_numpy(dtype=np.float64, na_value=np.nan) for frame in interruptible(frames))
        write_array_samples(args.out, arrays, model.schema.names, args.num_samples, progress=progress is not None)
    else:
        if progress:
            frames = progress(frames, args.num_samples, sys.stderr)
        with table_io.FrameWriter(args.out, model.schema) as writer:
            for frame in interruptible(frames):
                writer.write(frame)
    print(f"wrote {args.num_samples} samples x {len(model.schema)} columns to {args.out}")


def evaluate_table(model, args, usage_error):
    """`keras-score evaluate` on a `TableModel`: encoded NLL, sample distances, and the closest-record check."""
    from keras_score.likelihood import bits_per_dim
    from keras_score.metrics import maximum_mean_discrepancy, sliced_wasserstein_distance
    from keras_score.tables import closest_record_report

    def read(path, argument):
        frame, _, _ = table_io.read_frame(path, argument, delimiter=delimiter(args, usage_error), header=args.header)
        if list(frame.columns) == table_io.default_column_names(len(model.schema)):  # no header: the model's names
            frame.columns = model.schema.names
        frame = _typed_like(frame, model.schema)
        if list(frame.columns) != model.schema.names:
            raise usage_error(
                f"{argument} {path!r} has {frame.shape[1]} columns; the model was trained on {len(model.schema)} "
                f"({', '.join(model.schema.names[:8])}{', ...' if len(model.schema) > 8 else ''}), "
                "same names in the same order."
            )
        return frame

    held_out = read(args.data, "DATA")
    if len(held_out) < 2:
        raise usage_error(f"DATA {args.data!r} has {len(held_out)} row; expected at least 2 to compare samples with.")
    num_samples = args.num_samples or min(len(held_out), 1000)
    encoded = model.transform.transform(held_out, strict=False)
    print(f"evaluating on {len(held_out)} rows x {len(model.schema)} columns ({encoded.shape[1]} encoded)", flush=True)
    start = time.perf_counter()
    log_p, details = model.log_prob(
        encoded, divergence=args.divergence, seed=args.seed, batch_size=args.batch_size, return_details=True
    )
    print(
        f"NLL = {-float(np.mean(log_p)):.4f} nats per row = "
        f"{float(np.mean(bits_per_dim(log_p, encoded.shape[1]))):.4f} bits per dimension, of the rows' encoding "
        f"(probability-flow ODE, RK45, {args.divergence} divergence, {details['num_function_evals']} evaluations, "
        f"{time.perf_counter() - start:.1f} s)"
    )
    synthetic = model.generate(num_samples, sampler=args.sampler, steps=args.steps, seed=args.seed, verbose=0)
    reference = encoded[np.random.default_rng(args.seed).permutation(len(encoded))[:num_samples]]
    samples = model.encode(synthetic)
    print(
        f"samples vs data in the encoding ({num_samples} samples, {len(reference)} rows; {args.sampler}, "
        f"{args.steps} steps): sliced Wasserstein = {sliced_wasserstein_distance(samples, reference):.4f} | "
        f"MMD² (RBF, median bandwidth) = {maximum_mean_discrepancy(samples, reference):.5f}"
    )
    if not args.train:
        print("closest-record check: pass --train TRAIN (the training table) to compare synthetic rows with it")
        return
    train = read(args.train, "--train")
    report = closest_record_report(model.transform, synthetic, train, held_out)
    print(
        f"closest training record: median distance {report['synthetic_median']:.4f} for synthetic rows, "
        f"{report['held_out_median']:.4f} for held-out rows; exact copies {100 * report['exact_copies']:.1f}% "
        f"(held-out rows: {100 * report['held_out_exact_copies']:.1f}%); synthetic rows closer than 95% of "
        f"held-out rows: {100 * report['closer_than_held_out_5th']:.1f}% (about 5% when records are not copied)"
    )


def _typed_like(frame, schema):
    """`frame` with its columns cast to the schema's dtypes where they differ (e.g. ints read from a CSV of floats)."""
    for column in schema.columns:
        if column.name in frame.columns and str(frame[column.name].dtype) != column.dtype:
            try:
                frame[column.name] = frame[column.name].astype(column.dtype)
            except (TypeError, ValueError):
                pass
    return frame


def is_table_model(model):
    from keras_score.tables import TableModel

    return isinstance(model, TableModel)

