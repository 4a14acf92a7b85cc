"""How long to train a small table: quality and closest-record distances of `TableModel` fits of several lengths.

Usage (the tables benchmark's venv, see benchmarks/README.md):
    KERAS_BACKEND=jax python benchmarks/table_lengths.py --tables wine,grunfeld --steps 100,250,500,1000,2000

For each table's train rows (`tables.load_split`) and each length, fits
`TableModel(seed=0)` for that many optimiser steps and samples as many rows:
SDMetrics quality, the denoising loss on the train and on the holdout rows,
the closest-record distance of `tables.py` (median, the holdout's beside it)
and the share of sampled rows closer to a train row than 95% of holdout rows
are (`keras_score.tables.closest_record_report`; about 0.05 when nothing is copied).
"""

import argparse
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tables as bench  # noqa: E402

from keras_score.tables import TableModel, closest_record_report  # noqa: E402


def denoising_loss(model, rows, repeats):
    """The mean denoising loss of the encoded rows, each at `repeats` noise draws."""
    encoded = np.repeat(model.encode(rows), repeats, axis=0)
    return float(np.mean(keras.ops.convert_to_numpy(model.per_example_loss(encoded))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="wine,grunfeld,penguins,diabetes,breast_cancer,fair")
    parser.add_argument("--steps", default="100,250,500,1000,2000")
    args = parser.parse_args()
    for table in args.tables.split(","):
        train, holdout = bench.load_split(table)
        metadata = bench.detect_metadata(table, train)
        holdout_dcr = bench.distance_summary(holdout, train)["dcr_median"]
        for steps in (int(s) for s in args.steps.split(",")):
            model = TableModel(seed=0)
            model.fit(train, steps=steps, verbose=0)
            train_loss = denoising_loss(model, train, 20)
            holdout_loss = denoising_loss(model, holdout, 20 * len(train) // len(holdout))
            sample = model.generate(len(train), seed=0)
            report = closest_record_report(model.transform, sample, train, holdout)
            sample, _ = bench.conform(sample, train)
            quality = bench.quality(train, sample, metadata, table)["quality"]
            dcr = bench.distance_summary(sample, train)["dcr_median"]
            print(
                f"{table} steps {steps} quality {quality:.3f} | denoising loss train {train_loss:.3f} "
                f"holdout {holdout_loss:.3f} | DCR median {dcr:.4f} (holdout {holdout_dcr:.4f}) | "
                f"closer than the holdout's 5th percentile {report['closer_than_held_out_5th']:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
