"""Two-dimensional toy data sets, generated with numpy.

Each function returns an (n, 2) float32 array centred near the origin with a
spread of a few units, draws from `np.random.default_rng(seed)` and adds
isotropic Gaussian noise of standard deviation `noise` (in output units).

Reference: the moons and concentric circles follow scikit-learn's
`make_moons` / `make_circles`; the checkerboard and 2-D swiss roll follow
Grathwohl et al., "FFJORD", ICLR 2019.
"""

import numpy as np


def _check(n, noise):
    if int(n) != n or n < 1:
        raise ValueError(f"`n` must be a positive integer; received n={n!r}.")
    if not noise >= 0:
        raise ValueError(f"`noise` must be non-negative; received noise={noise!r}.")
    return int(n)


def _finish(points, rng, noise):
    points = points + noise * rng.standard_normal(points.shape)
    return rng.permutation(points).astype(np.float32)


def make_moons(n=2000, seed=None, noise=0.1):
    """Two interleaving half circles, centred and scaled by 2.

    Args:
        n: number of points (split evenly between the moons).
        seed: seed for `np.random.default_rng`.
        noise: standard deviation of the added Gaussian noise.

    Returns:
        (n, 2) float32 array within about [-3, 3] × [-1.5, 1.5].

    Example:
    >>> make_moons(100, seed=0).shape
    (100, 2)
    """
    n = _check(n, noise)
    rng = np.random.default_rng(seed)
    n_upper = n // 2
    angle = np.pi * rng.uniform(size=n)
    upper = np.stack([np.cos(angle[:n_upper]), np.sin(angle[:n_upper])], axis=1)
    lower = np.stack([1.0 - np.cos(angle[n_upper:]), 0.5 - np.sin(angle[n_upper:])], axis=1)
    points = 2.0 * (np.concatenate([upper, lower]) - [0.5, 0.25])
    return _finish(points, rng, noise)


def make_swiss_roll(n=2000, seed=None, noise=0.1):
    """A 2-D swiss roll: the spiral θ·(cos θ, sin θ)/5, θ ∈ [1.5π, 4.5π].

    Args:
        n: number of points.
        seed: seed for `np.random.default_rng`.
        noise: standard deviation of the added Gaussian noise.

    Returns:
        (n, 2) float32 array with radii in about [0.94, 2.83].

    Example:
    >>> make_swiss_roll(100, seed=0).dtype
    dtype('float32')
    """
    n = _check(n, noise)
    rng = np.random.default_rng(seed)
    theta = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))
    points = np.stack([theta * np.cos(theta), theta * np.sin(theta)], axis=1) / 5.0
    return _finish(points, rng, noise)


def make_checkerboard(n=2000, seed=None, noise=0.0):
    """Uniform points on the dark squares of a 4 × 4 board on [-2, 2]².

    A unit square with lower-left corner (i − 2, j − 2) is dark when i + j is
    even, so every row and column holds two dark squares.

    Args:
        n: number of points.
        seed: seed for `np.random.default_rng`.
        noise: standard deviation of the added Gaussian noise.

    Returns:
        (n, 2) float32 array in [-2, 2]² when `noise` is 0.

    Example:
    >>> bool(abs(make_checkerboard(100, seed=0)).max() <= 2.0)
    True
    """
    n = _check(n, noise)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=n)
    column = np.floor(x + 2.0)
    row = 2 * rng.integers(0, 2, size=n) + column % 2
    y = row + rng.uniform(size=n) - 2.0
    return _finish(np.stack([x, y], axis=1), rng, noise)


def make_rings(n=2000, seed=None, noise=0.05, num_rings=3):
    """Concentric circles of radii 1, 2, ..., `num_rings`.

    Points are shared between rings in proportion to their radius, so the
    density along each circle is the same.

    Args:
        n: number of points.
        seed: seed for `np.random.default_rng`.
        noise: standard deviation of the added Gaussian noise.
        num_rings: number of circles.

    Returns:
        (n, 2) float32 array.

    Example:
    >>> radii = np.linalg.norm(make_rings(100, seed=0, noise=0.0), axis=1)
    >>> sorted(set(radii.round(4).tolist()))
    [1.0, 2.0, 3.0]
    """
    n = _check(n, noise)
    if int(num_rings) != num_rings or num_rings < 1:
        raise ValueError(f"`num_rings` must be a positive integer; received {num_rings!r}.")
    rng = np.random.default_rng(seed)
    radii = np.arange(1, int(num_rings) + 1, dtype=np.float64)
    radius = rng.choice(radii, size=n, p=radii / radii.sum())
    angle = 2.0 * np.pi * rng.uniform(size=n)
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return _finish(points, rng, noise)
