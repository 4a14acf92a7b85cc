"""Tables: keras_score's TableModel against SDV's synthesizers on seven small real tables.

Usage (in the benchmark venv, see benchmarks/requirements-tables.txt):
    python benchmarks/tables.py [--tables wine,fair,...] [--synthesizers keras_score,gaussian_copula,ctgan,tvae]
                                [--backend jax] [--out results.json] [--reuse earlier.json] [--no-run] [--quick]
    python benchmarks/tables.py --ceiling [--tables ...]

`keras_score_standard` is keras_score with `numerical="standard"` (standardised numbers instead of
quantile normalisation). `--ceiling` prints instead what an exact model would score: the quality
of one independent draw from a known law against another of the train rows' size (`law_ceiling`).

`--quick` is a smoke run (CTGAN/TVAE 2 epochs, keras_score 20 steps): `--quick --tables wine`
checks the harness in about 4 minutes on 2 shared cores, most of it each cell's process importing
SDV, torch and Keras. A full run takes about an hour there, CTGAN on `fair` 8 minutes of it
(with `OMP_NUM_THREADS=1`: torch's two-thread pool degrades on shared cores).

Every table comes from an installed package (scikit-learn, statsmodels, vega_datasets,
palmerpenguins), so nothing is downloaded. Each is split 80/20 into train and holdout rows with
a fixed seed. Each synthesizer is fitted on the train rows and samples as many rows; then

- quality: SDMetrics' `QualityReport` of the sample against the train rows (overall score,
  Column Shapes, Column Pair Trends), with the metadata SDV detects on the train rows, the
  same metadata every SDV synthesizer is given;
- TSTR (train on synthetic, test on real): a HistGradientBoosting classifier (accuracy) or
  regressor (R²) for a fixed target column, trained on the sample and scored on the holdout;
- closest-record distance (DCR): for each sampled row the distance to its closest train row,
  their median, and the share of sampled rows that copy a train row exactly (distance 0). One
  space for every synthesizer: the mean over columns of |Δ| for numbers and datetimes scaled to
  [0, 1] by the train min/max, 0/1 mismatch for categories, 1 for missing against present
  (SDMetrics' DCR space, less its clipping of a column's difference at 1;
  `keras_score.tables.closest_record_distances` measures in the model's own encoding instead,
  which the SDV synthesizers lack);
- fit and sample seconds.

The row `holdout` puts the held-out real rows in the sample's place: its quality is that of
real data the model never saw, its TSTR is the same model trained on the real train rows, its
DCR is how close unseen real rows come to the train rows (and how many duplicate one).

Each (table, synthesizer) runs in its own fresh Python process, so timings do not interfere
and the Keras backend is set before Keras is imported; the processes hand back JSON.
`--reuse FILE` takes the cells FILE already holds instead of running them again (say, SDV's
from an earlier run while keras_score is re-measured); `--no-run` prints only those.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

SPLIT_SEED = 0
HOLDOUT_FRACTION = 0.2
SYNTHESIZERS = ("holdout", "keras_score", "keras_score_standard", "gaussian_copula", "ctgan", "tvae")
QUICK_EPOCHS = 2  # CTGAN and TVAE under --quick (their default is 300)
QUICK_STEPS = 20  # keras_score's optimizer steps under --quick


def _sklearn(name, num_features=None):
    def load():
        from sklearn import datasets

        frame = getattr(datasets, "load_" + name)(as_frame=True).frame
        return frame if num_features is None else frame[list(frame.columns[:num_features]) + ["target"]]

    return load


def _statsmodels(name):
    def load():
        from statsmodels import datasets

        return getattr(datasets, name).load_pandas().data

    return load


def _seattle_weather():
    from vega_datasets import data

    return data.seattle_weather()  # ships inside the package (local_data)


def _penguins():
    import palmerpenguins

    return palmerpenguins.load_penguins()


# name: (loader, target column, task)
TABLES = {
    "wine": (_sklearn("wine"), "target", "classification"),
    "breast_cancer": (_sklearn("breast_cancer", num_features=10), "target", "classification"),
    "diabetes": (_sklearn("diabetes"), "target", "regression"),
    "fair": (_statsmodels("fair"), "affairs", "regression"),
    "grunfeld": (_statsmodels("grunfeld"), "invest", "regression"),
    "seattle_weather": (_seattle_weather, "weather", "classification"),
    "penguins": (_penguins, "species", "classification"),
}


def load_split(name):
    """The table's train and holdout rows (80/20, fixed seed), each with a fresh 0..n-1 index."""
    frame = TABLES[name][0]().reset_index(drop=True)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    num_holdout = int(round(HOLDOUT_FRACTION * len(frame)))
    holdout = frame.iloc[order[:num_holdout]].reset_index(drop=True)
    train = frame.iloc[order[num_holdout:]].reset_index(drop=True)
    return train, holdout


