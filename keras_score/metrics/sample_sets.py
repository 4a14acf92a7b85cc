"""Base class of the metrics that compare two whole sample sets kept in host memory."""

import keras
import numpy as np
from keras import ops

from keras_score.metrics import feature_extractors


class SampleSetMetric(keras.metrics.Metric):
    """A `keras.metrics.Metric` that stores the features of a real and a generated set.

    Statistics such as MMD, KID and the sliced Wasserstein distance compare
    every pair of samples or sort whole sets, so they cannot be updated batch
    by batch: `update_state` stores the features (float64, on the host, n × d
    numbers per set) and `result()` computes the statistic of all of them with
    `statistic(real, generated)`. Because the features are copied to NumPy,
    these metrics run eagerly: call them directly, not inside `model.evaluate`.

    Args:
        feature_extractor: see `keras_score.metrics.feature_extractors`; None
            compares the samples themselves. Resolved on first use.
        name: metric name.
        dtype: dtype of `result()`.
    """

    def __init__(self, feature_extractor=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.feature_extractor = feature_extractor
        self._extractor = None
        self._sets = {"real": [], "generated": []}

    def update_state(self, real=None, generated=None, sample_weight=None):
        """Adds a batch of real and/or generated samples.

        Args:
            real: (batch, ...) real samples, or None to add only generated ones.
            generated: (batch, ...) generated samples, or None.
            sample_weight: not supported; must be None.
        """
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__} does not support `sample_weight`; received one.")
        for key, samples in (("real", real), ("generated", generated)):
            if samples is not None:
                features = np.asarray(ops.convert_to_numpy(self._features(samples)), np.float64)
                stored = self._sets["real"] + self._sets["generated"]
                if stored and stored[0].shape[1] != features.shape[1]:
                    raise ValueError(
                        f"`{key}` has {features.shape[1]} features but earlier batches had "
                        f"{stored[0].shape[1]}; real and generated features must have the same size."
                    )
                self._sets[key].append(features)

    def _features(self, samples):
        if self._extractor is None:
            self._extractor = feature_extractors.get(self.feature_extractor)
        return feature_extractors.extract(self._extractor, samples)

    def samples(self, key):
        """All stored features of `key` ("real" or "generated") as an (n, d) float64 array."""
        if not self._sets[key]:
            raise ValueError(f"{type(self).__name__} holds no {key} samples; call `update_state` first.")
        return np.concatenate(self._sets[key])

    def statistic(self, real, generated):
        raise NotImplementedError

    def result(self):
        value = self.statistic(self.samples("real"), self.samples("generated"))
        return ops.convert_to_tensor(value, dtype=self.dtype)

    def reset_state(self):
        self._sets = {"real": [], "generated": []}

    def get_config(self):
        config = super().get_config()
        config["feature_extractor"] = feature_extractors.serialize(self.feature_extractor)
        return config
