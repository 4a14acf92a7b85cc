"""`ScoreModel`: a Keras model that trains a `Denoiser` with an objective and samples with `generate`."""

import contextlib
import json
import sys

import keras
import numpy as np
from keras import ops

from keras_score import backend, conditioning, likelihood, normalization, objectives, precision, validation
from keras_score import ema as ema_lib
from keras_score import guidance as guidance_lib
from keras_score import samplers as samplers_lib
from keras_score.callbacks import NonFiniteLossGuard
from keras_score.checkpoint import Checkpoint
from keras_score.denoiser import Denoiser
from keras_score.normalization import iterate_batches
from keras_score.sde import SDE


@keras.saving.register_keras_serializable(package="keras_score")
class ScoreModel(keras.Model):
    """A score-based generative model: a `Denoiser` trained by an objective, sampled by any sampler.

    Training goes through Keras' own `fit` on every backend: `call(x)`
    standardises the data and `compute_loss` averages the objective's
    per-example loss, whose noise levels and noise come from the model's
    `SeedGenerator` (saved with the model, so resumed training draws new
    noise). The `denoiser` (network + schedule + parameterization +
    condition encoder) works in the standardised space; `generate` returns
    samples in data units.

    A conditional model learns D(x, t | c) for a condition c that is a dict
    of tensors of any shapes — `num_classes` adds class labels "labels",
    `context_dim` context vectors "context", `conditions` any others, e.g.
    {"history": (8, 4)} for an observation history — and, with probability
    `p_uncond` of replacing c by the learned null condition in training, the
    unconditional D(x, t) in the same network (Ho & Salimans 2022). Give the
    condition to `fit` as `fit(x, labels)` (when there is one entry), as y
    = a dict of entries, as dict inputs {"x": …, name: …}, or as a
    `tf.data` / `DataLoader` yielding `(x, y)` or such dicts.

    Args:
        network: a Keras layer F((x, c_noise)) returning a tensor shaped like
            x (F((x, c_noise, e)) with the condition embedding e for a
            conditional model), e.g. `keras_score.networks.MLP()`.
        schedule: `NoiseSchedule` or name ("edm", "vp", "ve", "sub_vp", "cosine").
        parameterization: `Parameterization` or name ("edm", "epsilon", "x0", "v", "score").
        objective: `Objective` or name in `keras_score.objectives.OBJECTIVES`
            (default denoising score matching with EDM's weighting and
            log-normal noise levels).
        normalize: True: standardise each feature with statistics fitted
            to the training data at the first `fit`; False: none; or a
            normalisation layer, e.g.
            `keras_score.normalization.PixelScaling(256)` for images
            (stored with the model).
        seed: seed of the training noise, None or an integer in [0, 2³¹).
        feature_names: optional names of the data's features (table columns).
        num_classes: number of class labels K (0…K−1) to condition on, or None.
        context_dim: size of continuous context vectors to condition on, or None.
        conditions: other condition entries, {name: per-example shape} or
            {name: {"shape": ..., "dtype": ...}}; {"shape": (k, H, W, C),
            "channels": True} concatenates a frame stack (or an (H, W, c)
            image) to the noisy image as channels instead of encoding it
            (the network then returns the data's channels, e.g.
            `UNet(output_channels=C)`).
        condition_encoder: a Keras layer mapping the condition dict to
            (batch, units); default `keras_score.conditioning.ConditionEmbedding`.
        p_uncond: probability of replacing an example's condition by the null
            condition during training (classifier-free guidance needs > 0).
        condition_units: size of the default encoder's embedding.
        ema: an exponential moving average of the denoiser's weights
            (`keras_score.ema.HalfLifeEMA`, `PowerFunctionEMA`, or a name in
            `keras_score.ema.MOVING_AVERAGES`), or None. It is updated after
            every optimiser step inside the compiled training step, saved
            beside the raw weights, and used by `generate`, `log_prob` and
            `evaluate` unless they are called with `use_ema=False`; the raw
            weights keep training.

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
        objective="dsm",
        normalize=True,
        seed=None,
        feature_names=None,
        num_classes=None,
        context_dim=None,
        conditions=None,
        condition_encoder=None,
        p_uncond=0.1,
        condition_units=64,
        ema=None,
        **kwargs,
    ):
        super().__init__(**{**kwargs, "dtype": precision.full_precision_policy(kwargs.get("dtype"))})
        self.num_classes = None if num_classes is None else validation.check_int(num_classes, "num_classes", 1)
        self.context_dim = None if context_dim is None else validation.check_int(context_dim, "context_dim", 1)
        self.conditions = conditioning.condition_spec(conditions)
        self.p_uncond = validation.check_float(p_uncond, "p_uncond", 0.0, 1.0, exclusive_maximum=True)
        self.condition_units = validation.check_int(condition_units, "condition_units", 1)
        self.denoiser = Denoiser(
            network,
            schedule,
            parameterization,
            conditioning.condition_spec(conditions, self.num_classes, self.context_dim),
            condition_encoder,
            self.num_classes,
            self.condition_units,
            name="denoiser",
            dtype=self.dtype_policy,
        )
        self.objective = objectives.get(objective)
        self.sde = SDE(self.schedule)
        self.normalizer, self.normalize = normalization.get(normalize, self.dtype_policy)
        self.seed = validation.check_seed(seed)
        self.feature_names = None if feature_names is None else [str(n) for n in feature_names]
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="training_noise")
        self.ema = ema_lib.get(ema)
        self.ema_weights = []
        self.ema_steps = None
        self.data_shape = None
        self.last_num_function_evals = None
        self._log_det_per_dim = None
        self._generate_functions = {}
        self._log_prob_functions = {}

    @property
    def network(self):
        return self.denoiser.network

    @property
    def schedule(self):
        return self.denoiser.schedule

    @property
    def parameterization(self):
        return self.denoiser.parameterization

    @property
    def condition_spec(self):
        """The condition entries the model takes: {name: {"shape": ..., "dtype": ...}}."""
        return self.denoiser.conditions

    @property
    def is_conditional(self):
        """Whether the model takes a condition."""
        return self.denoiser.is_conditional

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["x"]
        input_shape = tuple(input_shape)
        self.data_shape = tuple(input_shape[1:])
        if not self.normalizer.built:
            self.normalizer.build(input_shape)
        if not self.denoiser.built:
            self.denoiser.build(input_shape)
        if self.ema is not None and not self.ema_weights:
            self._build_ema()
        self.built = True

    def _build_ema(self):
        """The average's variables, one per trainable denoiser weight, starting at its value, and the step count."""
        for i, weight in enumerate(self.denoiser.trainable_variables):
            average = self.add_weight(
                shape=weight.shape, dtype=weight.dtype, initializer="zeros", trainable=False, name=f"ema_{i}"
            )
            average.assign(ops.copy(weight.value))  # its own buffer: JAX donates the two separately
            self.ema_weights.append(average)
        self.ema_steps = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="ema_steps")

    def compile(self, optimizer="rmsprop", loss=None, auto_scale_loss=True, **kwargs):
        """`keras.Model.compile`; with a "mixed_float16" network, the optimizer is wrapped in a `LossScaleOptimizer`.

        Keras wraps it only when the model's own policy is mixed_float16;
        here the model computes in float32 around a float16 network
        (`keras_score.precision`), so the network's policy decides.
        """
        super().compile(optimizer=optimizer, loss=loss, auto_scale_loss=auto_scale_loss, **kwargs)
        if (
            auto_scale_loss
            and self.network.dtype_policy.name == "mixed_float16"
            and not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer, name="loss_scale_optimizer")

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved (Keras skips this for a model with its own `compile`)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def train_step(self, *args):
        """Keras' train step, followed (with an `ema`) by the average's update in the same compiled step."""
        if self.ema is None:
            return super().train_step(*args)
        return backend.train_step_then(self, super().train_step, args, self._update_ema)

    def _update_ema(self):
        step = self.ema_steps + 1
        self.ema_steps.assign(step)
        self.ema.update(self.ema_weights, self.denoiser.trainable_variables, step)

    @contextlib.contextmanager
    def swap_ema_weights(self, use_ema=True):
        """Within the block, the denoiser's trainable weights are the EMA's; the raw weights return after it.

        Does nothing for a model without `ema` or with `use_ema` False. The
        raw weights come back even if the block raises.

        Args:
            use_ema: whether to swap (None: when the model has an EMA).

        Example:
        >>> with model.swap_ema_weights():
        ...     d = model.denoise(x, t)  # with the averaged weights
        """
        if self.ema is None or use_ema is False or not self.ema_weights:
            yield
            return
        weights = self.denoiser.trainable_variables
        raw = [ops.copy(weight.value) for weight in weights]
        try:
            for weight, average in zip(weights, self.ema_weights):
                weight.assign(ops.copy(average.value))
            yield
        finally:
            for weight, value in zip(weights, raw):
                weight.assign(value)

    def evaluate(self, *args, use_ema=None, **kwargs):
        """`keras.Model.evaluate`, with the EMA weights when the model has an `ema` (unless `use_ema=False`)."""
        self._prepare_bits_per_dim()
        with self.swap_ema_weights(use_ema):
            return super().evaluate(*args, **kwargs)

    def call(self, inputs, training=False):
        """The data x₀ of a batch in the model's standardised space (the loss is in `compute_loss`).

        Args:
            inputs: data of shape (batch, ...) in data units, or a dict with
                the data under "x" (and the condition entries by name).
        """
        return self.normalize_data(inputs["x"] if isinstance(inputs, dict) else inputs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean of the objective's per-example loss; y (if given) holds the condition."""
        seed = backend.replica_seed_generator(self.seed_generator)  # each tf.distribute replica its own noise
        condition = self._training_condition(x, y, training, seed)
        per_example = self.objective(self.denoiser, y_pred, condition, seed, training)
        loss = ops.mean(per_example) if sample_weight is None else ops.mean(per_example * sample_weight)
        for extra in self.losses:
            loss = loss + extra
        return backend.scale_loss_for_replicas(loss)

    def get_metrics_result(self):
        """Keras' metrics, with "bits_per_dim" beside the loss when the objective is a likelihood bound.

        For `keras_score.objectives.VariationalBound` the loss is the
        negative ELBO in nats per dimension; in bits per dimension of the data
        it is loss/log 2 for discrete data (`levels`), and for continuous data
        (loss − log|det| of the normalisation per dimension)/log 2.
        """
        result = super().get_metrics_result()
        if self._log_det_per_dim is not None and "loss" in result:
            result["bits_per_dim"] = (result["loss"] - self._log_det_per_dim) / np.log(2.0)
        return result

    def _prepare_bits_per_dim(self):
        """Fixes, before `fit` or `evaluate` trace their steps, the log|det| per dimension `bits_per_dim` subtracts."""
        self._log_det_per_dim = None
        if self.objective.is_likelihood_bound and self.data_shape:
            continuous = self.objective.levels is None and self.normalize
            log_det = self.normalizer.log_abs_det_jacobian(self.data_shape) if continuous else 0.0
            self._log_det_per_dim = log_det / float(np.prod(self.data_shape))

    def per_example_loss(self, x, condition=None, training=False, **entries):
        """The objective's loss of every example, at fresh random noise.

        Args:
            x: data in data units, shape (batch, ...).
            condition: the condition dict of a conditional model (None: the
                null condition); entries may also be given as keywords
                (`labels=...`, `context=...`).
            training: drop conditions with probability `p_uncond`.

        Returns:
            Tensor of shape (batch,).
        """
        given = dict(condition or {}, **{k: v for k, v in entries.items() if v is not None})
        condition = self._training_condition(x, given, training, self.seed_generator) if given else None
        return self.objective(self.denoiser, self.normalize_data(x), condition, self.seed_generator, training)

    def _given_condition(self, x, y):
        """The condition entries of a batch by name, from dict inputs x and from y (an array or a dict)."""
        given = dict(x) if isinstance(x, dict) else {}
        given.pop("x", None)
        if isinstance(y, dict):
            given.update(y)
        elif y is not None:
            if len(self.condition_spec) != 1:
                raise ValueError(
                    f"This model takes the condition entries {sorted(self.condition_spec) or 'none'}; give y as a "
                    "dict of them." if self.condition_spec else "This model is unconditional but was given y."
                )
            given[next(iter(self.condition_spec))] = y
        return given

    def _check_given_condition(self, given):
        """Raises unless `given` holds exactly the condition entries the model takes."""
        if not self.is_conditional and given:
            raise ValueError(
                f"This model is unconditional but was given {sorted(given)}; set `num_classes`, "
                "`context_dim` or `conditions` to train a conditional model."
            )
        unknown = sorted(set(given) - set(self.condition_spec))
        if unknown:
            raise ValueError(f"Unknown condition entries {unknown}; this model takes {sorted(self.condition_spec)}.")
        for name in self.condition_spec:
            if name not in given:
                raise ValueError(
                    f"This conditional model needs `{name}` in training: fit it with (x, {name}) "
                    f"or dict inputs {{'x': ..., '{name}': ...}}."
                )

    def _training_condition(self, x, y, training, seed):
        """The condition dict of a training batch (with "drop" flags drawn from `seed`), or None if unconditional."""
        given = self._given_condition(x, y)
        self._check_given_condition(given)
        if not self.is_conditional:
            return None
        batch_size = ops.shape(x["x"] if isinstance(x, dict) else x)[0]
        condition = {
            name: ops.cast(ops.reshape(given[name], (batch_size, *entry["shape"])), entry["dtype"])
            for name, entry in self.condition_spec.items()
        }
        if training and self.p_uncond > 0:
            condition["drop"] = keras.random.uniform((batch_size,), seed=seed) < self.p_uncond
        return condition

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`, after checking the data and fitting the standardisation if it is not fitted yet.

        Arrays and dicts of arrays are checked before training: the data's
        shape against the model's, finite values, and every condition entry
        (shape, dtype, labels in [0, num_classes)). A loss that becomes NaN
        or Inf stops training with a `FloatingPointError` and restores the
        weights of the last epoch that ended finite. A call that fails leaves
        the model as it was before it, on every backend. With a
        `keras_score.checkpoint.Checkpoint` among the callbacks, the latest
        checkpoint in its folder is restored first and training goes on
        from its step (exactly, for arrays).
        """
        self._check_training_arrays(x, y)
        if backend.batch_devices() > 1 and (hasattr(x, "shape") or isinstance(x, dict)):
            backend.check_batches(len(keras.tree.flatten(x)[0]), kwargs.get("batch_size") or 32, "len(x)")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        checkpoint = next((c for c in callbacks if isinstance(c, Checkpoint)), None)
        with backend.strategy_scope(self):  # variables made here are a tf.distribute strategy's, as in `fit`
            if not self.built:
                first = next(iter(iterate_batches(x)))
                self.build((None, *np.shape(first)[1:]))
            self._adapt_preprocessing(x, y)
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)  # so that a failure inside `fit` finds it to restore
            if checkpoint is not None:
                x, y, kwargs = checkpoint.prepare_fit(self, x, y, kwargs)
        self._prepare_bits_per_dim()
        guard = NonFiniteLossGuard(checkpoint)
        callbacks.append(guard)
        variables = list(self.variables) + list(self.metrics_variables)
        if self.optimizer is not None:
            variables += list(self.optimizer.variables)
        with backend.restore_on_error(variables):
            history = super().fit(x, y, callbacks=callbacks, **kwargs)
        guard.raise_if_stopped()
        return history

    def _adapt_preprocessing(self, x, y):
        """Fits the data's standardisation at the first `fit` (after the data are checked)."""
        if self.normalize and not self.normalizer.is_adapted:
            self.normalizer.adapt(x)

    def _check_training_arrays(self, x, y):
        """Checks arrays and dicts of arrays on the host (datasets and loaders are checked as they stream)."""
        if not (hasattr(x, "shape") or isinstance(x, dict)):
            return
        data = np.asarray(ops.convert_to_numpy(x["x"] if isinstance(x, dict) else x))
        if self.data_shape is not None and data.shape[1:] != tuple(self.data_shape):
            raise ValueError(
                f"`x` must have shape (n, {', '.join(map(str, self.data_shape))}) like the model's data; "
                f"received shape {data.shape}."
            )
        if not np.all(np.isfinite(data)):
            raise ValueError(f"Training data contains {int(np.sum(~np.isfinite(data)))} NaN or Inf values.")
        given = self._given_condition(x, y)
        self._check_given_condition(given)
        for name, value in given.items():
            conditioning.check_condition(
                name, ops.convert_to_numpy(value), self.condition_spec[name], data.shape[0], self._num_classes(name)
            )

    def _num_classes(self, name):
        return self.num_classes if name == conditioning.LABELS else None

    def normalize_data(self, x):
        """Data units → the model's standardised space."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return self.normalizer(x) if self.normalize else x

    def denormalize_data(self, z):
        """The model's standardised space → data units."""
        return self.normalizer.inverse(z) if self.normalize else z

    def denoise(self, x, t, condition=None, guidance_scale=None, **entries):
        """D(x, t) ≈ E[x₀ | x_t = x] in the standardised space; t scalar or shape (batch,).

        For a conditional model, the condition (a dict, or entries as
        keywords: `labels` (int, (batch,)), `context`, ...) gives D(x, t | c);
        without it D is the unconditional denoiser. With `guidance_scale` w,
        classifier-free guidance D̃ = D(x, t) + w·(D(x, t | c) − D(x, t))
        (Ho & Salimans 2022, Eq. 6 written on the denoiser), both from one
        batched network call.
        """
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        given = dict(condition or {}, **{k: v for k, v in entries.items() if v is not None})
        if given and not self.is_conditional:
            raise ValueError(f"This model is unconditional; `{'`, `'.join(sorted(given))}` cannot be given.")
        if not given:
            return self.denoiser(x, t)
        condition = self._sampling_condition(given, ops.shape(x)[0])
        condition = {k: ops.convert_to_tensor(v) for k, v in condition.items()}
        return self._sampling_denoise(x, t, condition, guidance_scale)

    def _sampling_denoise(self, x, t, condition=None, guidance_scale=None):
        """The denoiser a sampler runs: conditional, or classifier-free guided when a scale is given."""
        if guidance_scale is None:
            return self.denoiser(x, t, condition)
        return self.denoiser.guided(x, t, condition, guidance_scale)

    def score(self, x, t, condition=None, guidance_scale=None, **entries):
        """∇ₓ log p_t(x) = (α·D − x)/σ² in the standardised space (arguments as in `denoise`)."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return samplers_lib.score_from_denoised(
            self.schedule, x, t, self.denoise(x, t, condition, guidance_scale, **entries)
        )

    def log_prob(self, x, use_ema=None, **kwargs):
        """Log-density of each example in nats, in data units, by the probability-flow ODE.

        Runs `keras_score.likelihood.log_prob` on the normalised data z
        (e.g. (x − mean)/std) with the (unconditional) denoiser and adds the
        log-Jacobian of the normalisation: log p_x(x) = log p_z(z) + log |dz/dx|
        (−Σ log std over every feature of an example for the standardisation). The value is the density
        of the data noised to σ(t_min) (`schedule.t_min` unless `t_min` is given).

        Args:
            x: data of shape (n, *data_shape), in data units.
            use_ema: use the EMA weights (default: when the model has an `ema`).
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
        self._check_built("log_prob")
        x = np.asarray(ops.convert_to_numpy(x), dtype=self.compute_dtype)
        if x.shape[1:] != tuple(self.data_shape):
            raise ValueError(
                f"`x` must have shape (n, {', '.join(map(str, self.data_shape))}) like the training data; "
                f"received shape {x.shape}."
            )
        with self.swap_ema_weights(use_ema):
            result = likelihood.log_prob(
                self.denoiser,
                self.schedule,
                self.normalize_data(x),
                variables=self.variables,
                cache=self._log_prob_functions,
                **kwargs,
            )
        log_det = self.normalizer.log_abs_det_jacobian(self.data_shape) if self.normalize else 0.0
        if kwargs.get("return_details"):
            return result[0] + log_det, result[1]
        return result + log_det

    def _check_built(self, method):
        if not self.built or self.data_shape is None:
            raise ValueError(f"The model is not built: call `fit` (or `build`) before `{method}`.")

    def generate(
        self,
        num_samples,
        sampler="heun",
        steps=32,
        time_grid="karras",
        seed=None,
        batch_size=None,
        return_trajectory=False,
        condition=None,
        labels=None,
        context=None,
        guidance_scale=None,
        guidance=None,
        verbose="auto",
        use_ema=None,
    ):
        """Draws `num_samples` new samples, in data units.

        Sample i starts from prior noise that depends only on (seed, i), so a
        deterministic sampler gives sample i identically in any batch; a
        stochastic sampler gives identical results for the same seed and
        batch size on the same backend. The sampling loop is compiled once
        per sampler configuration, batch shape and kind of guidance; the
        guidance scale, the condition, the guidance's data (inpainting
        values and masks, labels, measurements) and the seed travel into it
        as tensors, so calls that change only those reuse it. The number of
        denoiser evaluations of the last call is `last_num_function_evals`
        (with classifier-free guidance each is one network call on a
        doubled batch).

        Args:
            num_samples: number of samples, a positive integer.
            sampler: a `Sampler` or its name (see `keras_score.samplers.SAMPLERS`).
            steps: number of sampler steps (None lets RK45 choose its own).
            time_grid: "karras", "uniform", "log_snr" or a list of times.
            seed: integer seed in [0, 2³¹); None draws one at random.
            batch_size: samples per compiled call (default: all at once).
            return_trajectory: also return the states at every grid time
                (in the standardised space).
            condition: dict of condition entries of a conditional model, each
                of the per-example shape (shared) or (num_samples, ...).
            labels: class of every sample, an int or shape (num_samples,),
                for a model with `num_classes` or for `ClassifierGuidance`.
            context: context vectors, shape (context_dim,) or
                (num_samples, context_dim), for a model with `context_dim`.
            guidance_scale: classifier-free guidance scale w (see `denoise`);
                None samples the conditional model without the doubled batch.
            guidance: a `keras_score.guidance.Guidance` (classifier,
                measurement gradient, inpainting) or a list of them.
            verbose: 0, 1, or "auto" (a progress bar over the batches when
                the output is a terminal).
            use_ema: sample with the EMA weights (default: when the model has
                an `ema`).

        Returns:
            numpy array of shape (num_samples, *data_shape), or
            `(samples, trajectory)` when `return_trajectory` is set.

        Example:
        >>> samples = model.generate(64, labels=3, guidance_scale=2.0, sampler="dpmpp_2m", steps=20)
        """
        batches = self.generate_batches(
            num_samples,
            sampler=sampler,
            steps=steps,
            time_grid=time_grid,
            seed=seed,
            batch_size=batch_size,
            return_trajectory=return_trajectory,
            condition=condition,
            labels=labels,
            context=context,
            guidance_scale=guidance_scale,
            guidance=guidance,
            verbose=verbose,
            use_ema=use_ema,
        )
        return self.concatenate_batches(batches, return_trajectory)

    @staticmethod
    def concatenate_batches(batches, return_trajectory=False):
        """The samples of `generate_batches` as one array (and the trajectories along their batch axis)."""
        if not return_trajectory:
            return np.concatenate(list(batches))
        samples, trajectories = zip(*batches)
        return np.concatenate(samples), np.concatenate(trajectories, axis=1)

    def generate_batches(
        self,
        num_samples,
        sampler="heun",
        steps=32,
        time_grid="karras",
        seed=None,
        batch_size=None,
        return_trajectory=False,
        condition=None,
        labels=None,
        context=None,
        guidance_scale=None,
        guidance=None,
        verbose="auto",
        use_ema=None,
    ):
        """Draws `num_samples` samples batch by batch: a generator of numpy arrays in data units.

        The arguments and the samples are those of `generate`, which
        concatenates these batches; here only one batch's prior noise and
        samples are held at a time, so the memory of a long run is bounded by
        `batch_size`, not by `num_samples`. The arguments are checked and the
        sampling loop compiled when this is called; each batch is sampled
        when it is asked for, with the one compiled loop.

        Returns:
            A generator yielding, for the rows [start, start + batch_size) in
            turn, an array of shape (rows, *data_shape), or `(samples,
            trajectory)` with `return_trajectory` (the trajectory of shape
            (N + 1, rows, *data_shape), in the standardised space).

        Raises:
            FloatingPointError: (when a batch is drawn) if it holds NaN or Inf.

        Example:
        >>> for batch in model.generate_batches(1_000_000, batch_size=4096, seed=0):
        ...     np.savetxt(f, batch)
        """
        self._check_built("generate")
        num_samples = validation.check_int(num_samples, "num_samples", minimum=1)
        batch_size = num_samples if batch_size is None else validation.check_int(batch_size, "batch_size", 1)
        backend.check_batches(num_samples, batch_size, "num_samples")
        seed = validation.check_seed(seed)
        if seed is None:
            seed = validation.random_seed()
        sampler = samplers_lib.get(sampler)
        guidance = guidance_lib.get(guidance)
        conditions = self._generate_conditions(num_samples, condition, labels, context, guidance_scale, guidance)
        times = sampler.make_time_grid(self.schedule, steps, time_grid)
        zero_end = samplers_lib.time_grids.lands_on_data(self.schedule, times)
        run = self._generate_function(sampler, zero_end, return_trajectory, conditions, guidance)
        if verbose == "auto":
            verbose = int(sys.stdout.isatty())
        progress = keras.utils.Progbar(num_samples, unit_name="sample") if verbose else None

        def batches():  # one compiled call per batch, each drawing only its own prior noise
            for start in range(0, num_samples, batch_size):
                stop = min(start + batch_size, num_samples)
                noise = samplers_lib.initial_noise(stop - start, self.data_shape, seed, start=start)
                tensors = keras.tree.map_structure(
                    lambda a: ops.convert_to_tensor(a, dtype="int32" if a.dtype.kind in "iu" else self.compute_dtype),
                    guidance_lib.slice_conditions(conditions, start, stop),
                )
                noise, tensors = backend.distribute_batch(
                    (ops.convert_to_tensor(noise * self.sde.prior_std(), dtype=self.compute_dtype), tensors),
                    stop - start,
                )  # across the devices of a keras.distribution
                with self.swap_ema_weights(use_ema):
                    result = run(
                        noise,
                        ops.convert_to_tensor(times, dtype=self.compute_dtype),
                        ops.convert_to_tensor((seed + start) % (validation.SEED_MAX + 1), dtype="int32"),
                        tensors,
                    )
                    result = keras.tree.map_structure(ops.convert_to_numpy, result)
                samples = ops.convert_to_numpy(self.denormalize_data(result["x"]))
                self.last_num_function_evals = int(ops.convert_to_numpy(result["num_function_evals"]))
                if not np.all(np.isfinite(samples)):
                    raise FloatingPointError(
                        f"Sampling produced {int(np.sum(~np.isfinite(samples)))} NaN or Inf values "
                        f"(in samples {start}…{stop - 1}); try more steps or another sampler."
                    )
                if progress is not None:
                    progress.update(stop, values=[("nfe", self.last_num_function_evals)])
                if return_trajectory:
                    yield samples, ops.convert_to_numpy(result["trajectory"])
                else:
                    yield samples

        return batches()

    def _sampling_condition(self, given, num_samples):
        """Validated per-sample host arrays of the condition entries in `given` (all entries required)."""
        self._check_given_condition(given)
        return {
            name: conditioning.check_condition(name, value, self.condition_spec[name], num_samples, self._num_classes(name))
            for name, value in given.items()
        }

    def _generate_conditions(self, num_samples, condition, labels, context, guidance_scale, guidance):
        """Validates the condition and guidance arguments of `generate`; returns per-sample host arrays."""
        given = dict(condition or {})
        for name, value in (("labels", labels), ("context", context)):
            if value is not None and (name in self.condition_spec or name == "context"):
                given[name] = value
        if labels is not None:
            if "labels" not in self.condition_spec and not guidance.uses_labels:
                raise ValueError("`labels` were given to a model without `num_classes` and no guidance reads them.")
            labels = conditioning.check_labels(labels, self.num_classes or validation.SEED_MAX, num_samples)
        if given and not self.is_conditional:
            raise ValueError(
                f"This model is unconditional; `{'`, `'.join(sorted(given))}` cannot be given (set "
                "`num_classes`, `context_dim` or `conditions` to train a conditional model)."
            )
        denoiser = {"condition": self._sampling_condition(given, num_samples)} if given else {}
        if guidance_scale is not None:
            if not self.is_conditional:
                raise ValueError(
                    "`guidance_scale` needs a conditional model (`num_classes`, `context_dim` or `conditions`); "
                    "this model is unconditional."
                )
            if not given:
                raise ValueError("`guidance_scale` needs the condition to guide toward: give `condition` or `labels`.")
            scale = validation.check_float(guidance_scale, "guidance_scale")
            denoiser["guidance_scale"] = np.full((num_samples,), scale, dtype="float32")
        guidance.check_model(self)
        normalize = (lambda v: ops.convert_to_numpy(self.normalize_data(v))) if self.normalize else None
        return {"denoiser": denoiser, "guidance": guidance.prepare(num_samples, self.data_shape, labels, normalize)}

    def _generate_function(self, sampler, zero_end, return_trajectory, conditions, guidance):
        """The compiled loop, cached by what is baked into its graph (never by the values of tensors)."""
        key = (
            json.dumps(keras.saving.serialize_keras_object(sampler), sort_keys=True),
            zero_end,
            return_trajectory,
            tuple(sorted(conditions["denoiser"])),
            guidance.signature,
        )
        if key not in self._generate_functions:
            self._generate_functions[key] = sampler.compile(
                self._sampling_denoise,
                self.schedule,
                zero_end,
                return_trajectory,
                list(self.variables) + guidance.variables,
                guidance,
            )
        return self._generate_functions[key]

    def save_own_variables(self, store):
        """Saves the model's own variables and the training-noise generator's state (so resumed training draws new noise)."""
        super().save_own_variables(store)
        store[str(len(self._trainable_variables + self._non_trainable_variables))] = self.seed_generator.state

    def load_own_variables(self, store):
        own = self._trainable_variables + self._non_trainable_variables
        for i, variable in enumerate(own):
            variable.assign(store[str(i)])
        self.seed_generator.state.assign(store[str(len(own))])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": keras.saving.serialize_keras_object(self.network),
                "schedule": keras.saving.serialize_keras_object(self.schedule),
                "parameterization": keras.saving.serialize_keras_object(self.parameterization),
                "objective": keras.saving.serialize_keras_object(self.objective),
                "normalize": normalization.serialize(self.normalizer, self.normalize),
                "seed": self.seed,
                "feature_names": self.feature_names,
                "num_classes": self.num_classes,
                "context_dim": self.context_dim,
                "conditions": conditioning.spec_config(self.conditions),
                "condition_encoder": (
                    None
                    if self.denoiser.condition_encoder is None
                    else keras.saving.serialize_keras_object(self.denoiser.condition_encoder)
                ),
                "p_uncond": self.p_uncond,
                "condition_units": self.condition_units,
                "ema": None if self.ema is None else keras.saving.serialize_keras_object(self.ema),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("network", "schedule", "parameterization", "objective", "condition_encoder", "ema"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