def detect_metadata(name, train):
    """SDV's metadata detected on the train rows (SDV 2.0 keeps only the plural detect_from_dataframes)."""
    from sdv.metadata import Metadata

    return Metadata.detect_from_dataframes({name: train})


# --- synthesizers: each returns (sample, fit seconds, sample seconds, the settings it ran with) --


def _sdv(synthesizer_class, **quick_kwargs):
    def synthesize(name, train, metadata, quick):
        import torch

        torch.manual_seed(0)
        synthesizer = synthesizer_class(metadata, **(quick_kwargs if quick else {}))
        start = time.perf_counter()
        synthesizer.fit({name: train})  # SDV 2.0: single-table synthesizers take and return {table name: frame}
        fitted = time.perf_counter()
        sample = synthesizer.sample(num_rows=len(train))[name]
        return sample, fitted - start, time.perf_counter() - fitted, synthesizer.get_parameters()

    return synthesize


def _keras_score(name, train, metadata, quick, numerical="quantile"):
    import inspect

    from keras_score.tables import TableModel

    model = TableModel(seed=0, numerical=numerical)
    fit_kwargs = {"verbose": 0}
    if quick and "steps" in inspect.signature(model.fit).parameters:
        fit_kwargs["steps"] = QUICK_STEPS
    start = time.perf_counter()
    model.fit(train, **fit_kwargs)
    fitted = time.perf_counter()
    sample = model.generate(len(train), seed=0)
    settings = dict(fit_kwargs, numerical=numerical, optimizer_steps=int(model.optimizer.iterations),
                    parameters=model.count_params())
    return sample, fitted - start, time.perf_counter() - fitted, settings


def _synthesizer(name):
    if name == "keras_score":
        return _keras_score
    if name == "keras_score_standard":  # numbers standardised instead of quantile-normalised
        return lambda *args: _keras_score(*args, numerical="standard")
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    return {
        "gaussian_copula": _sdv(GaussianCopulaSynthesizer),
        "ctgan": _sdv(CTGANSynthesizer, epochs=QUICK_EPOCHS),
        "tvae": _sdv(TVAESynthesizer, epochs=QUICK_EPOCHS),
    }[name]


# --- column kinds, shared by the TSTR features and the distance space ----------------------------


def numeric_columns(train):
    """Columns measured as numbers: numeric dtypes (not bool) and datetimes; every other column is categorical."""
    return [
        column for column in train.columns
        if (pd.api.types.is_numeric_dtype(train[column]) and not pd.api.types.is_bool_dtype(train[column]))
        or pd.api.types.is_datetime64_any_dtype(train[column])
    ]


