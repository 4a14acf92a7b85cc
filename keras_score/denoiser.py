"""`Denoiser`: network + schedule + parameterization + condition encoder → D(x, t, condition)."""

import keras
from keras import ops

from keras_score import conditioning, precision
from keras_score import parameterization as parameterization_lib
from keras_score import schedules
from keras_score.guidance.classifier_free import classifier_free_guidance
from keras_score.samplers.base import score_from_denoised
from keras_score.sde import expand_to


@keras.saving.register_keras_serializable(package="keras_score")
class Denoiser(keras.layers.Layer):
    """The denoiser D(x, t | c) ≈ E[x₀ | x_t = x, c] of a score model, as one Keras layer.

    D = c_skip·x + c_out·F(c_in·x, c_noise[, e(c)]) (Karras et al. 2022,
    Eq. 7), with the network F, the schedule's α(t) and σ(t), the
    parameterization's coefficients and, for a conditional model, the
    embedding e(c) of the condition dict by the condition encoder. Where an
    example's "drop" flag is set (classifier-free dropout) or no condition
    is given, e(c) is the learned null embedding e(∅). Entries marked
    "channels" in the spec are concatenated to c_in·x along the last axis
    instead (zeros where dropped), so F sees C + c channels and returns C,
    e.g. `UNet(output_channels=C)`. The score is
    (α·D − x)/σ². Samplers, guidance and the likelihood take the layer (or
    its `score`) as a plain function; its weights are all the state a
    trained model needs to sample, so an EMA copy is `from_config` +
    `set_weights`. Under a mixed-precision policy the network computes in
    low precision and the rest in float32 (`keras_score.precision`).

    Args:
        network: a Keras layer F((x, c_noise)) — or F((x, c_noise, e)) for a
            model with encoded conditions — returning a tensor shaped like x.
        schedule: `NoiseSchedule` or its name.
        parameterization: `Parameterization` or its name.
        conditions: the condition spec (see
            `keras_score.conditioning.condition_spec`), empty or None for an
            unconditional denoiser.
        condition_encoder: a Keras layer mapping the condition dict to
            (batch, units); by default a `ConditionEmbedding`.
        num_classes: number of classes of a "labels" condition (for the
            default encoder).
        condition_units: size of the default encoder's embedding.

    Call arguments:
        x: noisy data, shape (batch, ...).
        t: times, a scalar or shape (batch,).
        condition: None, or a dict of tensors by the spec's names, with an
            optional bool "drop" of shape (batch,).
        training: whether the network runs in training mode.

    Returns:
        D(x, t | c), shaped like x.

    Example:
    >>> denoiser = Denoiser(MLP(hidden_units=32), schedule="edm", parameterization="edm")
    >>> denoiser.build((None, 2))
    >>> denoiser(ops.zeros((4, 2)), ops.ones((4,))).shape
    (4, 2)

    Reference: Karras et al., "Elucidating the Design Space of Diffusion-Based
    Generative Models", NeurIPS 2022; Ho & Salimans, "Classifier-Free
    Diffusion Guidance", 2022.
    """

    def __init__(
        self,
        network,
        schedule="edm",
        parameterization="edm",
        conditions=None,
        condition_encoder=None,
        num_classes=None,
        condition_units=64,
        **kwargs,
    ):
        super().__init__(**{**kwargs, "dtype": precision.full_precision_policy(kwargs.get("dtype"))})
        if not isinstance(network, keras.layers.Layer):
            raise ValueError(f"`network` must be a Keras layer or model; received {network!r}.")
        if condition_encoder is not None and not isinstance(condition_encoder, keras.layers.Layer):
            raise ValueError(f"`condition_encoder` must be a Keras layer; received {condition_encoder!r}.")
        self.network = network
        self.schedule = schedules.get(schedule)
        self.schedule_layers = list(self.schedule.weight_layers)  # a learned schedule's γ trains and saves with D
        self.parameterization = parameterization_lib.get(parameterization)
        self.conditions = conditioning.condition_spec(conditions)
        self.channel_conditions = conditioning.channel_entries(self.conditions)
        self.encoded_conditions = sorted(set(self.conditions) - set(self.channel_conditions))
        self.num_classes = num_classes
        self.condition_units = condition_units
        if self.encoded_conditions and condition_encoder is None:
            condition_encoder = conditioning.ConditionEmbedding(num_classes, condition_units, name="condition_embedding")
        self.condition_encoder = condition_encoder if self.encoded_conditions else None

    @property
    def is_conditional(self):
        return bool(self.conditions)

    @property
    def has_embedding(self):
        """Whether the network takes a condition embedding e(c) (some condition entry is encoded)."""
        return bool(self.encoded_conditions)

    def build(self, input_shape):
        """Builds every weight by one forward pass on zeros, so any Keras layer works as network or encoder."""
        x = ops.zeros((1, *tuple(input_shape)[1:]), dtype=self.compute_dtype)
        condition = None
        if self.is_conditional:
            condition = self.null_condition_inputs(1)
        if self.has_embedding:
            encoded = {name: condition[name] for name in self.encoded_conditions}
            units = self.condition_encoder.compute_output_spec(encoded).shape[-1]
            self.null_embedding = self.add_weight(name="null_embedding", shape=(units,), initializer="random_normal")
        output = self.network_output(x, ops.ones((1,), dtype=self.compute_dtype), condition)
        if tuple(output.shape[1:]) != tuple(x.shape[1:]):
            hint = " (for conditioning channels, e.g. UNet(output_channels=C))" if self.channel_conditions else ""
            raise ValueError(
                f"The network must return the data's shape {tuple(x.shape[1:])}{hint}; "
                f"it returns {tuple(output.shape[1:])}."
            )
        self.built = True

    def null_condition_inputs(self, batch_size):
        """Zeros of the spec's shapes and dtypes (placeholders; the "drop" flags make them ∅)."""
        return {
            name: ops.zeros((batch_size, *entry["shape"]), dtype=entry["dtype"])
            for name, entry in self.conditions.items()
        }

    def embed_condition(self, condition, batch_size, training=False):
        """e(c) of shape (batch, units): the encoder's output, or e(∅) where "drop" is set or c is None."""
        null = ops.broadcast_to(self.null_embedding, (batch_size, ops.shape(self.null_embedding)[0]))
        if condition is None:
            return null
        missing = sorted(set(self.conditions) - set(condition))
        if missing:
            raise ValueError(f"The condition lacks {missing}; this denoiser takes {sorted(self.conditions)}.")
        inputs = {name: condition[name] for name in self.encoded_conditions}
        embedding = self.condition_encoder(inputs, training=training)
        if condition.get("drop") is None:
            return embedding
        drop = ops.expand_dims(ops.cast(condition["drop"], "bool"), -1)
        return ops.where(drop, ops.cast(null, embedding.dtype), embedding)

    def network_output(self, x, t, condition=None, training=False):
        """The raw network output F(c_in·x, c_noise[, e(c)]) at times t (scalar or (batch,))."""
        batch_size = ops.shape(x)[0]
        t = ops.broadcast_to(ops.convert_to_tensor(t, dtype=x.dtype), (batch_size,))
        alpha = self.schedule.alpha(t)
        sigma = self.schedule.sigma(t)
        c_in = expand_to(self.parameterization.c_in(alpha, sigma), x)
        inputs = (self.concatenate_channels(c_in * x, condition), self.parameterization.c_noise(alpha, sigma))
        if self.has_embedding:
            inputs = inputs + (self.embed_condition(condition, batch_size, training),)
        return ops.cast(self.network(inputs, training=training), x.dtype)  # from a mixed-precision network

    def concatenate_channels(self, x, condition):
        """x (batch, H, W, C) with the "channels" entries of `condition` appended: zeros where dropped or absent."""
        if not self.channel_conditions:
            return x
        parts = [x]
        drop = None if condition is None or condition.get("drop") is None else condition["drop"]
        for name in self.channel_conditions:
            entry = self.conditions[name]
            if condition is None:
                value = ops.zeros((ops.shape(x)[0], *entry["shape"]), dtype=x.dtype)
            elif name not in condition:
                raise ValueError(f"The condition lacks {[name]}; this denoiser takes {sorted(self.conditions)}.")
            else:
                value = ops.cast(condition[name], x.dtype)
            channels = conditioning.as_channels(value, entry)
            if drop is not None:
                dropped = ops.reshape(ops.cast(drop, "bool"), (-1, 1, 1, 1))
                channels = ops.where(dropped, ops.zeros_like(channels), channels)
            parts.append(channels)
        return ops.concatenate(parts, axis=-1)

    def __call__(self, x, t, condition=None, training=False):
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return super().__call__(x, ops.convert_to_tensor(t, dtype=x.dtype), condition=condition, training=training)

    def call(self, x, t, condition=None, training=False):
        output = self.network_output(x, t, condition, training)
        return self._from_output(x, t, output)

    def _from_output(self, x, t, output):
        alpha = expand_to(self.schedule.alpha(t), x)
        sigma = expand_to(self.schedule.sigma(t), x)
        return self.parameterization.denoise(x, output, alpha, sigma)

    def guided(self, x, t, condition, guidance_scale):
        """Classifier-free guidance D̃ = D(x, t) + w·(D(x, t | c) − D(x, t)), both from one batched call.

        Args:
            x: noisy data, shape (batch, ...).
            t: times, a scalar or shape (batch,).
            condition: the condition dict (without "drop").
            guidance_scale: w, a scalar or shape (batch,) tensor; w = 1 is
                the conditional denoiser, w = 0 the unconditional one.

        Returns:
            D̃, shaped like x.
        """
        batch_size = ops.shape(x)[0]
        t = ops.broadcast_to(ops.convert_to_tensor(t, dtype=x.dtype), (batch_size,))
        both = {name: ops.concatenate([condition[name], condition[name]], axis=0) for name in self.conditions}
        both["drop"] = ops.concatenate(
            [ops.zeros((batch_size,), dtype="bool"), ops.ones((batch_size,), dtype="bool")], axis=0
        )
        output = self.network_output(ops.concatenate([x, x], axis=0), ops.concatenate([t, t], axis=0), both)
        scale = expand_to(ops.convert_to_tensor(guidance_scale, dtype=output.dtype), x)
        return self._from_output(x, t, classifier_free_guidance(output[:batch_size], output[batch_size:], scale))

    def score(self, x, t, condition=None, training=False):
        """∇ₓ log p_t(x | c) = (α·D − x)/σ²."""
        return score_from_denoised(self.schedule, x, t, self(x, t, condition, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "parameterization": keras.saving.serialize_keras_object(self.parameterization),
            "conditions": conditioning.spec_config(self.conditions),
            "condition_encoder": (
                None if self.condition_encoder is None else keras.saving.serialize_keras_object(self.condition_encoder)
            ),
            "num_classes": self.num_classes,
            "condition_units": self.condition_units,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("network", "schedule", "parameterization", "condition_encoder"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
