"""Small real data sets that ship inside scikit-learn (no download needed).

scikit-learn is imported only when one of these functions is called, so the
rest of `keras_score.datasets` works without it.

Reference: Pedregosa et al., "Scikit-learn: Machine Learning in Python",
JMLR 2011 (`sklearn.datasets.load_digits`, `sklearn.datasets.load_wine`).
"""

import numpy as np


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as error:
        raise ImportError(
            "This data set ships with scikit-learn, a dependency of keras_score "
            "that is not installed here; install it with `pip install scikit-learn`."
        ) from error
    return datasets


def load_digits(return_labels=False, pixel_values=False):
    """The 1,797 handwritten 8 × 8 digits, as images scaled to [-1, 1] or as their 17 pixel levels.

    Pixels hold integers 0..16 and are mapped to pixel / 16 · 2 − 1, so 0 is
    -1 (background) and 16 is 1 (ink); with `pixel_values` they stay
    integers 0..16 (uint8), as `keras_score.images.ImageModel(levels=17)` takes them.

    Args:
        return_labels: also return the digit (0..9) of each image.
        pixel_values: return the uint8 levels 0..16 instead of [-1, 1].

    Returns:
        (1797, 8, 8, 1) float32 (or uint8) array, and (1797,) int64 labels if
        `return_labels`.

    Example:
    >>> images, labels = load_digits(return_labels=True)
    >>> images.shape, float(images.min()), float(images.max())
    ((1797, 8, 8, 1), -1.0, 1.0)
    """
    bunch = _sklearn_datasets().load_digits()
    if pixel_values:
        images = bunch.images.astype(np.uint8)[..., None]
    else:
        images = (bunch.images / 16.0 * 2.0 - 1.0).astype(np.float32)[..., None]
    labels = bunch.target.astype(np.int64)
    return (images, labels) if return_labels else images


def load_wine(return_labels=False):
    """The UCI wine table: 178 wines, 13 chemical measurements, unscaled.

    Column names are given by `wine_feature_names()`.

    Args:
        return_labels: also return the cultivar (0, 1 or 2) of each wine.

    Returns:
        (178, 13) float32 array, and (178,) int64 labels if `return_labels`.

    Example:
    >>> load_wine().shape
    (178, 13)
    """
    bunch = _sklearn_datasets().load_wine()
    data = bunch.data.astype(np.float32)
    labels = bunch.target.astype(np.int64)
    return (data, labels) if return_labels else data


def wine_feature_names():
    """The 13 column names of `load_wine()`, in order.

    Returns:
        List of str, e.g. "alcohol", "malic_acid", ..., "proline".

    Example:
    >>> wine_feature_names()[0]
    'alcohol'
    """
    return list(_sklearn_datasets().load_wine().feature_names)
