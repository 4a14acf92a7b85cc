"""Gaussian mixtures: data whose every diffused marginal is known in closed form.

If x₀ ~ Σ_k w_k N(μ_k, Σ_k) and x_t = α(t)·x₀ + σ(t)·ε, then x_t is again a
Gaussian mixture, Σ_k w_k N(α·μ_k, α²Σ_k + σ²I). Its density, score and
posterior mean are therefore exact, which makes `GaussianMixture` the
library's ground truth for testing networks, losses and samplers.
"""

import math

import keras
import numpy as np
from keras import ops


def _tensor(value):
    return ops.convert_to_tensor(value, dtype=keras.config.floatx())


def _full_covariances(covariances, num_components, dim):
    """Expands None, scalar, (K,), (K, d) or (K, d, d) covariances to (K, d, d)."""
    if covariances is None:
        return np.broadcast_to(np.eye(dim), (num_components, dim, dim)).copy()
    cov = np.asarray(covariances, dtype=np.float64)
    if cov.ndim == 0:
        cov = np.full((num_components,), float(cov))
    if cov.shape == (num_components,):
        return cov[:, None, None] * np.eye(dim)
    if cov.shape == (num_components, dim):
        return cov[:, :, None] * np.eye(dim)
    if cov.shape == (num_components, dim, dim):
        return cov
    raise ValueError(
        f"`covariances` must have shape (K,), (K, d) or (K, d, d) with K={num_components}, "
        f"d={dim}; received shape {cov.shape}."
    )


