"""Feature extractors for sample-quality metrics: InceptionV3 and a small digits classifier.

A feature extractor is any callable mapping a batch of samples (batch, ...)
to features (batch, ...); the metrics flatten its output to (batch, d). The
metrics' `feature_extractor=` argument takes one of:

- None: the inputs already are features (or low-dimensional samples);
- "inception": `InceptionV3Features()`, built on first use (the ImageNet
  weights are downloaded then, not when the metric is constructed);
- a Keras model, a `ClassifierFeatures`, an `InceptionV3Features`, or any
  other callable of tensors;
- a config dict made by `keras.saving.serialize_keras_object`.
"""

import keras
import numpy as np
from keras import layers
from keras import ops

from keras_score.backend import compile_function

INCEPTION_SIZE = 299


@keras.saving.register_keras_serializable(package="keras_score")
class InceptionV3Features:
    """InceptionV3 pool features (2048-d) or ImageNet class probabilities of images.

    The FID and KID features of Heusel et al. 2017 and Bińkowski et al. 2018:
    images are linearly mapped from `value_range` to [0, 255], grayscale is
    repeated to 3 channels, the batch is resized to 299 × 299 (bilinear) and
    passed through `keras.applications.inception_v3.preprocess_input` and
    `keras.applications.InceptionV3(weights=weights)` with global average
    pooling. The network is built on the first call, so constructing this
    object downloads nothing; calls are compiled by the backend
    (`keras_score.backend.compile_function`) once per batch shape, so feed
    batches of one size.

    Scores computed with these Keras weights are for comparing models with
    each other; they are not numerically comparable with published FIDs,
    which use the TF-slim "pt_inception-2015-12-05" graph of the original
    FID code.

    Args:
        weights: "imagenet" (downloaded once, about 90 MB, into
            ~/.keras/models), a path to a weights file, or None for random
            weights (for tests only: random features carry no meaning).
        include_top: False for the 2048-d pool features (FID, KID); True for
            the 1000 ImageNet class probabilities (Inception Score).
        value_range: (low, high) range of the input pixels, e.g. (-1, 1) for
            the library's data sets or (0, 255) for uint8 images.

    Call arguments:
        images: (batch, height, width, channels) with 1 or 3 channels, or
            (batch, height, width) grayscale; channels-last.

    Returns:
        (batch, 2048) features, or (batch, 1000) probabilities if `include_top`.

    Example:
    >>> extractor = InceptionV3Features(weights=None)
    >>> tuple(extractor(np.zeros((2, 8, 8, 1), "float32")).shape)
    (2, 2048)

    Reference: Szegedy et al., "Rethinking the Inception Architecture for
    Computer Vision", CVPR 2016.
    """

    def __init__(self, weights="imagenet", include_top=False, value_range=(-1.0, 1.0)):
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise ValueError(f"`value_range` must be (low, high) with high > low; received {value_range!r}.")
        self.weights = weights
        self.include_top = bool(include_top)
        self.value_range = (low, high)
        self._network = None
        self._forward = None

    def __call__(self, images):
        images = ops.convert_to_tensor(images, dtype="float32")
        if len(images.shape) == 3:
            images = images[..., None]
        if len(images.shape) != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                "`images` must have shape (batch, height, width, channels) with 1 or 3 channels, "
                f"or (batch, height, width); received shape {tuple(images.shape)}."
            )
        if self._forward is None:
            self._forward = compile_function(self._features, self.network.variables)
        return self._forward(images)

    def _features(self, images):
        if images.shape[-1] == 1:
            images = ops.repeat(images, 3, axis=-1)
        low, high = self.value_range
        images = (images - low) * (255.0 / (high - low))
        size = (INCEPTION_SIZE, INCEPTION_SIZE)
        images = ops.image.resize(images, size, interpolation="bilinear", data_format="channels_last")
        images = keras.applications.inception_v3.preprocess_input(images)
        if keras.config.image_data_format() == "channels_first":
            images = ops.transpose(images, (0, 3, 1, 2))
        return self.network(images, training=False)

    @property
    def network(self):
        """The `keras.applications.InceptionV3` model, built on first access."""
        if self._network is None:
            self._network = self._build()
        return self._network

    def _build(self):
        options = dict(include_top=self.include_top, weights=self.weights, pooling=None if self.include_top else "avg")
        if self.weights is None:
            return keras.applications.InceptionV3(**options)
        try:
            return keras.applications.InceptionV3(**options)
        except Exception as error:
            raise RuntimeError(
                f"Could not load the InceptionV3 weights {self.weights!r} ({type(error).__name__}: {error}). "
                "'imagenet' weights are downloaded from storage.googleapis.com on first use and cached "
                "in ~/.keras/models; offline, copy the weights file there or pass its path as "
                "`InceptionV3Features(weights=path)`, or give the metric another extractor, e.g. "
                "`feature_extractor=ClassifierFeatures(train_digits_classifier())` or "
                "`feature_extractor=None` for inputs that already are features."
            ) from error

    def get_config(self):
        return {"weights": self.weights, "include_top": self.include_top, "value_range": list(self.value_range)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_score")
class ClassifierFeatures:
    """The activations of one layer of a functional Keras classifier, flattened.

    Args:
        model: a functional (or built Sequential) Keras model, e.g. from
            `train_digits_classifier()`.
        layer: the layer whose output are the features, by name or index;
            -2, the default, is the penultimate layer.

    Call arguments:
        inputs: a batch the model accepts.

    Returns:
        (batch, d) features.

    Example:
    >>> extractor = ClassifierFeatures(digits_classifier(feature_units=16))
    >>> tuple(extractor(np.zeros((3, 8, 8, 1), "float32")).shape)
    (3, 16)
    """

    def __init__(self, model, layer=-2):
        if not isinstance(model, keras.Model):
            raise ValueError(f"`model` must be a Keras model; received {type(model).__name__}.")
        try:
            found = model.get_layer(name=layer) if isinstance(layer, str) else model.layers[layer]
            self._features = keras.Model(model.input, found.output)
        except (ValueError, IndexError, AttributeError) as error:
            raise ValueError(
                f"`layer` must name or index a layer of the functional model {model.name!r} "
                f"({len(model.layers)} layers); received {layer!r}: {error}"
            ) from error
        self.model = model
        self.layer = layer

    def __call__(self, inputs):
        features = self._features(inputs)
        return ops.reshape(features, (ops.shape(features)[0], -1))

    def get_config(self):
        return {"model": keras.saving.serialize_keras_object(self.model), "layer": self.layer}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the architecture; like any Keras config, the weights are not included."""
        return cls(keras.saving.deserialize_keras_object(config["model"]), config["layer"])


def digits_classifier(hidden_units=128, feature_units=64, num_classes=10, seed=0, input_shape=(8, 8, 1)):
    """An untrained MLP classifier of 8 × 8 digits (or images of `input_shape`) whose penultimate layer gives features.

    Layers: Flatten → Dense(hidden_units, relu) → Dense(feature_units, relu,
    name "features") → Dense(num_classes, softmax, name "probabilities").

    Args:
        hidden_units: width of the first hidden layer.
        feature_units: dimension of the features.
        num_classes: number of classes.
        seed: seed of the weight initialization.
        input_shape: the images' shape (H, W, C), e.g. (28, 28, 1) for Fashion-MNIST.

    Returns:
        A functional `keras.Model` from (batch, *input_shape) images to class probabilities.

    Example:
    >>> digits_classifier().output_shape
    (None, 10)
    """
    inputs = keras.Input(tuple(input_shape))
    x = layers.Flatten()(inputs)
    x = layers.Dense(hidden_units, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed))(x)
    x = layers.Dense(
        feature_units, activation="relu", name="features", kernel_initializer=keras.initializers.GlorotUniform(seed + 1)
    )(x)
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        name="probabilities",
        kernel_initializer=keras.initializers.GlorotUniform(seed + 2),
    )(x)
    return keras.Model(inputs, outputs, name="digits_classifier")


def train_digits_classifier(images=None, labels=None, epochs=15, batch_size=64, seed=0):
    """Trains `digits_classifier()` on the embedded digits, in a few seconds on a CPU.

    Each epoch visits the images in a fresh order drawn from `seed`, so the
    result depends only on the arguments and the backend.

    Args:
        images: (n, 8, 8, 1) images in [-1, 1] (or of any (H, W, C)); None
            for all of `keras_score.datasets.load_digits()`.
        labels: (n,) integer labels; required with `images`.
        epochs: passes over the data.
        batch_size: mini-batch size.
        seed: seed of the initialization and the data order.

    Returns:
        The trained `keras.Model`; trained on 1,400 digits it classifies
        the other 397 with about 98 % accuracy. `ClassifierFeatures(model)` gives its 64-d features.

    Example:
    >>> model = train_digits_classifier(epochs=2)
    >>> model.output_shape
    (None, 10)
    """
    if images is None:
        from keras_score.datasets import load_digits

        images, labels = load_digits(return_labels=True)
    elif labels is None or len(labels) != len(images):
        raise ValueError("`labels` must give one label per image when `images` is given.")
    if epochs < 1:
        raise ValueError(f"`epochs` must be a positive integer; received {epochs}.")
    images = np.asarray(images, "float32")
    labels = np.asarray(labels, "int64")
    model = digits_classifier(num_classes=int(labels.max()) + 1, seed=seed, input_shape=images.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(images)) for _ in range(epochs)])
    model.fit(images[order], labels[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return model


_BY_NAME = {"inception": InceptionV3Features, "inception_v3": InceptionV3Features}


def get(identifier):
    """Resolves a `feature_extractor=` argument to a callable, or None.

    Args:
        identifier: None, "inception" (or "inception_v3"), a config dict, or a callable.

    Returns:
        None or a callable mapping samples to features.

    Example:
    >>> type(get("inception")).__name__
    'InceptionV3Features'
    """
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(
                f"Unknown feature_extractor {identifier!r}; expected one of {sorted(_BY_NAME)}, "
                "None, a Keras model or a callable."
            )
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(
        "`feature_extractor` must be None, a name in "
        f"{sorted(_BY_NAME)}, a config dict, a Keras model or a callable; received {identifier!r}."
    )


def serialize(identifier):
    """The config form of a `feature_extractor=` argument (None and names stay as they are)."""
    if identifier is None or isinstance(identifier, (str, dict)):
        return identifier
    return keras.saving.serialize_keras_object(identifier)


def extract(extractor, samples):
    """Features of `samples` as a (batch, d) float32 tensor; `extractor` None means identity."""
    features = ops.convert_to_tensor(samples, dtype="float32") if extractor is None else extractor(samples)
    features = ops.cast(features, "float32")
    return ops.reshape(features, (ops.shape(features)[0], -1))
