"""`ScoreModel`: a Keras model that learns a denoiser, trains with `fit` and samples with `generate`."""

import json

import keras
import numpy as np
from keras import ops

from keras_score import noise_levels
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

    Training goes through Keras' own `fit` on every backend: `call(x)` draws
    noise levels t and noise ε from the model's `SeedGenerator`, noises the
    (standardised) data and returns the per-example weighted denoising loss,
    which `compute_loss` averages. The denoiser D(x, t) ≈ E[x₀ | x_t = x]
    and the score (α·D − x)/σ² work in the model's standardised space; `generate`
    returns samples in data units.

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
        **kwargs,
    ):
        super().__init__(**kwargs)
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
        self.data_shape = None
        self._generate_functions = {}

    def build(self, input_shape):
        self.data_shape = tuple(input_shape[1:])
        if not self.normalizer.built:
            self.normalizer.build(input_shape)
        if not self.network.built:
            self.network.build((tuple(input_shape), (input_shape[0],)))
        self.built = True

    def call(self, x, training=False):
        """Per-example weighted denoising score-matching loss of a batch in data units."""
        return denoising_score_matching(self, self.normalize_data(x), self.seed_generator)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = ops.mean(y_pred) if sample_weight is None else ops.mean(y_pred * sample_weight)
        for extra in self.losses:
            loss = loss + extra
        return loss

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`, which first fits the data standardisation if it is not fitted yet."""
        if self.normalize and not self.normalizer.is_adapted:
            self.normalizer.adapt(x)
        return super().fit(x, y, **kwargs)

    def normalize_data(self, x):
        """Data units → the model's standardised space."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return self.normalizer(x) if self.normalize else x

    def denormalize_data(self, z):
        """The model's standardised space → data units."""
        return self.normalizer.inverse(z) if self.normalize else z

    def network_output(self, x, t, training=False):
        """The raw network output F(c_in·x, c_noise) at times t (scalar or (batch,))."""
        t = ops.broadcast_to(ops.convert_to_tensor(t, dtype=x.dtype), (ops.shape(x)[0],))
        alpha = self.schedule.alpha(t)
        sigma = self.schedule.sigma(t)
        c_in = expand_to(self.parameterization.c_in(alpha, sigma), x)
        c_noise = self.parameterization.c_noise(alpha, sigma)
        return self.network((c_in * x, c_noise), training=training)

    def denoise(self, x, t):
        """D(x, t) ≈ E[x₀ | x_t = x] in the standardised space; t scalar or shape (batch,)."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        output = ops.cast(self.network_output(x, t), x.dtype)
        alpha = expand_to(self.schedule.alpha(t), x)
        sigma = expand_to(self.schedule.sigma(t), x)
        return self.parameterization.denoise(x, output, alpha, sigma)

    def score(self, x, t):
        """∇ₓ log p_t(x) = (α·D − x)/σ² in the standardised space."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return samplers_lib.score_from_denoised(self.schedule, x, t, self.denoise(x, t))

    def generate(
        self,
        num_samples,
        sampler="heun",
        steps=32,
        time_grid="karras",
        seed=None,
        batch_size=None,
        return_trajectory=False,
    ):
        """Draws `num_samples` new samples, in data units.

        Sample i starts from prior noise that depends only on (seed, i), so a
        deterministic sampler gives sample i identically in any batch; a
        stochastic sampler gives identical results for the same seed and
        batch size on the same backend.

        Args:
            num_samples: number of samples, a positive integer.
            sampler: a `Sampler` or its name (see `keras_score.samplers.SAMPLERS`).
            steps: number of sampler steps.
            time_grid: "karras", "uniform", "log_snr" or a list of times.
            seed: integer seed; None draws one at random.
            batch_size: samples per compiled call (default: all at once).
            return_trajectory: also return the states at every grid time
                (in the standardised space).

        Returns:
            numpy array of shape (num_samples, *data_shape), or
            `(samples, trajectory)` when `return_trajectory` is set.
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
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        noise = samplers_lib.initial_noise(num_samples, self.data_shape, seed) * self.sde.prior_std()
        outputs, trajectories = [], []
        for start in range(0, num_samples, batch_size):
            result = self._sample_batch(
                sampler, noise[start : start + batch_size], steps, time_grid, seed + start, return_trajectory
            )
            x, trajectory = result if return_trajectory else (result, None)
            outputs.append(ops.convert_to_numpy(self.denormalize_data(x)))
            trajectories.append(None if trajectory is None else ops.convert_to_numpy(trajectory))
        samples = np.concatenate(outputs)
        if not np.all(np.isfinite(samples)):
            raise FloatingPointError(
                f"Sampling produced {int(np.sum(~np.isfinite(samples)))} NaN or Inf values; "
                "try more steps or another sampler."
            )
        if return_trajectory:
            return samples, np.concatenate(trajectories, axis=1)
        return samples

    def _sample_batch(self, sampler, noise, steps, time_grid, seed, return_trajectory):
        times = samplers_lib.time_grid(self.schedule, steps, time_grid)
        zero_end = samplers_lib.time_grids.lands_on_data(self.schedule, times)
        key = (json.dumps(keras.saving.serialize_keras_object(sampler), sort_keys=True), zero_end, return_trajectory)
        if key not in self._generate_functions:
            self._generate_functions[key] = sampler.compile(
                self.denoise, self.schedule, zero_end, return_trajectory, self.variables
            )
        run = self._generate_functions[key]
        return run(
            ops.convert_to_tensor(noise, dtype=self.compute_dtype),
            ops.convert_to_tensor(times, dtype=self.compute_dtype),
            ops.convert_to_tensor(seed, dtype="int32"),
        )

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
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("network", "schedule", "parameterization", "weighting", "noise_distribution"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
