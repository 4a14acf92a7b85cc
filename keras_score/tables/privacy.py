"""Did the model copy records? Distances from synthetic rows to their closest training rows.

A simulator of collected records should produce rows that are as far from
the training rows as fresh real rows are: if the synthetic rows' distances
to their closest training record (DCR) are much smaller than held-out real
rows' distances, the model has memorised records.

Example:
>>> report = closest_record_report(model.transform, synthetic, train, held_out)
>>> report["synthetic_median"], report["held_out_median"], report["exact_copies"]
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors


def closest_record_distances(transform, rows, reference):
    """The Euclidean distance from each of `rows` to its closest row of `reference`, in the transform's encoding.

    Both tables are encoded deterministically (`TableTransform.transform`
    without noise): numbers on the normal scale of their quantiles,
    categories by their codes (an unseen category is an all-zero code),
    missing cells by their indicator; identifiers are left out.

    Args:
        transform: a fitted `TableTransform`.
        rows: a DataFrame (e.g. synthetic rows).
        reference: a DataFrame (e.g. the training rows).

    Returns:
        float64 array of shape (len(rows),).
    """
    encoded_rows = transform.transform(rows, strict=False).astype(np.float64)
    encoded_reference = transform.transform(reference, strict=False).astype(np.float64)
    neighbours = NearestNeighbors(n_neighbors=1).fit(encoded_reference)
    distances, _ = neighbours.kneighbors(encoded_rows)
    return distances[:, 0]


def closest_record_report(transform, synthetic, train, held_out):
    """Closest-record distances of synthetic rows beside those of held-out real rows.

    Args:
        transform: a fitted `TableTransform`.
        synthetic: synthetic rows (DataFrame).
        train: the training rows.
        held_out: real rows the model did not see.

    Returns:
        dict with "synthetic_median" and "held_out_median" (median distance
        to the closest training row), "exact_copies" (share of synthetic rows
        identical to a training row in the encoding; "held_out_exact_copies"
        the same for held-out rows, which tables of few-valued columns have
        too) and "closer_than_held_out_5th"
        (share of synthetic rows closer to the training rows than 95% of
        held-out rows are; about 0.05 for a model that does not copy).
    """
    synthetic_distances = closest_record_distances(transform, synthetic, train)
    held_out_distances = closest_record_distances(transform, held_out, train)
    fifth = np.percentile(held_out_distances, 5)
    return {
        "synthetic_median": float(np.median(synthetic_distances)),
        "held_out_median": float(np.median(held_out_distances)),
        "exact_copies": float(np.mean(synthetic_distances < 1e-6)),
        "held_out_exact_copies": float(np.mean(held_out_distances < 1e-6)),
        "closer_than_held_out_5th": float(np.mean(synthetic_distances < fifth)),
    }