@keras.saving.register_keras_serializable(package="keras_score")
class GaussianMixture:
    """A Gaussian mixture with exact diffused densities, scores and denoisers.

    Under any `NoiseSchedule`, x_t = α(t)·x₀ + σ(t)·ε with x₀ from this mixture
    has the marginal p_t = Σ_k w_k N(α·μ_k, C_k), C_k = α²Σ_k + σ²I. With the
    eigendecomposition Σ_k = U_k diag(λ_k) U_kᵀ (precomputed once in float64),
    C_k = U_k diag(α²λ_k + σ²) U_kᵀ, so `log_prob`, `score`, `denoise` and
    `posterior_probs` are exact closed forms that need no matrix inverse and use
    only `keras.ops`: they run inside compiled loops on TensorFlow, JAX and
    PyTorch. They satisfy Tweedie's formula score = (α·denoise − x)/σ².

    Args:
        means: (K, d) component means μ_k.
        covariances: component covariances Σ_k, as (K, d, d) symmetric positive
            definite matrices, (K, d) diagonals, (K,) isotropic variances, one
            scalar variance shared by all components, or None for the identity.
        weights: (K,) positive mixture weights, normalised internally;
            None for uniform weights.
        name: optional name, kept in the config.

    Example:
    >>> from keras_score.schedules import VPSchedule
    >>> mixture = GaussianMixture.ring(num_components=8, radius=4.0, std=0.5)
    >>> x = mixture.sample(16, seed=0)
    >>> tuple(mixture.score(x, 0.5, VPSchedule()).shape)
    (16, 2)

    Reference: Song et al., "Score-Based Generative Modeling through
    Stochastic Differential Equations", ICLR 2021 (perturbation kernels);
    Karras et al., "Elucidating the Design Space of Diffusion-Based Generative
    Models", NeurIPS 2022 (denoiser D(x; σ) = E[x₀ | x], score = (D − x)/σ²).
    """

    def __init__(self, means, covariances=None, weights=None, name=None):
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(
                f"`means` must have shape (K, d) with K, d >= 1; received shape {means.shape}."
            )
        if not np.all(np.isfinite(means)):
            raise ValueError("`means` must be finite.")
        num_components, dim = means.shape
        covariances = _full_covariances(covariances, num_components, dim)
        if not np.allclose(covariances, np.swapaxes(covariances, 1, 2), atol=1e-8, rtol=1e-6):
            raise ValueError("`covariances` must be symmetric matrices.")
        eigvals, eigvecs = np.linalg.eigh(0.5 * (covariances + np.swapaxes(covariances, 1, 2)))
        if not np.all(eigvals > 0):
            k = int(np.argmin(eigvals.min(axis=1)))
            raise ValueError(
                f"`covariances[{k}]` must be positive definite; its smallest "
                f"eigenvalue is {eigvals[k].min():.3g}."
            )
        if weights is None:
            weights = np.ones(num_components)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (num_components,):
            raise ValueError(
                f"`weights` must have shape (K,) = ({num_components},); "
                f"received shape {weights.shape}."
            )
        if not np.all(np.isfinite(weights) & (weights > 0)):
            raise ValueError(f"`weights` must be positive and finite; received {weights}.")

        self.name = name
        self._means = means
        self._covariances = covariances
        self._weights = weights / weights.sum()
        self._eigvals = eigvals
        self._eigvecs = eigvecs
        self._sqrt_covs = eigvecs * np.sqrt(eigvals)[:, None, :]
        # Run-time constants, float32, converted to backend tensors on use.
        self._means32 = means.astype(np.float32)
        self._eigvals32 = eigvals.astype(np.float32)
        self._eigvecs32 = eigvecs.astype(np.float32)
        self._log_weights32 = np.log(self._weights).astype(np.float32)

    # ---------------------------------------------------------------- factories

    @classmethod
    def ring(cls, num_components=8, radius=4.0, std=0.5, dim=2, weights=None, name="ring"):
        """Isotropic components evenly spaced on a circle.

        Args:
            num_components: number of modes K.
            radius: radius of the circle in the first two coordinates.
            std: standard deviation of every component in every coordinate.
            dim: dimension d >= 2; coordinates beyond the second have mean 0.
            weights: optional (K,) positive weights; uniform by default.
            name: name of the mixture.

        Returns:
            A `GaussianMixture` with means (r·cos 2πk/K, r·sin 2πk/K, 0, ...).

        Example:
        >>> GaussianMixture.ring(num_components=4, radius=1.0).means.round(6)[1]
        array([0., 1.])
        """
        if int(num_components) < 1:
            raise ValueError(f"`num_components` must be >= 1; received {num_components}.")
        if int(dim) < 2:
            raise ValueError(f"`dim` must be >= 2 for a ring; received dim={dim}.")
        if not std > 0:
            raise ValueError(f"`std` must be positive; received std={std}.")
        angles = 2.0 * np.pi * np.arange(num_components) / num_components
        means = np.zeros((int(num_components), int(dim)))
        means[:, 0] = radius * np.cos(angles)
        means[:, 1] = radius * np.sin(angles)
        return cls(means, np.full(int(num_components), float(std) ** 2), weights, name=name)

    @classmethod
    def random(cls, num_components, dim, seed=None, min_std=0.3, max_std=1.0, name="random"):
        """Random well-separated means with random full covariances and weights.

        Means are drawn from N(0, s²I) by rejection so that any two are at least
        6·`max_std` apart (s grows with K^(1/d) to make room); each covariance
        is Q diag(std²) Qᵀ with a random rotation Q and stds uniform in
        [`min_std`, `max_std`]; weights are uniform in [0.5, 1.5], normalised.

        Args:
            num_components: number of components K.
            dim: dimension d.
            seed: seed for `np.random.default_rng`.
            min_std: smallest standard deviation along a principal axis.
            max_std: largest standard deviation along a principal axis.
            name: name of the mixture.

        Returns:
            A `GaussianMixture`.

        Example:
        >>> GaussianMixture.random(3, 5, seed=0).covariances.shape
        (3, 5, 5)
        """
        num_components, dim = int(num_components), int(dim)
        if num_components < 1 or dim < 1:
            raise ValueError(
                "`num_components` and `dim` must be >= 1; received "
                f"num_components={num_components}, dim={dim}."
            )
        if not 0 < min_std <= max_std:
            raise ValueError(
                "`min_std` and `max_std` must satisfy 0 < min_std <= max_std; received "
                f"min_std={min_std}, max_std={max_std}."
            )
        rng = np.random.default_rng(seed)
        min_distance = 6.0 * max_std
        spread = min_distance * max(1.0, num_components ** (1.0 / dim))
        means = []
        for _ in range(1000 * num_components):
            candidate = rng.normal(scale=spread, size=dim)
            if all(np.linalg.norm(candidate - m) >= min_distance for m in means):
                means.append(candidate)
                if len(means) == num_components:
                    break
        else:
            raise ValueError(
                f"Could not place {num_components} separated means in dim={dim}; "
                "lower `num_components` or `max_std`."
            )
        rotations, _ = np.linalg.qr(rng.normal(size=(num_components, dim, dim)))
        variances = rng.uniform(min_std, max_std, size=(num_components, dim)) ** 2
        covariances = np.einsum("kij,kj,klj->kil", rotations, variances, rotations)
        weights = rng.uniform(0.5, 1.5, size=num_components)
        return cls(np.stack(means), covariances, weights, name=name)

    # --------------------------------------------------------------- properties

    @property
    def dim(self):
        """Dimension d of the data."""
        return self._means.shape[1]

    @property
    def num_components(self):
        """Number of components K."""
        return self._means.shape[0]

    @property
    def means(self):
        """(K, d) float64 numpy array of component means."""
        return self._means.copy()

    @property
    def covariances(self):
        """(K, d, d) float64 numpy array of full component covariances."""
        return self._covariances.copy()

    @property
    def weights(self):
        """(K,) float64 numpy array of normalised weights."""
        return self._weights.copy()

    # ----------------------------------------------------------------- sampling

    def sample(self, n, seed=None, return_labels=False):
        """Draws `n` samples with numpy.

        Args:
            n: number of samples.
            seed: seed for `np.random.default_rng`.
            return_labels: also return the component of each sample.

        Returns:
            (n, d) float32 numpy array, and (n,) int64 labels if `return_labels`.

        Example:
        >>> GaussianMixture([[0.0], [5.0]]).sample(3, seed=0).shape
        (3, 1)
        """
        rng = np.random.default_rng(seed)
        labels = rng.choice(self.num_components, size=int(n), p=self._weights)
        noise = rng.standard_normal((int(n), self.dim))
        x = self._means[labels] + np.einsum("nij,nj->ni", self._sqrt_covs[labels], noise)
        x = x.astype(np.float32)
        return (x, labels) if return_labels else x

    # ------------------------------------------------------------ exact scores

    def _alpha_sigma(self, t, schedule):
        """α(t) and σ(t) shaped (batch or 1, 1, 1); (1, 0) for the clean data."""
        if t is None:
            return _tensor(np.ones((1, 1, 1))), _tensor(np.zeros((1, 1, 1)))
        if schedule is None:
            raise ValueError("`schedule` is required when `t` is given.")
        t = _tensor(t)
        alpha = ops.reshape(_tensor(schedule.alpha(t)), (-1, 1, 1))
        sigma = ops.reshape(_tensor(schedule.sigma(t)), (-1, 1, 1))
        return alpha, sigma

    def _terms(self, x, t, schedule):
        """Per-component log N(x; αμ_k, C_k) and the eigenbasis pieces behind it.

        Returns log_normal (B, K), z = U_kᵀ(x − αμ_k) (B, K, d),
        the eigenvalues of C_k (B or 1, K, d), and α (B or 1, 1, 1).
        """
        x = _tensor(x)
        alpha, sigma = self._alpha_sigma(t, schedule)
        diff = ops.expand_dims(x, 1) - alpha * _tensor(self._means32)
        z = ops.einsum("bki,kij->bkj", diff, _tensor(self._eigvecs32))
        var = alpha**2 * _tensor(self._eigvals32) + sigma**2
        log_normal = -0.5 * (
            ops.sum(z**2 / var, axis=-1)
            + ops.sum(ops.log(var), axis=-1)
            + self.dim * math.log(2.0 * math.pi)
        )
        return log_normal, z, var, alpha

    def component_log_prob(self, x, t=None, schedule=None):
        """log N(x; α·μ_k, α²Σ_k + σ²I) for every component.

        Args:
            x: (batch, d) points.
            t: None for the clean data, else a float or a (batch,) tensor.
            schedule: the `NoiseSchedule` giving α(t), σ(t); needed with `t`.

        Returns:
            (batch, K) tensor of component log-densities (without weights).
        """
        return self._terms(x, t, schedule)[0]

    def _log_joint(self, log_normal):
        return log_normal + _tensor(self._log_weights32)

    def _responsibilities(self, log_normal):
        """softmax over components of the log joint (all ones for a single component)."""
        if self.num_components == 1:
            return ops.ones_like(log_normal)
        return ops.softmax(self._log_joint(log_normal), axis=-1)

    def log_prob(self, x, t=None, schedule=None):
        """Exact log-density of the diffused marginal p_t at `x`.

        Args:
            x: (batch, d) points.
            t: None for the clean density p_0, else a float or (batch,) times.
            schedule: the `NoiseSchedule`; needed with `t`.

        Returns:
            (batch,) tensor log p_t(x) = logsumexp_k(log w_k + log N(x; αμ_k, C_k)).
        """
        log_normal = self._terms(x, t, schedule)[0]
        return ops.logsumexp(self._log_joint(log_normal), axis=-1)

    def posterior_probs(self, x, t=None, schedule=None):
        """p(component k | x_t = x), the responsibilities r_k.

        Args:
            x: (batch, d) points.
            t: None for the clean data, else a float or (batch,) times.
            schedule: the `NoiseSchedule`; needed with `t`.

        Returns:
            (batch, K) tensor whose rows sum to 1.
        """
        log_normal = self._terms(x, t, schedule)[0]
        return self._responsibilities(log_normal)

    def log_posterior(self, x, t=None, schedule=None):
        """log p(component k | x_t = x): the exact noisy classifier of a labelled mixture.

        With the component as the class label, this is log p(y | x_t) at
        every noise level, the classifier that classifier guidance needs.

        Args:
            x: (batch, d) points.
            t: None for the clean data, else a float or (batch,) times.
            schedule: the `NoiseSchedule`; needed with `t`.

        Returns:
            (batch, K) tensor whose rows logsumexp to 0.
        """
        log_normal = self._terms(x, t, schedule)[0]
        return ops.log_softmax(self._log_joint(log_normal), axis=-1)

    def component(self, k):
        """The k-th component alone: the exact class-conditional distribution p(x | y = k).

        Args:
            k: component index in 0…K−1.

        Returns:
            A one-component `GaussianMixture`.

        Example:
        >>> GaussianMixture([[0.0], [5.0]]).component(1).means
        array([[5.]])
        """
        if not 0 <= int(k) < self.num_components:
            raise ValueError(f"`k` must lie in [0, {self.num_components - 1}]; received {k}.")
        k = int(k)
        name = None if self.name is None else f"{self.name}_{k}"
        return GaussianMixture(self._means[k : k + 1], self._covariances[k : k + 1], name=name)

    def score(self, x, t=None, schedule=None):
        """Exact score ∇ₓ log p_t(x) = −Σ_k r_k C_k⁻¹(x − αμ_k).

        Args:
            x: (batch, d) points.
            t: None for the clean score, else a float or (batch,) times.
            schedule: the `NoiseSchedule`; needed with `t`.

        Returns:
            (batch, d) tensor.
        """
        log_normal, z, var, _ = self._terms(x, t, schedule)
        probs = self._responsibilities(log_normal)
        precision_diff = ops.einsum("kij,bkj->bki", _tensor(self._eigvecs32), z / var)
        return -ops.einsum("bk,bki->bi", probs, precision_diff)

    def denoise(self, x, t=None, schedule=None):
        """Exact posterior mean E[x₀ | x_t = x] (the ideal EDM denoiser D).

        E[x₀ | x_t] = Σ_k r_k (μ_k + α·Σ_k C_k⁻¹(x − αμ_k)).

        Args:
            x: (batch, d) points.
            t: None (returns x), else a float or (batch,) times.
            schedule: the `NoiseSchedule`; needed with `t`.

        Returns:
            (batch, d) tensor.
        """
        log_normal, z, var, alpha = self._terms(x, t, schedule)
        probs = self._responsibilities(log_normal)
        eigvals = _tensor(self._eigvals32)
        gain = ops.einsum("kij,bkj->bki", _tensor(self._eigvecs32), eigvals * z / var)
        component_means = _tensor(self._means32) + alpha * gain
        return ops.einsum("bk,bki->bi", probs, component_means)

    # ------------------------------------------------------------ transforms

    def _per_dimension(self, value, arg_name):
        value = np.asarray(value, dtype=np.float64)
        if value.shape not in ((), (self.dim,)):
            raise ValueError(
                f"`{arg_name}` must be a scalar or have shape ({self.dim},); "
                f"received shape {value.shape}."
            )
        return np.broadcast_to(value, (self.dim,))

    def affine(self, shift, scale):
        """The mixture of y = (x − shift) / scale for x from this mixture.

        Used to express the ground truth in a model's standardised space.

        Args:
            shift: (d,) array (or scalar) subtracted from x.
            scale: (d,) array (or scalar) of non-zero divisors.

        Returns:
            A `GaussianMixture` with means (μ − shift)/scale and covariances
            D Σ D, D = diag(1/scale); its log_prob(y) = log_prob(x) + Σ log|scale|.

        Example:
        >>> m = GaussianMixture([[2.0, 4.0]], [[1.0, 4.0]])
        >>> m.affine(shift=[2.0, 4.0], scale=[1.0, 2.0]).covariances[0]
        array([[1., 0.],
               [0., 1.]])
        """
        shift = self._per_dimension(shift, "shift")
        scale = self._per_dimension(scale, "scale")
        if not np.all(np.isfinite(scale) & (scale != 0)):
            raise ValueError(f"`scale` must be finite and non-zero; received {scale}.")
        inv = 1.0 / scale
        return GaussianMixture(
            (self._means - shift) * inv,
            self._covariances * inv[:, None] * inv[None, :],
            self._weights,
            name=self.name,
        )

    # ---------------------------------------------------------- serialisation

    def get_config(self):
        return {
            "means": self._means.tolist(),
            "covariances": self._covariances.tolist(),
            "weights": self._weights.tolist(),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"GaussianMixture(name={self.name!r}, num_components={self.num_components}, "
            f"dim={self.dim})"
        )