def as_numbers(values, like):
    """A column as floats (datetimes as days since 1970; NaN where missing or unparseable), read the way `like` is."""
    if pd.api.types.is_datetime64_any_dtype(like):
        dates = pd.to_datetime(values, errors="coerce")
        return ((dates - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def conform(sample, train):
    """The sample with train's columns in train's order and the train dtypes where they convert; the columns whose dtype differed."""
    missing = [column for column in train.columns if column not in sample.columns]
    if missing:
        raise ValueError(f"the sample lacks columns {missing}")
    sample = sample[list(train.columns)].reset_index(drop=True)
    differing = [column for column in train.columns if sample[column].dtype != train[column].dtype]
    for column in differing:
        try:
            sample[column] = sample[column].astype(train[column].dtype)
        except (TypeError, ValueError):
            pass  # e.g. an int64 column with missing cells; as_numbers and str() still read it
    return sample, differing


# --- the three measurements ----------------------------------------------------------------------


def quality(train, sample, metadata, name):
    """SDMetrics' QualityReport of the sample against the train rows: overall, Column Shapes, Column Pair Trends.

    SDMetrics (0.32) averages Column Pair Trends, and so the overall score, over the pairs whose real
    |correlation| exceeds 0.5 or whose real association exceeds 0.3 only; `column_pair_trends_all_pairs`
    is the same property over every pair (both thresholds 0).
    """
    from sdmetrics.reports import QualityReport

    scores = {}
    for suffix, thresholds in (("", None), ("_all_pairs", 0.0)):
        report = QualityReport()
        if thresholds is not None:
            report.real_correlation_threshold = report.real_association_threshold = thresholds
        report.generate({name: train}, {name: sample}, metadata.to_dict(), verbose=False)
        properties = report.get_properties().set_index("Property")["Score"]
        scores["column_pair_trends" + suffix] = float(properties["Column Pair Trends"])
        if thresholds is None:
            pairs = report.get_details("Column Pair Trends", table_name=name)["Meets Threshold?"]
            scores.update(quality=float(report.get_score()), column_shapes=float(properties["Column Shapes"]),
                          pairs_counted=int(pairs.fillna(False).sum()), pairs_total=len(pairs))
    return scores


def tstr(fit_rows, holdout, train, target, task):
    """HistGradientBoosting trained on fit_rows (a sample, or the real train rows), scored on the holdout: accuracy or R²."""
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [column for column in numeric_columns(train) if column != target]
    categorical = [column for column in train.columns if column not in numeric and column != target]

    def features(frame):
        x = pd.DataFrame({column: as_numbers(frame[column], train[column]) for column in numeric})
        for column in categorical:
            x[column] = frame[column].map(lambda value: "\0missing" if pd.isna(value) else str(value))
        return x[categorical + numeric]

    def labels(frame):
        if task == "regression":
            return as_numbers(frame[target], train[target])
        return frame[target].map(lambda value: np.nan if pd.isna(value) else str(value)).to_numpy(dtype=object)

    y = labels(fit_rows)
    keep = ~pd.isna(y)
    x, y = features(fit_rows)[keep], y[keep]
    # Ordinal codes into native categorical splits; a category the fit rows lack is read as missing.
    encoder = ColumnTransformer(
        [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), categorical)],
        remainder="passthrough",
    )
    mask = [True] * len(categorical) + [False] * len(numeric)
    if task == "regression":
        model = make_pipeline(encoder, HistGradientBoostingRegressor(categorical_features=mask, random_state=0))
    elif len(set(y)) < 2:
        model = DummyClassifier(strategy="most_frequent")  # a sample with one class left
    else:
        model = make_pipeline(encoder, HistGradientBoostingClassifier(categorical_features=mask, random_state=0))
    model.fit(x, y)
    predictions = model.predict(features(holdout))
    score = r2_score if task == "regression" else accuracy_score
    return float(score(labels(holdout), predictions))


def distance_space(train):
    """Encodes frames for the closest-record distance: numbers scaled to [0, 1] by the train min/max, categories as codes."""
    numeric = numeric_columns(train)
    categorical = [column for column in train.columns if column not in numeric]
    low = {column: np.nanmin(as_numbers(train[column], train[column])) for column in numeric}
    span = {column: np.nanmax(as_numbers(train[column], train[column])) - low[column] for column in numeric}
    codes = {column: {value: code for code, value in enumerate(train[column].dropna().astype(str).unique())} for column in categorical}

    def encode(frame):
        scaled = np.stack(
            [(as_numbers(frame[column], train[column]) - low[column]) / (span[column] or 1.0) for column in numeric]
            or [np.zeros(len(frame))], axis=1,
        )[:, : len(numeric)]
        # -1: missing; -2: a category the train rows lack (it matches no train row)
        coded = np.stack(
            [frame[column].map(lambda value, c=codes[column]: -1 if pd.isna(value) else c.get(str(value), -2)).to_numpy(dtype=int)
             for column in categorical] or [np.zeros(len(frame), dtype=int)], axis=1,
        )[:, : len(categorical)]
        return scaled, coded

    return encode


