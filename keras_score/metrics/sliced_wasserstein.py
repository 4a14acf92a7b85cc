"""The sliced Wasserstein distance between sample sets, as a function and as a metric."""

import keras
import numpy as np

from keras_score.metrics.sample_sets import SampleSetMetric


def sliced_wasserstein_distance(x, y, num_projections=256, seed=0):
    """Sliced 2-Wasserstein distance between two sample sets (Rabin et al. 2011; Bonneel et al. 2015).

    SW₂(x, y)² = E_θ W₂(θᵀx, θᵀy)² over directions θ uniform on the sphere,
    estimated with `num_projections` random directions; each 1-D W₂ compares
    quantiles at the same levels, so x and y may have different sizes.

    Args:
        x: array of shape (n, ...); trailing axes are flattened.
        y: array of shape (m, ...) with the same trailing size.
        num_projections: number of random directions.
        seed: seed of the directions.

    Returns:
        A float, the estimated SW₂ distance.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(1000, 2))
    >>> sliced_wasserstein_distance(a, a) == 0.0
    True
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"`x` and `y` must have the same number of features; received {x.shape[1]} and {y.shape[1]}."
        )
    if len(x) == 0 or len(y) == 0:
        raise ValueError("`x` and `y` must each hold at least one sample.")
    theta = np.random.default_rng(seed).standard_normal((x.shape[1], num_projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    size = max(len(x), len(y))
    qx, qy = _quantiles(x @ theta, size), _quantiles(y @ theta, size)
    return float(np.sqrt(np.mean((qx - qy) ** 2)))


def _quantiles(projections, size):
    """Column quantiles at levels (i + ½)/size, by interpolating the sorted columns."""
    ordered = np.sort(projections, axis=0)
    n = len(ordered)
    if n == size:
        return ordered
    levels = (np.arange(size) + 0.5) / size
    positions = (np.arange(n) + 0.5) / n
    return np.stack([np.interp(levels, positions, column) for column in ordered.T], axis=1)


@keras.saving.register_keras_serializable(package="keras_score")
class SlicedWassersteinDistance(SampleSetMetric):
    """`sliced_wasserstein_distance` between all real and all generated samples seen.

    Args:
        num_projections: number of random directions.
        seed: seed of the directions.
        feature_extractor: None (compare the samples) or an extractor, see
            `keras_score.metrics.feature_extractors`.
        name: metric name.
        dtype: dtype of `result()`.

    Example:
    >>> metric = SlicedWassersteinDistance()
    >>> x, y = np.zeros((10, 2)), np.ones((10, 2))
    >>> metric.update_state(x, y)
    >>> bool(np.isclose(float(metric.result()), sliced_wasserstein_distance(x, y)))
    True
    """

    def __init__(self, num_projections=256, seed=0, feature_extractor=None, name="sliced_wasserstein_distance", dtype=None):
        super().__init__(feature_extractor=feature_extractor, name=name, dtype=dtype)
        if int(num_projections) < 1:
            raise ValueError(f"`num_projections` must be a positive integer; received {num_projections}.")
        self.num_projections = int(num_projections)
        self.seed = int(seed)

    def statistic(self, real, generated):
        return sliced_wasserstein_distance(real, generated, self.num_projections, self.seed)

    def get_config(self):
        return {**super().get_config(), "num_projections": self.num_projections, "seed": self.seed}
