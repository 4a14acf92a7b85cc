"""`ScoreModel`: a Keras model that learns a denoiser, trains with `fit` and samples with `generate`."""

import json
import sys

import keras
import numpy as np
from keras import ops

from keras_score import conditioning, likelihood, noise_levels
from keras_score import guidance as guidance_lib
from keras_score import parameterization as parameterization_lib
from keras_score import samplers as samplers_lib
from keras_score import schedules
from keras_score import weighting as weighting_lib
from keras_score.losses import denoising_score_matching
from keras_score.normalization import Standardization
from keras_score.sde import SDE, expand_to


@keras.saving.register_keras_serializable(package="keras_score")
class ScoreModel(keras.Model):
    """A score-based generative model: network + schedule + parameterization + weighting.

    Training goes through Keras' own `fit` on every backend: `call(x)`
    standardises the data and `compute_loss` draws noise levels t and noise ε
    from the model's `SeedGenerator` and averages the weighted denoising loss
    (`per_example_loss`). The denoiser D(x, t) ≈ E[x₀ | x_t = x] and the score
    (α·D − x)/σ² work in the model's standardised space; `generate` returns
    samples in data units.

    A conditional model (`num_classes` and/or `context_dim`) learns
    D(x, t | c) and, with probability `p_uncond` of dropping c during
    training, the unconditional D(x, t) in the same network (Ho & Salimans
    2022). Give the condition to `fit` as `fit(x, labels)` (or context, or a
    dict {"labels": …, "context": …} as y), as a dict input
    {"x": …, "labels": …, "context": …}, or as a `tf.data` / `DataLoader`
    yielding `(x, labels)` or such dicts. The network then receives a third
    input, the condition embedding of shape (batch, condition_units).

    Args:
        network: a Keras layer F((x, c_noise)) returning a tensor shaped like x,
            e.g. `keras_score.networks.MLP()`.
        schedule: `NoiseSchedule` or name ("edm", "vp", "ve", "sub_vp", "cosine").
        parameterization: `Parameterization` or name ("edm", "epsilon", "x0", "v", "score").
        weighting: `Weighting` or name ("edm", "snr", "likelihood", "min_snr", "uniform").
        noise_distribution: `NoiseLevelDistribution` or name
            ("log_normal", "uniform", "discrete").
        normalize: standardise each feature with statistics fitted to the
            training data at the first `fit` (stored with the model).
        seed: seed of the training noise.
        feature_names: optional names of the data's features (table columns),
            saved with the model.
        num_classes: number of class labels K (0…K−1) to condition on, or None.
        context_dim: size of continuous context vectors to condition on, or None.
        p_uncond: probability of replacing an example's condition by the null
            condition during training (classifier-free guidance needs > 0).
        condition_units: size of the condition embedding given to the network.

    Example:
    ```python
    import keras_score
    data = keras_score.datasets.GaussianMixture.ring().sample(4096, seed=0)
    model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=128))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(data, batch_size=256, epochs=10)
    samples = model.generate(1000, sampler="heun", steps=32, seed=0)
    ```

    Reference: Song et al. 2021 (score SDEs); Karras et al. 2022 (EDM).
    """

    def __init__(
        self,
        network,
        schedule="edm",
        parameterization="edm",
        weighting="edm",
        noise_distribution="log_normal",
        normalize=True,
        seed=None,
        feature_names=None,
        num_classes=None,
        context_dim=None,
        p_uncond=0.1,
        condition_units=64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_classes", num_classes), ("context_dim", context_dim)):
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"`{name}` must be a positive integer or None; received {value!r}.")
        if not 0.0 <= p_uncond < 1.0:
            raise ValueError(f"`p_uncond` must lie in [0, 1); received {p_uncond!r}.")
        if not isinstance(network, keras.layers.Layer):
            raise ValueError(f"`network` must be a Keras layer or model; received {network!r}.")
        self.network = network
        self.schedule = schedules.get(schedule)
        self.sde = SDE(self.schedule)
        self.parameterization = parameterization_lib.get(parameterization)
        self.weighting = weighting_lib.get(weighting)
        self.noise_distribution = noise_levels.get(noise_distribution)
        self.normalize = bool(normalize)
        self.seed = seed
        self.feature_names = None if feature_names is None else [str(n) for n in feature_names]
        self.normalizer = Standardization(name="normalizer")
        self.seed_generator = keras.random.SeedGenerator(seed, name="training_noise")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.context_dim = None if context_dim is None else int(context_dim)
        self.p_uncond = float(p_uncond)
        self.condition_units = int(condition_units)
        self.condition_embedding = None
        if self.is_conditional:
            self.condition_embedding = conditioning.ConditionEmbedding(
                self.num_classes, self.context_dim, self.condition_units, name="condition_embedding"
            )
        self.data_shape = None
        self.last_num_function_evals = None
        self._generate_functions = {}
        self._log_prob_functions = {}

    @property
    def is_conditional(self):
        """Whether the model takes labels or context vectors."""
        return self.num_classes is not None or self.context_dim is not None

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["x"]
        input_shape = tuple(input_shape)
        self.data_shape = tuple(input_shape[1:])
        if not self.normalizer.built:
            self.normalizer.build(input_shape)
        network_shape = (input_shape, (input_shape[0],))
        if self.condition_embedding is not None:
            if not self.condition_embedding.built:
                self.condition_embedding.build()
            network_shape = network_shape + ((input_shape[0], self.condition_units),)
        if not self.network.built:
            self.network.build(network_shape)
        self.built = True

    def call(self, inputs, training=False):
        """The data x₀ of a batch in the model's standardised space (the loss is in `compute_loss`).

        Args:
            inputs: data of shape (batch, ...) in data units, or a dict with
                the data under "x" (and the condition under "labels"/"context").
        """
        return self.normalize_data(inputs["x"] if isinstance(inputs, dict) else inputs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean weighted denoising loss of the batch; y (if given) holds the condition."""
        per_example = denoising_score_matching(self, y_pred, self.seed_generator, self._training_condition(x, y, training))
        loss = ops.mean(per_example) if sample_weight is None else ops.mean(per_example * sample_weight)
        for extra in self.losses:
            loss = loss + extra
        return loss

    def per_example_loss(self, x, labels=None, context=None, training=False):
        """Weighted denoising score-matching loss of every example, at fresh random t and ε.

        Args:
            x: data in data units, shape (batch, ...).
            labels, context: the condition of a conditional model (None: the
                null condition).
            training: drop conditions with probability `p_uncond`.

        Returns:
            Tensor of shape (batch,).
        """
        y = {key: value for key, value in (("labels", labels), ("context", context)) if value is not None}
        return denoising_score_matching(
            self, self.normalize_data(x), self.seed_generator, self._training_condition(x, y or None, training)
        )

    def _given_condition(self, x, y):
        """The condition entries of a batch by name, from dict inputs x and from y (an array or a dict)."""
        given = dict(x) if isinstance(x, dict) else {}
        given.pop("x", None)
        if isinstance(y, dict):
            given.update(y)
        elif y is not None:
            if self.num_classes is not None and self.context_dim is not None:
                raise ValueError(
                    "A model with both labels and context takes y as a dict {'labels': ..., 'context': ...}."
                )
            given["labels" if self.num_classes is not None else "context" if self.context_dim else "y"] = y
        return given

    def _check_given_condition(self, given):
        """Raises unless `given` holds exactly the condition entries the model takes."""
        if not self.is_conditional and given:
            raise ValueError(
                f"This model is unconditional but was given {sorted(given)}; set `num_classes` or "
                "`context_dim` to train a conditional model."
            )
        for key, wanted in (("labels", self.num_classes), ("context", self.context_dim)):
            if wanted is not None and key not in given:
                raise ValueError(
                    f"This conditional model needs `{key}` in training: fit it with (x, {key}) "
                    f"or dict inputs {{'x': ..., '{key}': ...}}."
                )

    def _training_condition(self, x, y, training):
        """The condition dict of a training batch, from dict inputs x or from y; None if unconditional."""
        given = self._given_condition(x, y)
        self._check_given_condition(given)
        if not self.is_conditional:
            return None
        data = x["x"] if isinstance(x, dict) else x
        batch_size = ops.shape(data)[0]
        condition = {}
        for key, wanted in (("labels", self.num_classes), ("context", self.context_dim)):
            if wanted is None:
                continue
            condition[key] = ops.reshape(given[key], (batch_size,) if key == "labels" else (batch_size, wanted))
        if training and self.p_uncond > 0:
            drop = keras.random.uniform((batch_size,), seed=self.seed_generator) < self.p_uncond
        else:
            drop = ops.zeros((batch_size,), dtype="bool")
        condition["drop"] = drop
        return condition

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`, which first fits the data standardisation if it is not fitted yet.

        For a conditional model, y (or the "labels"/"context" entries of dict
        inputs) holds the condition.
        """
        self._check_condition_arguments(x, y)
        if self.normalize and not self.normalizer.is_adapted:
            self.normalizer.adapt(x)
        return super().fit(x, y, **kwargs)

    def _check_condition_arguments(self, x, y):
        """Raises before training when arrays or dicts lack the condition (or carry one the model has no use for)."""
        if hasattr(x, "shape") or isinstance(x, dict):  # datasets and loaders are checked in the first step
            self._check_given_condition(self._given_condition(x, y))

    def normalize_data(self, x):
        """Data units → the model's standardised space."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return self.normalizer(x) if self.normalize else x

    def denormalize_data(self, z):
        """The model's standardised space → data units."""
        return self.normalizer.inverse(z) if self.normalize else z

    def network_output(self, x, t, condition=None, training=False):
        """The raw network output F(c_in·x, c_noise[, condition embedding]) at times t (scalar or (batch,)).

        `condition` is the dict of "labels", "context" and "drop" tensors of
        a conditional model; None gives the null condition.
        """
        batch_size = ops.shape(x)[0]
        t = ops.broadcast_to(ops.convert_to_tensor(t, dtype=x.dtype), (batch_size,))
        alpha = self.schedule.alpha(t)
        sigma = self.schedule.sigma(t)
        c_in = expand_to(self.parameterization.c_in(alpha, sigma), x)
        c_noise = self.parameterization.c_noise(alpha, sigma)
        if self.condition_embedding is None:
            return self.network((c_in * x, c_noise), training=training)
        if condition is None:
            condition = self._null_condition(batch_size)
        return self.network((c_in * x, c_noise, self.condition_embedding(condition)), training=training)

    def _null_condition(self, batch_size):
        condition = {"drop": ops.ones((batch_size,), dtype="bool")}
        if self.num_classes is not None:
            condition["labels"] = ops.zeros((batch_size,), dtype="int32")
        if self.context_dim is not None:
            condition["context"] = ops.zeros((batch_size, self.context_dim), dtype=self.compute_dtype)
        return condition

    def denoise(self, x, t, labels=None, context=None, guidance_scale=None):
        """D(x, t) ≈ E[x₀ | x_t = x] in the standardised space; t scalar or shape (batch,).

        For a conditional model, `labels` (int, (batch,)) and/or `context`
        ((batch, context_dim)) give D(x, t | c); without them D is the
        unconditional denoiser. With `guidance_scale` w, classifier-free
        guidance D̃ = D(x, t) + w·(D(x, t | c) − D(x, t)) (Ho & Salimans
        2022, Eq. 6 written on the denoiser): w = 1 is conditional, w = 0
        unconditional, w > 1 sharpens the condition. For w ∉ {0, 1} both
        denoisers come from one batched network call.
        """
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        alpha = expand_to(self.schedule.alpha(t), x)
        sigma = expand_to(self.schedule.sigma(t), x)
        given = {key: value for key, value in (("labels", labels), ("context", context)) if value is not None}
        if given and not self.is_conditional:
            raise ValueError(f"This model is unconditional; `{'`, `'.join(sorted(given))}` cannot be given.")
        if not given or guidance_scale == 0:
            output = self.network_output(x, t)
        else:
            batch_size = ops.shape(x)[0]
            condition = dict(self._null_condition(batch_size), **given)
            condition["drop"] = ops.zeros((batch_size,), dtype="bool")
            if guidance_scale is None or guidance_scale == 1:
                output = self.network_output(x, t, condition)
            else:
                null = self._null_condition(batch_size)
                both = {key: ops.concatenate([condition[key], null[key]], axis=0) for key in condition}
                t_both = ops.broadcast_to(ops.convert_to_tensor(t, dtype=x.dtype), (batch_size,))
                outputs = self.network_output(
                    ops.concatenate([x, x], axis=0), ops.concatenate([t_both, t_both], axis=0), both
                )
                output = guidance_lib.classifier_free_guidance(
                    outputs[:batch_size], outputs[batch_size:], guidance_scale
                )
        return self.parameterization.denoise(x, ops.cast(output, x.dtype), alpha, sigma)

    def score(self, x, t, labels=None, context=None, guidance_scale=None):
        """∇ₓ log p_t(x) = (α·D − x)/σ² in the standardised space (arguments as in `denoise`)."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return samplers_lib.score_from_denoised(
            self.schedule, x, t, self.denoise(x, t, labels, context, guidance_scale)
        )

    def _unconditional_denoise(self, z, t):
        return self.denoise(z, t)

    def log_prob(self, x, **kwargs):
        """Log-density of each example in nats, in data units, by the probability-flow ODE.

        Runs `keras_score.likelihood.log_prob` on the standardised data
        z = (x − mean)/std with the (unconditional) denoiser and adds the
        log-Jacobian of the standardisation: log p_x(x) = log p_z(z) − Σ log std,
        the sum over every feature of an example. The value is the density
        of the data noised to σ(t_min) (`schedule.t_min` unless `t_min` is given).

        Args:
            x: data of shape (n, *data_shape), in data units.
            **kwargs: options of `keras_score.likelihood.log_prob` (solver,
                steps, rtol, atol, divergence, probes, batch_size, verbose, ...).

        Returns:
            float64 numpy array of shape (n,), or `(log_prob, details)` with
            `return_details=True` (details in the standardised space).

        Example:
        >>> nll = -model.log_prob(held_out).mean()
        >>> bpd = keras_score.likelihood.bits_per_dim(model.log_prob(held_out), num_dims=2)

        Reference: Song et al. 2021, Sec. 4.3 and App. D.
        """
        if not self.built or self.data_shape is None:
            raise ValueError("The model is not built: call `fit` (or `build`) before `log_prob`.")
        x = np.asarray(ops.convert_to_numpy(x), dtype=self.compute_dtype)
        if x.shape[1:] != tuple(self.data_shape):
            raise ValueError(
                f"`x` must have shape (n, {', '.join(map(str, self.data_shape))}) like the training data; "
                f"received shape {x.shape}."
            )
        result = likelihood.log_prob(
            self._unconditional_denoise,
            self.schedule,
            self.normalize_data(x),
            variables=self.variables,
            cache=self._log_prob_functions,
            **kwargs,
        )
        log_det = 0.0
        if self.normalize:
            std = ops.convert_to_numpy(self.normalizer.std).astype(np.float64)
            log_det = float(np.sum(np.log(np.broadcast_to(std, self.data_shape))))
        if kwargs.get("return_details"):
            return result[0] - log_det, result[1]
        return result - log_det

    def generate(
        self,
        num_samples,
        sampler="heun",
        steps=32,
        time_grid="karras",
        seed=None,
        batch_size=None,
        return_trajectory=False,
        labels=None,
        context=None,
        guidance_scale=None,
        guidance=None,
        verbose="auto",
    ):
        """Draws `num_samples` new samples, in data units.

        Sample i starts from prior noise that depends only on (seed, i), so a
        deterministic sampler gives sample i identically in any batch; a
        stochastic sampler gives identical results for the same seed and
        batch size on the same backend. The number of denoiser evaluations
        of the last call is kept in `last_num_function_evals` (with
        classifier-free guidance at w ∉ {0, 1} each is one network call on a
        doubled batch).

        Args:
            num_samples: number of samples, a positive integer.
            sampler: a `Sampler` or its name (see `keras_score.samplers.SAMPLERS`).
            steps: number of sampler steps (None lets RK45 choose its own).
            time_grid: "karras", "uniform", "log_snr" or a list of times.
            seed: integer seed; None draws one at random.
            batch_size: samples per compiled call (default: all at once).
            return_trajectory: also return the states at every grid time
                (in the standardised space).
            labels: class of every sample, an int or shape (num_samples,),
                for a model with `num_classes` or for `ClassifierGuidance`.
            context: context vectors, shape (context_dim,) or
                (num_samples, context_dim), for a model with `context_dim`.
            guidance_scale: classifier-free guidance scale w (see `denoise`);
                None means w = 1, the conditional model.
            guidance: a `keras_score.guidance.Guidance` (classifier,
                measurement gradient, inpainting) or a list of them.
            verbose: 0, 1, or "auto" (a progress bar over the batches when
                the output is a terminal).

        Returns:
            numpy array of shape (num_samples, *data_shape), or
            `(samples, trajectory)` when `return_trajectory` is set.

        Example:
        >>> samples = model.generate(64, labels=3, guidance_scale=2.0, sampler="dpmpp_2m", steps=20)
        """
        if not self.built or self.data_shape is None:
            raise ValueError("The model is not built: call `fit` (or `build`) before `generate`.")
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive integer; received {num_samples!r}.")
        num_samples = int(num_samples)
        batch_size = num_samples if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer; received {batch_size}.")
        sampler = samplers_lib.get(sampler)
        guidance = guidance_lib.get(guidance)
        conditions = self._generate_conditions(num_samples, labels, context, guidance_scale, guidance)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        noise = samplers_lib.initial_noise(num_samples, self.data_shape, seed) * self.sde.prior_std()
        times = sampler.make_time_grid(self.schedule, steps, time_grid)
        zero_end = samplers_lib.time_grids.lands_on_data(self.schedule, times)
        sampler, run = self._generate_function(sampler, zero_end, return_trajectory, guidance_scale, guidance)
        if verbose == "auto":
            verbose = int(sys.stdout.isatty())
        progress = keras.utils.Progbar(num_samples, unit_name="sample") if verbose else None
        outputs, trajectories = [], []
        for start in range(0, num_samples, batch_size):
            stop = min(start + batch_size, num_samples)
            tensors = keras.tree.map_structure(
                lambda a: ops.convert_to_tensor(a, dtype="int32" if a.dtype.kind in "iu" else self.compute_dtype),
                guidance_lib.slice_conditions(conditions, start, stop),
            )
            result = run(
                ops.convert_to_tensor(noise[start:stop], dtype=self.compute_dtype),
                ops.convert_to_tensor(times, dtype=self.compute_dtype),
                ops.convert_to_tensor(seed + start, dtype="int32"),
                tensors,
            )
            x, trajectory = result if return_trajectory else (result, None)
            outputs.append(ops.convert_to_numpy(self.denormalize_data(x)))
            trajectories.append(None if trajectory is None else ops.convert_to_numpy(trajectory))
            evaluations = getattr(sampler, "last_num_function_evals", None) or sampler.num_function_evals(
                len(times) - 1, zero_end
            )
            if progress is not None:
                progress.update(stop, values=[("nfe", evaluations)])
        self.last_num_function_evals = int(evaluations)
        samples = np.concatenate(outputs)
        if not np.all(np.isfinite(samples)):
            raise FloatingPointError(
                f"Sampling produced {int(np.sum(~np.isfinite(samples)))} NaN or Inf values; "
                "try more steps or another sampler."
            )
        if return_trajectory:
            return samples, np.concatenate(trajectories, axis=1)
        return samples

    def _generate_conditions(self, num_samples, labels, context, guidance_scale, guidance):
        """Validates the condition and guidance arguments of `generate`; returns per-sample host arrays."""
        if guidance_scale is not None:
            if not self.is_conditional:
                raise ValueError(
                    "`guidance_scale` needs a conditional model (`num_classes` or `context_dim`); this model is "
                    "unconditional."
                )
            if labels is None and context is None:
                raise ValueError("`guidance_scale` needs the condition to guide toward: give `labels` or `context`.")
            if isinstance(guidance_scale, bool) or not np.isfinite(guidance_scale):
                raise ValueError(f"`guidance_scale` must be a finite number; received {guidance_scale!r}.")
        denoiser = {}
        if labels is not None:
            if self.num_classes is None and not guidance.uses_labels:
                raise ValueError(
                    "`labels` were given to a model without `num_classes` and no guidance reads them."
                )
            num_classes = self.num_classes if self.num_classes is not None else np.iinfo("int32").max
            labels = conditioning.check_labels(labels, num_classes, num_samples)
            if self.num_classes is not None:
                denoiser["labels"] = labels
        if context is not None:
            if self.context_dim is None:
                raise ValueError("`context` was given to a model without `context_dim`.")
            denoiser["context"] = conditioning.check_context(context, self.context_dim, num_samples)
        guidance.check_model(self)
        normalize = (lambda v: ops.convert_to_numpy(self.normalize_data(v))) if self.normalize else None
        return {"denoiser": denoiser, "guidance": guidance.prepare(num_samples, self.data_shape, labels, normalize)}

    def _generate_function(self, sampler, zero_end, return_trajectory, guidance_scale, guidance):
        """(sampler, its compiled loop); cached per sampler configuration when there is no guidance object.

        The sampler returned is the one the loop was compiled for (an adaptive
        sampler records its evaluations there).
        """
        key = (
            json.dumps(keras.saving.serialize_keras_object(sampler), sort_keys=True),
            zero_end,
            return_trajectory,
            None if guidance_scale is None else float(guidance_scale),
        )
        unguided = isinstance(guidance, guidance_lib.NullGuidance)
        if unguided and key in self._generate_functions:
            return self._generate_functions[key]
        run = sampler.compile(
            lambda x, t, **condition: self.denoise(x, t, guidance_scale=guidance_scale, **condition),
            self.schedule,
            zero_end,
            return_trajectory,
            list(self.variables) + guidance.variables,
            guidance,
        )
        if unguided:
            self._generate_functions[key] = (sampler, run)
        return sampler, run

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": keras.saving.serialize_keras_object(self.network),
                "schedule": keras.saving.serialize_keras_object(self.schedule),
                "parameterization": keras.saving.serialize_keras_object(self.parameterization),
                "weighting": keras.saving.serialize_keras_object(self.weighting),
                "noise_distribution": keras.saving.serialize_keras_object(self.noise_distribution),
                "normalize": self.normalize,
                "seed": self.seed,
                "feature_names": self.feature_names,
                "num_classes": self.num_classes,
                "context_dim": self.context_dim,
                "p_uncond": self.p_uncond,
                "condition_units": self.condition_units,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("network", "schedule", "parameterization", "weighting", "noise_distribution"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
