"""Inception Score, exp E_x KL(p(y|x) ‖ p(y)) (Salimans et al. 2016)."""

import keras
import numpy as np
from keras import ops

from keras_score.metrics import feature_extractors


def inception_score_splits(probabilities, num_splits=10):
    """The Inception Score of each of `num_splits` consecutive splits of the samples.

    In each split, p(y) is the mean of the class probabilities p(y|x) and the
    score is exp(mean_x KL(p(y|x) ‖ p(y))): 1 when every sample gets the same
    prediction, and the number of classes K when predictions are confident
    and the classes equally frequent.

    Args:
        probabilities: (n, K) class probabilities, rows summing to 1.
        num_splits: number of splits, at most n.

    Returns:
        (num_splits,) float64 array.

    Example:
    >>> inception_score_splits(np.eye(4), num_splits=1)
    array([4.])
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(
            "`probabilities` must be an (n, num_classes) array of non-negative rows summing to 1; "
            f"received shape {p.shape}. Pass images through a `classifier`."
        )
    if not 1 <= int(num_splits) <= len(p):
        raise ValueError(f"`num_splits` must be between 1 and the number of samples {len(p)}; received {num_splits}.")
    scores = []
    for split in np.array_split(p, int(num_splits)):
        marginal = split.mean(axis=0, keepdims=True)
        log_ratio = np.log(np.where(split > 0, split, 1.0)) - np.log(np.where(split > 0, marginal, 1.0))
        scores.append(np.exp(np.mean(np.sum(split * log_ratio, axis=1))))
    return np.array(scores)


@keras.saving.register_keras_serializable(package="keras_score")
class InceptionScore(keras.metrics.Metric):
    """Inception Score (IS) of the generated samples seen; higher is better.

    IS = exp(E_x KL(p(y|x) ‖ p(y))), computed on `num_splits` consecutive
    splits; `result()` is the mean and `std()` the standard deviation over
    splits (Salimans et al. report both with 10 splits of 50,000 images). The
    class probabilities are kept on the host (n × K float64 numbers), so the
    metric runs eagerly.

    Args:
        classifier: "inception" (the default: `InceptionV3Features(include_top=True)`,
            1000 ImageNet classes, built and downloaded on first use), None
            when `update_state` receives class probabilities, or any Keras
            model or callable mapping samples to probabilities (e.g.
            `train_digits_classifier()`).
        num_splits: number of splits.
        name: metric name.
        dtype: dtype of `result()`.

    Example:
    >>> metric = InceptionScore(classifier=None, num_splits=1)
    >>> metric.update_state(np.eye(10))
    >>> round(float(metric.result()), 4)
    10.0

    Reference: Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016.
    """

    def __init__(self, classifier="inception", num_splits=10, name="inception_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if int(num_splits) < 1:
            raise ValueError(f"`num_splits` must be a positive integer; received {num_splits}.")
        self.classifier = classifier
        self.num_splits = int(num_splits)
        self._resolved = None
        self._probabilities = []

    def _classify(self, samples):
        if self.classifier is None:
            return samples
        if self._resolved is None:
            if isinstance(self.classifier, str) and self.classifier in ("inception", "inception_v3"):
                self._resolved = feature_extractors.InceptionV3Features(include_top=True)
            else:
                self._resolved = feature_extractors.get(self.classifier)
        return self._resolved(samples)

    def update_state(self, generated, sample_weight=None):
        """Adds a batch of generated samples, or their class probabilities if `classifier` is None.

        Args:
            generated: (batch, ...) samples or (batch, K) probabilities.
            sample_weight: not supported; must be None.
        """
        if sample_weight is not None:
            raise ValueError("InceptionScore does not support `sample_weight`; received one.")
        probabilities = np.asarray(ops.convert_to_numpy(self._classify(generated)), np.float64)
        if self._probabilities and probabilities.shape[1:] != self._probabilities[0].shape[1:]:
            raise ValueError(
                f"Batches must have the same number of classes; received {probabilities.shape[1:]} "
                f"after {self._probabilities[0].shape[1:]}."
            )
        self._probabilities.append(probabilities)

    def _splits(self):
        if not self._probabilities:
            raise ValueError("InceptionScore holds no samples; call `update_state` first.")
        return inception_score_splits(np.concatenate(self._probabilities), self.num_splits)

    def result(self):
        return ops.convert_to_tensor(np.mean(self._splits()), dtype=self.dtype)

    def std(self):
        """Standard deviation of the split scores whose mean is `result()`, a scalar tensor."""
        return ops.convert_to_tensor(np.std(self._splits()), dtype=self.dtype)

    def reset_state(self):
        self._probabilities = []

    def get_config(self):
        return {
            **super().get_config(),
            "classifier": feature_extractors.serialize(self.classifier),
            "num_splits": self.num_splits,
        }
