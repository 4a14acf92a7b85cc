"""`DiffusionPolicy`: a score model of action chunks conditioned on observation histories (Chi et al. 2023)."""

import keras
import numpy as np

from keras_score import samplers as samplers_lib
from keras_score import validation
from keras_score.model import ScoreModel
from keras_score.networks import TemporalUNet
from keras_score.objectives import DenoisingScoreMatching
from keras_score.policy import windows
from keras_score.policy.chunked import ChunkedPolicy
from keras_score.policy.encoder import OBSERVATIONS, ObservationEncoder
from keras_score.schedules import CosineSchedule


@keras.saving.register_keras_serializable(package="keras_score")
class DiffusionPolicy(ChunkedPolicy, ScoreModel):
    """A visuomotor-style diffusion policy: p(action chunk | observation history), sampled in a few DDIM steps.

    The model learns the distribution of the next `horizon` actions given
    the last `n_obs_steps` observations from demonstrations, so where a
    demonstrator acts in several ways (left or right around an obstacle) it
    samples one of them instead of their average. The actions are
    standardised by the model's normalisation and the observations by its
    `ObservationEncoder`, both fitted at the first `fit` and saved with the
    model; the `TemporalUNet` takes the flattened normalised history as the
    global condition of its FiLM layers. Training is DDPM's ε-MSE loss on
    the cosine schedule at uniform times, with the network predicting v
    (Salimans & Ho 2022): ε-prediction, the paper's, turns x̂₀ = (x − σ·ε̂)/α
    into noise amplified by 1/α ≈ 600 at the cosine schedule's last time,
    where the paper clips x̂₀ to [−1, 1]; v-prediction is well-conditioned
    there and needs no clipping. `predict_chunk` samples
    with `sampler` in `steps` steps (DDIM, 10 by default), through the
    compiled loop of `generate`, which is traced once and reused for every
    new observation (the history and the seed are tensors). Receding-horizon
    control executes `predict_actions`, the chunk's `n_action_steps` actions
    from the newest observation on, then plans again
    (`keras_score.policy.rollout`).

    Args:
        observation_dim: size d of one observation vector.
        network: the denoiser network over (batch, horizon, action_dim)
            (default `TemporalUNet()`, the paper's widths 256/512/1024).
        n_obs_steps: observations in the history (the paper: 2).
        horizon: actions in a predicted chunk (the paper: 16); the network
            may require it divisible by a power of 2.
        n_action_steps: actions executed before planning again (the paper: 8).
        sampler: `Sampler` or name of the chunk sampler (default "ddim").
        steps: sampler steps per chunk (default 10).
        time_grid: the sampler's time grid (default "uniform").
        schedule, parameterization, objective, ema, seed, ...: as
            `ScoreModel` (defaults: cosine schedule, v-prediction, DSM with
            SNR weighting at uniform times = DDPM's ε-MSE, EDM2's power EMA).

    Example:
    ```python
    from keras_score.policy import DiffusionPolicy, ObstacleReach, collect_demonstrations, rollout
    env = ObstacleReach()
    episodes = collect_demonstrations(env, env.expert(seed=0), 200, seed=0)
    policy = DiffusionPolicy(env.observation_dim, TemporalUNet(down_dims=(64, 128)), seed=0)
    policy.compile(optimizer=keras.optimizers.AdamW(1e-3))
    policy.fit(episodes, batch_size=256, epochs=50)
    results = rollout(policy, [ObstacleReach() for _ in range(50)], max_steps=80, seed=0)
    ```

    Reference: Chi et al., "Diffusion Policy: Visuomotor Policy Learning via
    Action Diffusion", RSS 2023 (real-stanford/diffusion_policy); Song et
    al. 2021 (DDIM).
    """

    def __init__(
        self,
        observation_dim,
        network=None,
        n_obs_steps=2,
        horizon=16,
        n_action_steps=8,
        sampler="ddim",
        steps=10,
        time_grid="uniform",
        schedule=None,
        parameterization="v",
        objective=None,
        ema="power",
        p_uncond=0.0,
        **kwargs,
    ):
        lengths = windows.check_steps(n_obs_steps, horizon, n_action_steps)
        observation_dim = validation.check_int(observation_dim, "observation_dim", minimum=1)
        super().__init__(
            TemporalUNet() if network is None else network,
            schedule=CosineSchedule() if schedule is None else schedule,
            parameterization=parameterization,
            objective=DenoisingScoreMatching("snr", "uniform") if objective is None else objective,
            conditions={OBSERVATIONS: (lengths[0], observation_dim)},
            condition_encoder=ObservationEncoder(name="observation_encoder"),
            ema=ema,
            p_uncond=p_uncond,
            **kwargs,
        )
        self.observation_dim = observation_dim
        self._set_steps(*lengths)
        self.sampler = samplers_lib.get(sampler)
        self.steps = validation.check_int(steps, "steps", minimum=1)
        self.time_grid = time_grid
        self.sampler.make_time_grid(self.schedule, self.steps, self.time_grid)  # a bad grid fails here, not in use

    @property
    def observation_encoder(self):
        return self.denoiser.condition_encoder

    def fit(self, x=None, y=None, **kwargs):
        """Trains on demonstrations: a list of episodes, or arrays of histories x and action chunks y.

        Args:
            x: a list of episodes {"observations": (T, d), "actions": (T, a)}
                (cut into windows by `demonstration_windows`), or observation
                histories (n, n_obs_steps, d).
            y: with arrays x, the action chunks (n, horizon, a).
            **kwargs: `keras.Model.fit` arguments (batch_size, epochs, callbacks, ...).

        Returns:
            the Keras `History`.
        """
        observations, actions = self._training_arrays(x, y)
        return super().fit(actions, {OBSERVATIONS: observations}, **kwargs)

    def _adapt_preprocessing(self, x, y):
        """Fits the actions' and the observations' standardisations at the first `fit`."""
        super()._adapt_preprocessing(x, y)
        if not self.observation_encoder.is_adapted:
            self.observation_encoder.adapt(y[OBSERVATIONS])

    def _chunk(self, observations, seed):
        return self.generate(
            len(observations),
            sampler=self.sampler,
            steps=self.steps,
            time_grid=self.time_grid,
            seed=seed,
            condition={OBSERVATIONS: observations},
            verbose=0,
        )

    def get_config(self):
        config = super().get_config()
        for key in ("conditions", "condition_encoder", "num_classes", "context_dim"):
            config.pop(key)
        config.update(
            {
                **self._chunk_config(),
                "sampler": keras.saving.serialize_keras_object(self.sampler),
                "steps": self.steps,
                "time_grid": self.time_grid if isinstance(self.time_grid, str) else np.asarray(self.time_grid).tolist(),
            }
        )
        return config
