"""Sample-quality metrics: distances between sample sets and scores of generated images.

| metric                      | function                      | compares                         |
|-----------------------------|-------------------------------|----------------------------------|
| `SlicedWassersteinDistance` | `sliced_wasserstein_distance` | samples (low-dimensional data)   |
| `MaximumMeanDiscrepancy`    | `maximum_mean_discrepancy`    | samples, RBF kernel              |
| `FrechetDistance` (FID)     | `frechet_distance`            | Gaussian fits of features        |
| `KernelDistance` (KID)      | `kernel_distance`             | features, cubic polynomial kernel |
| `InceptionScore` (IS)       | `inception_score_splits`      | class probabilities of one set   |
|                             | `fisher_divergence`           | a score against the exact score  |
|                             | `channel_f1`                  | imagined frames against real ones |
|                             | `frame_total_variation`       | laws of imagined and real frames |

The functions take NumPy arrays and return floats; the metrics are
`keras.metrics.Metric`s fed batch by batch with `update_state(real, generated)`
(`update_state(generated)` for IS). Images reach the feature-based metrics
through a `feature_extractor` (see `feature_extractors`): InceptionV3, built
on first use, or a classifier trained in seconds on the embedded digits.
"""

from keras_score.metrics import feature_extractors
from keras_score.metrics.feature_extractors import (
    ClassifierFeatures,
    InceptionV3Features,
    digits_classifier,
    train_digits_classifier,
)
from keras_score.metrics.fisher import fisher_divergence
from keras_score.metrics.frame_distribution import frame_total_variation
from keras_score.metrics.frame_f1 import channel_f1
from keras_score.metrics.frechet import FrechetDistance, frechet_distance
from keras_score.metrics.inception_score import InceptionScore, inception_score_splits
from keras_score.metrics.kernel_distance import KernelDistance, kernel_distance, kernel_distance_subsets
from keras_score.metrics.mmd import MaximumMeanDiscrepancy, maximum_mean_discrepancy, median_heuristic
from keras_score.metrics.sample_sets import SampleSetMetric
from keras_score.metrics.sliced_wasserstein import SlicedWassersteinDistance, sliced_wasserstein_distance

__all__ = [
    "ClassifierFeatures",
    "FrechetDistance",
    "InceptionScore",
    "InceptionV3Features",
    "KernelDistance",
    "MaximumMeanDiscrepancy",
    "SampleSetMetric",
    "SlicedWassersteinDistance",
    "channel_f1",
    "digits_classifier",
    "feature_extractors",
    "fisher_divergence",
    "frame_total_variation",
    "frechet_distance",
    "inception_score_splits",
    "kernel_distance",
    "kernel_distance_subsets",
    "maximum_mean_discrepancy",
    "median_heuristic",
    "sliced_wasserstein_distance",
    "train_digits_classifier",
]
