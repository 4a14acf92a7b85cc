"""Fréchet distance between Gaussian fits of features: FID (Heusel et al. 2017)."""

import keras
from keras import ops

from keras_score.metrics import feature_extractors

SIDES = ("real", "generated")


def _clamped_sqrt(values):
    return ops.sqrt(ops.maximum(values, 0.0))


def _frechet_distance(mu1, cov1, mu2, cov2):
    """‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} of `keras.ops` tensors."""
    eigenvalues, eigenvectors = ops.eigh(cov1)
    root1 = ops.matmul(eigenvectors * _clamped_sqrt(eigenvalues)[None, :], ops.transpose(eigenvectors))
    middle = ops.matmul(ops.matmul(root1, cov2), root1)
    middle = 0.5 * (middle + ops.transpose(middle))
    trace_sqrt = ops.sum(_clamped_sqrt(ops.eigh(middle)[0]))
    return ops.sum(ops.square(mu1 - mu2)) + ops.trace(cov1) + ops.trace(cov2) - 2.0 * trace_sqrt


def frechet_distance(mu1, cov1, mu2, cov2):
    """Squared Fréchet (2-Wasserstein) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂).

    d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^{1/2}), where
    Tr (Σ₁Σ₂)^{1/2} = Tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} is the sum of the square
    roots of the eigenvalues of the symmetric matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}
    (`keras.ops.eigh`; tiny negative eigenvalues from round-off are clamped to 0).
    Computed in `keras.config.floatx()`.

    Args:
        mu1: (d,) mean.
        cov1: (d, d) symmetric positive semi-definite covariance.
        mu2: (d,) mean.
        cov2: (d, d) covariance.

    Returns:
        A float, d² ≥ 0 up to round-off.

    Example:
    >>> import numpy as np
    >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 4)
    4.0

    Reference: Dowson & Landau, "The Fréchet distance between multivariate
    normal distributions", J. Multivariate Anal. 1982; Heusel et al., "GANs
    Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium", NeurIPS 2017.
    """
    dtype = keras.config.floatx()
    mu1, cov1, mu2, cov2 = (ops.convert_to_tensor(v, dtype=dtype) for v in (mu1, cov1, mu2, cov2))
    d = mu1.shape[0] if len(mu1.shape) == 1 else None
    for name, mu, cov in (("1", mu1, cov1), ("2", mu2, cov2)):
        if d is None or tuple(mu.shape) != (d,) or tuple(cov.shape) != (d, d):
            raise ValueError(
                f"`mu{name}` must have shape (d,) and `cov{name}` shape (d, d) with the same d for both "
                f"distributions; received mu1 {tuple(mu1.shape)}, cov1 {tuple(cov1.shape)}, "
                f"mu2 {tuple(mu2.shape)}, cov2 {tuple(cov2.shape)}."
            )
    return float(ops.convert_to_numpy(_frechet_distance(mu1, cov1, mu2, cov2)))


@keras.saving.register_keras_serializable(package="keras_score")
class FrechetDistance(keras.metrics.Metric):
    """Fréchet Inception Distance (FID) between the real and generated samples seen.

    Each set is summarised by its count n, feature mean μ and scatter matrix
    M = Σᵢ (fᵢ − μ)(fᵢ − μ)ᵀ, merged batch by batch with the pairwise update
    of Chan et al. 1979 (M = M_a + M_b + δδᵀ·n_a·n_b/n, δ = μ_b − μ_a), which
    avoids the cancellation of Σ f fᵀ − n μμᵀ in float32. `result()` is
    `frechet_distance(μ_r, Σ_r, μ_g, Σ_g)` with Σ = M/(n − 1); it is NaN
    until each set holds 2 samples. Memory is O(d²) whatever the number of
    samples. FID is biased upwards for small n (Bińkowski et al. 2018):
    compare FIDs of equal sample sizes, e.g. 10,000 or 50,000 images.

    The state lives in Keras variables, so the metric also works inside
    `model.evaluate` with y_true the real and y_pred the generated samples.

    Args:
        feature_extractor: "inception" (the default: `InceptionV3Features()`,
            built and downloaded on first use), None for inputs that already
            are features, or another extractor, see
            `keras_score.metrics.feature_extractors`.
        name: metric name.
        dtype: dtype of the state and result; "float64" is the most accurate
            (with JAX it needs `jax_enable_x64`).

    Example:
    >>> import numpy as np
    >>> metric = FrechetDistance(feature_extractor=None)
    >>> features = np.random.default_rng(0).normal(size=(100, 4))
    >>> metric.update_state(features, features + 1.0)
    >>> round(float(metric.result()), 3)
    4.0

    Reference: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule
    Converge to a Local Nash Equilibrium", NeurIPS 2017.
    """

    def __init__(self, feature_extractor="inception", name="frechet_distance", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.feature_extractor = feature_extractor
        self._extractor = None
        self.num_features = None

    def _build(self, num_features):
        self.num_features = num_features
        self._moments = {}
        for side in SIDES:
            self._moments[side] = (
                self.add_variable((), "zeros", dtype=self.dtype, name=f"{side}_count"),
                self.add_variable((num_features,), "zeros", dtype=self.dtype, name=f"{side}_mean"),
                self.add_variable((num_features, num_features), "zeros", dtype=self.dtype, name=f"{side}_scatter"),
            )

    def update_state(self, real=None, generated=None, sample_weight=None):
        """Adds a batch of real and/or generated samples.

        Args:
            real: (batch, ...) real samples (y_true), or None to add only generated ones.
            generated: (batch, ...) generated samples (y_pred), or None.
            sample_weight: not supported; must be None.
        """
        if sample_weight is not None:
            raise ValueError("FrechetDistance does not support `sample_weight`; received one.")
        for side, samples in zip(SIDES, (real, generated)):
            if samples is not None:
                self._update(side, samples)

    def _update(self, side, samples):
        if self._extractor is None:
            self._extractor = feature_extractors.get(self.feature_extractor)
        features = ops.cast(feature_extractors.extract(self._extractor, samples), self.dtype)
        size, num_features = features.shape
        if size == 0:
            raise ValueError(f"`{side}` must hold at least one sample; received an empty batch.")
        if self.num_features is None:
            self._build(num_features)
        if num_features != self.num_features:
            raise ValueError(
                f"`{side}` has {num_features} features but the metric holds {self.num_features}; "
                "real and generated features must have the same size."
            )
        count, mean, scatter = self._moments[side]
        batch_count = ops.cast(ops.shape(features)[0], self.dtype)
        batch_mean = ops.mean(features, axis=0)
        centered = features - batch_mean
        total = count + batch_count
        delta = batch_mean - mean
        mean_weight = batch_count / total
        scatter_weight = count * mean_weight
        scatter.assign(scatter + ops.matmul(ops.transpose(centered), centered) + ops.outer(delta, delta) * scatter_weight)
        mean.assign(mean + delta * mean_weight)
        count.assign(total)

    def statistics(self, side):
        """(μ, Σ) of "real" or "generated": the feature mean and unbiased covariance."""
        if self.num_features is None:
            raise ValueError("FrechetDistance holds no samples; call `update_state` first.")
        count, mean, scatter = self._moments[side]
        return ops.convert_to_tensor(mean), scatter / (count - 1.0)

    def result(self):
        return _frechet_distance(*self.statistics("real"), *self.statistics("generated"))

    def reset_state(self):
        for variable in self.variables:
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self):
        return {**super().get_config(), "feature_extractor": feature_extractors.serialize(self.feature_extractor)}
