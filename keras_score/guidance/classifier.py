"""Classifier guidance: a classifier of noised data, p(y | x_t), steers sampling toward a class."""

import keras
import numpy as np
from keras import ops

from keras_score import noise_levels, normalization, schedules
from keras_score.guidance.base import Guidance, add_gradient_to_score
from keras_score.parameterization import Parameterization
from keras_score.sde import expand_to
from keras_score.validation import check_float, check_int, check_seed


@keras.saving.register_keras_serializable(package="keras_score")
class NoisyClassifier(keras.Model):
    """A classifier p(y | x_t) of data noised by a schedule, trained with `fit(x, labels)`.

    Calling the model on clean data x₀ (in data units) standardises it, draws
    a time t from `noise_distribution` and noise ε, and returns the logits
    for x_t = α(t)·x₀ + σ(t)·ε; `fit` minimises their cross-entropy with the
    labels, so `compile(metrics=["accuracy"])` reports the accuracy on noised
    data. The network sees x_t scaled by c_in = 1/sqrt(α² + σ²) and the noise
    level c_noise = ¼·log(σ/α), as a `ScoreModel`'s network does.

    To guide a `ScoreModel`, the classifier must work in the same space: make
    it with `NoisyClassifier.for_model(model, network, num_classes)`, which
    takes the model's schedule and data standardisation.

    Args:
        network: a Keras layer F((x, c_noise)) returning (batch, num_classes)
            logits, e.g. `keras_score.networks.MLP(output_units=num_classes)`.
        num_classes: number of classes K.
        schedule: `NoiseSchedule` or name.
        noise_distribution: distribution of the training times (name or object).
        normalize: True (standardise features with statistics fitted at the
            first `fit`), False, or a normalisation layer, as `ScoreModel`.
        seed: seed of the training noise.

    Example:
    >>> classifier = NoisyClassifier.for_model(model, MLP(output_units=8), num_classes=8)
    >>> classifier.compile(optimizer="adam", metrics=["accuracy"])
    >>> classifier.fit(x, labels, epochs=10)
    >>> samples = model.generate(100, labels=3, guidance=ClassifierGuidance(classifier, scale=2.0))

    Reference: Dhariwal & Nichol, "Diffusion Models Beat GANs on Image
    Synthesis", NeurIPS 2021, Sec. 4; Song et al. 2021, Sec. 5.
    """

    def __init__(
        self,
        network,
        num_classes,
        schedule="edm",
        noise_distribution="uniform",
        normalize=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(network, keras.layers.Layer):
            raise ValueError(f"`network` must be a Keras layer or model; received {network!r}.")
        self.network = network
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.schedule = schedules.get(schedule)
        self.schedule_layers = list(self.schedule.weight_layers)  # a learned schedule's frozen γ, saved with it
        self.noise_distribution = noise_levels.get(noise_distribution)
        self.normalizer, self.normalize = normalization.get(normalize)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed, name="training_noise")
        self._scaling = Parameterization()

    @classmethod
    def for_model(cls, model, network, num_classes, **kwargs):
        """A classifier in the space of the `ScoreModel` `model`: its schedule and fitted standardisation.

        Args:
            model: a built `ScoreModel` (fitted, when it normalises).
            network: the classifier network.
            num_classes: number of classes K.
            **kwargs: other constructor arguments.

        Returns:
            A built `NoisyClassifier` whose standardisation is frozen to the model's, and
            whose schedule is the model's (a learned γ copied from the model's EMA
            weights, frozen and saved with the classifier).
        """
        if not model.built or model.data_shape is None:
            raise ValueError("`model` must be built (fitted) before a classifier is made for it.")
        normalize = normalization.serialize(model.normalizer, model.normalize)
        with model.swap_ema_weights():  # a learned γ as the model samples with it, frozen in the classifier
            schedule = model.schedule.frozen_copy()
        classifier = cls(network, num_classes, schedule=schedule, normalize=normalize, **kwargs)
        classifier.build((None, *model.data_shape))
        if model.normalize:
            classifier.normalizer.set_weights(model.normalizer.get_weights())
        return classifier

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if not self.normalizer.built:
            self.normalizer.build(input_shape)
        if not self.network.built:
            self.network.build((input_shape, (input_shape[0],)))
        self.built = True

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`, which first fits the data standardisation if it is not fitted yet."""
        if self.normalize and not self.normalizer.is_adapted:
            self.normalizer.adapt(x)
        return super().fit(x, y, **kwargs)

    def call(self, x, training=False):
        """Logits for the data x (data units) noised at random times of `noise_distribution`."""
        z0 = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        z0 = self.normalizer(z0) if self.normalize else z0
        t = self.noise_distribution.sample(ops.shape(z0)[0], self.schedule, seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(z0), seed=self.seed_generator, dtype=z0.dtype)
        x_t = expand_to(self.schedule.alpha(t), z0) * z0 + expand_to(self.schedule.sigma(t), z0) * noise
        return self.logits(x_t, t, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError("`NoisyClassifier.fit` needs labels: call `fit(x, labels)`.")
        loss = keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True)
        loss = ops.mean(loss) if sample_weight is None else ops.mean(loss * sample_weight)
        for extra in self.losses:
            loss = loss + extra
        return loss

    def logits(self, x, t, training=False):
        """Logits of p(y | x_t = x) for x in the standardised space at times t (scalar or (batch,))."""
        t = ops.broadcast_to(ops.convert_to_tensor(t, dtype=x.dtype), (ops.shape(x)[0],))
        alpha = self.schedule.alpha(t)
        sigma = self.schedule.sigma(t)
        c_in = expand_to(self._scaling.c_in(alpha, sigma), x)
        c_noise = self._scaling.c_noise(alpha, sigma)
        return ops.cast(self.network((c_in * x, c_noise), training=training), x.dtype)

    def log_probs(self, x, t):
        """log p(y | x_t = x) for every class, shape (batch, num_classes)."""
        return ops.log_softmax(self.logits(x, t), axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": keras.saving.serialize_keras_object(self.network),
                "num_classes": self.num_classes,
                "schedule": keras.saving.serialize_keras_object(self.schedule),
                "noise_distribution": keras.saving.serialize_keras_object(self.noise_distribution),
                "normalize": normalization.serialize(self.normalizer, self.normalize),
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("network", "schedule", "noise_distribution"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_score")
class ClassifierGuidance(Guidance):
    """Adds scale·∇ₓ log p(y | x_t) of a noisy classifier to the score.

    The guided score ∇log p_t(x) + w·∇log p_t(y | x) samples p(x | y) at
    w = 1 and sharpens the class at w > 1 (Dhariwal & Nichol 2021, Alg. 1–2,
    with their scale s = w; Song et al. 2021, Sec. 5). The labels y are the
    `labels` given to `generate` (or `Sampler.sample`).

    The labels and the scale travel as tensors (`prepare` gives "labels" and
    "scale", both of shape (num_samples,)), so a compiled loop serves every
    scale and every set of labels; the graph depends only on the classifier
    (`signature`).

    Args:
        classifier: a `NoisyClassifier` (made with `NoisyClassifier.for_model`
            for a `ScoreModel`), or any function `classifier(x, t)` returning
            (batch, K) log-probabilities or logits of p(y | x_t = x), e.g. an
            exact mixture's `log_posterior`.
        scale: guidance scale w.

    Example:
    >>> guidance = ClassifierGuidance(classifier, scale=1.0)
    >>> samples = model.generate(100, labels=2, guidance=guidance)

    Reference: Dhariwal & Nichol, "Diffusion Models Beat GANs on Image
    Synthesis", NeurIPS 2021, Sec. 4.
    """

    name = "classifier"

    def __init__(self, classifier, scale=1.0):
        if not callable(classifier) or (
            isinstance(classifier, keras.Model) and not isinstance(classifier, NoisyClassifier)
        ):
            raise ValueError(
                f"`classifier` must be a NoisyClassifier or a function (x, t) -> log p(y | x_t); received {classifier!r}."
            )
        self.classifier = classifier
        self.scale = check_float(scale, "scale")

    @property
    def signature(self):
        """(class, id of the classifier): the scale and the labels are tensors of `prepare`."""
        return (self._class_path(), id(self.classifier))

    @property
    def variables(self):
        return list(self.classifier.variables) if isinstance(self.classifier, NoisyClassifier) else []

    @property
    def uses_labels(self):
        return True

    def check_model(self, model):
        """Raises unless the classifier shares `model`'s schedule and standardisation."""
        if not isinstance(self.classifier, NoisyClassifier):
            return
        same_schedule = self.classifier.schedule.signature() == model.schedule.signature()
        same_space = normalization.same_space(
            (self.classifier.normalizer, self.classifier.normalize), (model.normalizer, model.normalize)
        )
        if not (same_schedule and same_space):
            raise ValueError(
                "The classifier of `ClassifierGuidance` must share the model's schedule and data "
                "standardisation; make it with `NoisyClassifier.for_model(model, network, num_classes)`."
            )

    def prepare(self, num_samples, data_shape, labels=None, normalize=None):
        if labels is None:
            raise ValueError("`ClassifierGuidance` needs `labels`: the class of every sample.")
        if isinstance(self.classifier, NoisyClassifier) and labels.max() >= self.classifier.num_classes:
            raise ValueError(
                f"`labels` must lie in [0, {self.classifier.num_classes - 1}] for the classifier; "
                f"received {labels.max()}."
            )
        return {"labels": labels, "scale": np.full((num_samples,), self.scale, dtype="float32")}

    def denoiser(self, denoise, schedule, conditions):
        log_probs = self.classifier.log_probs if isinstance(self.classifier, NoisyClassifier) else self.classifier

        def log_likelihood(x, t):
            log_p = ops.log_softmax(log_probs(x, t), axis=-1)
            labels = ops.one_hot(ops.cast(conditions["labels"], "int32"), log_p.shape[-1], dtype=log_p.dtype)
            return ops.sum(log_p * labels, axis=-1)

        return add_gradient_to_score(denoise, schedule, log_likelihood, conditions["scale"])

    def get_config(self):
        return {"classifier": keras.saving.serialize_keras_object(self.classifier), "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        return cls(**config)