def closest_record_distances(rows, train, chunk_cells=2**24):
    """Distance of each row to its closest train row: the mean over columns of |Δ| (numbers scaled by the train
    range), 0/1 mismatch (categories), 1 where one cell is missing and the other not, 0 where both are missing."""
    encode = distance_space(train)
    (row_numbers, row_codes), (train_numbers, train_codes) = encode(rows), encode(train)
    num_columns = train.shape[1]
    chunk = max(1, chunk_cells // (len(train) * num_columns))
    closest = np.empty(len(rows))
    for start in range(0, len(rows), chunk):
        a, b = row_numbers[start : start + chunk, None, :], train_numbers[None, :, :]
        one_missing = np.isnan(a) != np.isnan(b)
        numeric = np.where(one_missing, 1.0, np.nan_to_num(np.abs(a - b), nan=0.0)).sum(axis=2)
        categorical = (row_codes[start : start + chunk, None, :] != train_codes[None, :, :]).sum(axis=2)
        closest[start : start + chunk] = ((numeric + categorical) / num_columns).min(axis=1)
    return closest


def distance_summary(rows, train):
    distances = closest_record_distances(rows, train)
    return {"dcr_median": float(np.median(distances)), "exact_copies": float(np.mean(distances == 0.0))}


# --- one cell, in its own process ----------------------------------------------------------------


def versions(backend):
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("sdv", "sdmetrics", "ctgan", "rdt", "copulas", "scikit-learn", "pandas", "numpy", "keras", "torch", backend):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def keras_score_revision():
    """The checkout's commit, with "+changes" when keras_score/ has uncommitted changes (the editable install runs them)."""
    import keras_score

    folder = os.path.dirname(keras_score.__file__)

    def git(*arguments):
        return subprocess.run(["git", "-C", folder, *arguments], capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", ".") else "")


def measure(table, synthesizer, backend, quick):
    """All figures of one (table, synthesizer) cell."""
    np.random.seed(0)
    train, holdout = load_split(table)
    target, task = TABLES[table][1:]
    metadata = detect_metadata(table, train)
    record = {
        "table": table, "synthesizer": synthesizer, "quick": quick,
        "backend": __import__("keras").backend.backend() if synthesizer.startswith("keras_score") else None,
        "train_rows": len(train), "holdout_rows": len(holdout), "target": target,
        "tstr_metric": "r2" if task == "regression" else "accuracy",
        "sdtypes": {column: spec["sdtype"] for column, spec in metadata.to_dict()["tables"][table]["columns"].items()},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "load_average_at_start": os.getloadavg()[0],
        "cpu_count": os.cpu_count(), "versions": versions(backend),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
    if synthesizer.startswith("keras_score"):
        record["keras_score_revision"] = keras_score_revision()
    if synthesizer == "holdout":
        sample, record["fit_seconds"], record["sample_seconds"], record["settings"] = holdout, None, None, None
    else:
        sample, record["fit_seconds"], record["sample_seconds"], record["settings"] = _synthesizer(synthesizer)(table, train, metadata, quick)
    sample, record["dtype_mismatches"] = conform(sample, train)
    record["sample_rows"] = len(sample)
    record.update(quality(train, sample, metadata, table))
    record["tstr"] = tstr(train if synthesizer == "holdout" else sample, holdout, train, target, task)
    record.update(distance_summary(sample, train))
    return record


def run_cell(table, synthesizer, args):
    """Runs `measure` in a fresh interpreter and returns its record (or one with the error)."""
    environment = dict(os.environ, KERAS_BACKEND=args.backend)
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cell.json")
        command = [sys.executable, os.path.abspath(__file__), "--cell", table, synthesizer, out, "--backend", args.backend]
        command += ["--quick"] if args.quick else []
        completed = subprocess.run(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if completed.returncode == 0 and os.path.exists(out):
            with open(out) as file:
                return json.load(file)
    tail = completed.stdout.strip().splitlines()[-15:]
    return {"table": table, "synthesizer": synthesizer, "quick": args.quick, "error": "\n".join(tail),
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def law_ceiling(table, repeats=3):
    """The quality one independent draw from a known law scores against another of the train rows' size.

    A synthesizer that learned the data's law exactly still scores below 1: its sample and the train
    rows are two finite draws. To measure that sampling noise, SDV's GaussianCopula fitted on the whole
    table stands for the true law; two independent draws of the train rows' size are compared by the
    same QualityReport, `repeats` times. (The KS statistic of two draws from one continuous law does
    not depend on the law, so Column Shapes' noise on continuous columns is the same for any.)

    Returns:
        A dict: the mean and standard deviation over the repeats of quality, column shapes and pair trends.
    """
    from sdv.single_table import GaussianCopulaSynthesizer

    train, holdout = load_split(table)
    whole = pd.concat([train, holdout], ignore_index=True)
    metadata = detect_metadata(table, whole)
    law = GaussianCopulaSynthesizer(metadata)
    law.fit({table: whole})
    scores = []
    for _ in range(repeats):
        first, second = (law.sample(num_rows=len(train))[table] for _ in range(2))
        scores.append(quality(first, second, metadata, table))
    summary = {"table": table, "train_rows": len(train), "repeats": repeats}
    for key in ("quality", "column_shapes", "column_pair_trends"):
        values = [score[key] for score in scores]
        summary[key], summary[key + "_std"] = float(np.mean(values)), float(np.std(values))
    return summary


# --- the table of results ------------------------------------------------------------------------


def _figure(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


def markdown(records):
    lines = [
        "| table | synthesizer | quality | column shapes | pair trends | all pairs | TSTR | DCR median | exact copies | fit s | sample s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        name = r["synthesizer"] + (f" ({r['backend']})" if r.get("backend") else "") + (" quick" if r.get("quick") else "")
        if "error" in r:
            lines.append(f"| {r['table']} | {name} | error: {r['error'].splitlines()[-1][:80] if r['error'] else '?'} ||||||||")
            continue
        lines.append(
            f"| {r['table']} | {name} | {_figure(r['quality'])} | {_figure(r['column_shapes'])} | {_figure(r['column_pair_trends'])} "
            f"| {_figure(r['column_pair_trends_all_pairs'])} "
            f"| {_figure(r['tstr'])} {'R²' if r['tstr_metric'] == 'r2' else 'acc'} | {_figure(r['dcr_median'], 4)} "
            f"| {100 * r['exact_copies']:.1f}% | {_figure(r['fit_seconds'], 1)} | {_figure(r['sample_seconds'], 2)} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated, from: " + ", ".join(TABLES))
    parser.add_argument("--synthesizers", default=",".join(SYNTHESIZERS), help="comma-separated, from: " + ", ".join(SYNTHESIZERS))
    parser.add_argument("--backend", default="jax", help="Keras backend for keras_score (jax, tensorflow, torch)")
    parser.add_argument("--out", help="write every record as JSON here")
    parser.add_argument("--reuse", action="append", default=[], help="JSON from an earlier run: its cells are taken, not re-run")
    parser.add_argument("--no-run", action="store_true", help="run nothing: print the cells the --reuse files hold")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: CTGAN/TVAE {QUICK_EPOCHS} epochs, keras_score {QUICK_STEPS} steps")
    parser.add_argument("--ceiling", action="store_true",
                        help="print instead the quality of one independent draw of a known law against another (law_ceiling)")
    parser.add_argument("--cell", nargs=3, metavar=("TABLE", "SYNTHESIZER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.cell:  # the child process of run_cell
        table, synthesizer, out = args.cell
        with open(out, "w") as file:
            json.dump(measure(table, synthesizer, args.backend, args.quick), file, default=str)
        return

    tables, synthesizers = args.tables.split(","), args.synthesizers.split(",")
    for name in tables:
        if name not in TABLES:
            parser.error(f"unknown table {name!r}")
    if args.ceiling:
        print("| table | train rows | quality | column shapes | pair trends |\n|---|---|---|---|---|")
        for table in tables:
            c = law_ceiling(table)
            print(f"| {table} | {c['train_rows']} | {c['quality']:.3f} ± {c['quality_std']:.3f} "
                  f"| {c['column_shapes']:.3f} ± {c['column_shapes_std']:.3f} "
                  f"| {c['column_pair_trends']:.3f} ± {c['column_pair_trends_std']:.3f} |", flush=True)
        return
    for name in synthesizers:
        if name not in SYNTHESIZERS:
            parser.error(f"unknown synthesizer {name!r}")

    def key(record):
        return record["table"], record["synthesizer"], bool(record.get("quick"))

    reused = {}
    for path in args.reuse:
        with open(path) as file:
            reused.update({key(record): record for record in json.load(file) if "error" not in record})
    records = []
    for table in tables:
        for synthesizer in synthesizers:
            if (table, synthesizer, args.quick) in reused:
                records.append(reused[table, synthesizer, args.quick])
                continue
            if args.no_run:
                continue
            start = time.perf_counter()
            records.append(run_cell(table, synthesizer, args))
            status = "error" if "error" in records[-1] else "done"
            print(f"{table} / {synthesizer}: {status} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            if args.out:  # after every cell, so a long run that stops keeps what it measured
                with open(args.out, "w") as file:
                    json.dump(records, file, indent=1)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(records, file, indent=1)
    print(markdown(records))


if __name__ == "__main__":
    main()
