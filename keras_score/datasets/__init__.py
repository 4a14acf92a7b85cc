"""Data for score-based models: an exact Gaussian mixture, 2-D toys, real tables, Fashion-MNIST images.

`load(name)` gives every embedded set as a 2-D float32 table with column
names, which is what the command line trains on; `EMBEDDED` lists the names.

Example:
>>> data, columns = load("moons", n=500)
>>> data.shape, columns
((500, 2), ['x0', 'x1'])
"""

import numpy as np

from keras_score.datasets.fashion_mnist import load_fashion_mnist
from keras_score.datasets.mixture import GaussianMixture
from keras_score.datasets.real import load_digits, load_wine, wine_feature_names
from keras_score.datasets.toy import make_checkerboard, make_moons, make_rings, make_swiss_roll

DEFAULT_SIZE = 2000

EMBEDDED = {
    "mixture": "8-component ring Gaussian mixture in 2-D (radius 4, std 0.5); exact scores.",
    "moons": "Two interleaving half circles in 2-D.",
    "swiss_roll": "2-D swiss-roll spiral.",
    "checkerboard": "Uniform points on the dark squares of a 4 x 4 board.",
    "rings": "Three concentric circles of radii 1, 2, 3.",
    "wine": "UCI wine table from scikit-learn: 178 rows, 13 measurements.",
    "digits": "scikit-learn 8 x 8 digits, flattened to 64 columns in [-1, 1].",
}

_TOY = {
    "moons": make_moons,
    "swiss_roll": make_swiss_roll,
    "checkerboard": make_checkerboard,
    "rings": make_rings,
}


def _generated(name, n, seed):
    n = DEFAULT_SIZE if n is None else n
    if name == "mixture":
        data = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5).sample(n, seed=seed)
    else:
        data = _TOY[name](n, seed=seed)
    return data, ["x0", "x1"]


def _table(name):
    if name == "wine":
        return load_wine(), wine_feature_names()
    images = load_digits()
    columns = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]
    return images.reshape(len(images), 64), columns


def load(name, n=None, seed=0):
    """Loads an embedded data set as a table.

    Args:
        name: one of the keys of `EMBEDDED`.
        n: number of rows. Generated sets draw `n` points (default
            `DEFAULT_SIZE`); real tables return all rows by default, or `n`
            rows picked at random without replacement.
        seed: seed for the generator or for the row subset.

    Returns:
        A pair (data, columns): an (n, d) float32 numpy array and a list of d
        column names.

    Example:
    >>> data, columns = load("wine")
    >>> data.shape, columns[0]
    ((178, 13), 'alcohol')
    """
    if name not in EMBEDDED:
        raise ValueError(f"Unknown data set {name!r}; expected one of {sorted(EMBEDDED)}.")
    if n is not None and (int(n) != n or n < 1):
        raise ValueError(f"`n` must be a positive integer or None; received n={n!r}.")
    if name not in ("wine", "digits"):
        return _generated(name, n, seed)
    data, columns = _table(name)
    if n is not None:
        if n > len(data):
            raise ValueError(f"`n`={n} exceeds the {len(data)} rows of {name!r}.")
        rows = np.random.default_rng(seed).choice(len(data), size=int(n), replace=False)
        data = data[np.sort(rows)]
    return data, columns


__all__ = [
    "DEFAULT_SIZE",
    "EMBEDDED",
    "GaussianMixture",
    "load",
    "load_digits",
    "load_fashion_mnist",
    "load_wine",
    "make_checkerboard",
    "make_moons",
    "make_rings",
    "make_swiss_roll",
    "wine_feature_names",
]
