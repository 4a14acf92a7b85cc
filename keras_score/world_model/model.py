"""`WorldModel`: DIAMOND's next-frame diffusion model, conditioned on past frames and actions, and its rollouts."""

import keras
import numpy as np

from keras_score import samplers as samplers_lib
from keras_score import validation
from keras_score.model import ScoreModel
from keras_score.networks import UNet
from keras_score.noise_levels import LogNormalSigma
from keras_score.normalization import PixelScaling
from keras_score.objectives import DenoisingScoreMatching
from keras_score.parameterization import EDMPreconditioning
from keras_score.schedules import EDMSchedule
from keras_score.world_model.encoder import ACTIONS, FRAMES, ActionEmbedding
from keras_score.world_model.rollout import autoregressive_rollout
from keras_score.world_model.windows import transition_windows


@keras.saving.register_keras_serializable(package="keras_score")
class WorldModel(ScoreModel):
    """p(frame_{t+1} | frames t−k+1…t, actions t−k+1…t): a diffusion model of a game's next frame, rolled out.

    DIAMOND's design (Alonso et al. 2024): EDM's preconditioning (σ_data =
    0.5) of frames scaled to [−1, 1]; the last k frames concatenated to the
    noisy next frame as channels; the last k actions embedded (one learned
    vector per action and step, flattened: `ActionEmbedding`) and added to
    the noise embedding, which scales and shifts every residual block's
    group norm (the `UNet`'s "film" mode); training noise log σ ~ N(−0.4,
    1.2²); sampling by 3 Euler steps from σ = 5 (ρ = 7), then rounded to
    the frames' levels. The schedule is EDM's on [0.002, 5], so training
    levels clip to 5 where DIAMOND's clip to 20 (4.7% of the draws lie
    above 5; the sampler never visits them). A rollout
    feeds each generated frame back into the history; every step runs the
    one compiled sampling loop (frames, actions and seed are tensors).

    Args:
        frame_shape: (H, W, C) of a frame; H and W divisible by 2^(levels of the UNet − 1).
        num_actions: the number of discrete actions.
        context_frames: k, the frames and actions conditioned on (DIAMOND: 4).
        network: the UNet (default `UNet(channels=64, blocks_per_level=2,
            output_channels=C)`); it must return C channels.
        levels: the frames' pixel levels (2 for MinAtar's binary channels, 256 for 8-bit).
        sampler: `Sampler` or name of the frame sampler (default "euler").
        steps: sampler steps per frame (default 3).
        action_units: size of each step's action embedding.
        **kwargs: `ScoreModel` arguments (ema, seed, objective, ...).

    Example:
    ```python
    episodes = keras_score.world_model.collect_minatar_episodes("breakout", 200, seed=0)
    model = WorldModel((10, 10, 4), num_actions=6, seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(episodes, batch_size=64, epochs=20)
    imagined = model.rollout(frames[:, :4], actions[:, :3], actions[:, 3:18], seed=0)  # (b, 15, 10, 10, 4)
    ```

    Reference: Alonso et al., "Diffusion for World Modeling: Visual Details
    Matter in Atari", NeurIPS 2024 (eloialonso/diamond); Karras et al. 2022 (EDM).
    """

    def __init__(
        self,
        frame_shape,
        num_actions,
        context_frames=4,
        network=None,
        levels=2,
        sampler="euler",
        steps=3,
        action_units=16,
        schedule=None,
        parameterization=None,
        objective=None,
        ema="power",
        p_uncond=0.0,
        **kwargs,
    ):
        try:
            frame_shape = tuple(validation.check_int(d, "frame_shape", minimum=1) for d in frame_shape)
        except TypeError:
            raise ValueError(f"`frame_shape` must be (H, W, C); received frame_shape={frame_shape!r}.") from None
        if len(frame_shape) != 3:
            raise ValueError(f"`frame_shape` must be (H, W, C); received frame_shape={frame_shape!r}.")
        num_actions = validation.check_int(num_actions, "num_actions", minimum=1)
        context_frames = validation.check_int(context_frames, "context_frames", minimum=1)
        kwargs.pop("normalize", None)  # always the pixel scaling, from `levels`
        kwargs.pop("conditions", None)
        kwargs.pop("condition_encoder", None)
        super().__init__(
            UNet(channels=64, output_channels=frame_shape[-1]) if network is None else network,
            schedule=EDMSchedule(sigma_min=0.002, sigma_max=5.0) if schedule is None else schedule,
            parameterization=EDMPreconditioning(sigma_data=0.5) if parameterization is None else parameterization,
            objective=(
                DenoisingScoreMatching(noise_distribution=LogNormalSigma(-0.4, 1.2)) if objective is None else objective
            ),
            normalize=PixelScaling(levels),
            conditions={
                FRAMES: {"shape": (context_frames, *frame_shape), "channels": True},
                ACTIONS: {"shape": (context_frames,), "dtype": "int32"},
            },
            condition_encoder=ActionEmbedding(num_actions, action_units, name="action_embedding"),
            ema=ema,
            p_uncond=p_uncond,
            **kwargs,
        )
        self.frame_shape, self.num_actions, self.context_frames = frame_shape, num_actions, context_frames
        self.action_units = action_units
        self.sampler = samplers_lib.get(sampler)
        self.steps = validation.check_int(steps, "steps", minimum=1)

    @property
    def levels(self):
        return self.normalizer.levels

    def fit(self, x=None, y=None, **kwargs):
        """Trains on episodes {"frames": (T + 1, H, W, C), "actions": (T,)}, cut into transitions.

        Args:
            x: a list of episodes (frames on the levels 0…L−1, integer actions).
            y: unused (None).
            **kwargs: `keras.Model.fit` arguments (batch_size, epochs, callbacks, ...).

        Returns:
            the Keras `History`.
        """
        if y is not None:
            raise ValueError("`WorldModel.fit` takes a list of episodes as x and no y.")
        context, actions, targets = transition_windows(x, self.context_frames)
        self._check_frames(targets, "the episodes' frames")
        if np.any(actions >= self.num_actions):
            raise ValueError(f"The episodes' actions must lie in [0, {self.num_actions}) (num_actions).")
        return super().fit(targets, {FRAMES: self._scaled(context), ACTIONS: actions}, **kwargs)

    def _check_frames(self, frames, name):
        if tuple(frames.shape[-3:]) != self.frame_shape:
            raise ValueError(f"{name} must have frame shape {self.frame_shape}; received {tuple(frames.shape[-3:])}.")
        if np.any(frames < 0) or np.any(frames > self.levels - 1):
            raise ValueError(f"{name} must lie on the levels 0…{self.levels - 1}.")

    def _scaled(self, frames):
        return (np.asarray(frames, dtype="float32") * (2.0 / (self.levels - 1)) - 1.0).astype("float32")

    def predict_next(self, frames, actions, seed=None):
        """The next frame after each history of k frames and the k actions taken in them.

        Args:
            frames: (batch, k, H, W, C) on the levels, oldest first.
            actions: (batch, k) integers; actions[:, −1] is taken in the newest frame.
            seed: the sampling noise's seed.

        Returns:
            uint8 numpy array (batch, H, W, C) on the levels.
        """
        frames = self._check_history(frames)
        actions = np.asarray(actions)
        if actions.shape != frames.shape[:2]:
            raise ValueError(f"`actions` must have shape {frames.shape[:2]}; received shape {actions.shape}.")
        return self._sample_next(frames, actions, seed)

    def _check_history(self, frames):
        frames = np.asarray(frames)
        self._check_frames(frames, "`frames`")
        if frames.ndim != 5 or frames.shape[1] != self.context_frames:
            raise ValueError(
                f"`frames` must have shape (batch, {self.context_frames}, {', '.join(map(str, self.frame_shape))}); "
                f"received shape {frames.shape}."
            )
        return frames

    def _sample_next(self, frames, actions, seed):
        sample = self.generate(
            len(frames),
            sampler=self.sampler,
            steps=self.steps,
            time_grid="karras",
            seed=seed,
            condition={FRAMES: self._scaled(frames), ACTIONS: np.asarray(actions, dtype="int32")},
            verbose=0,
        )
        return self.normalizer.to_levels(sample)

    def rollout(self, frames, past_actions, actions, seed=0):
        """An imagined trajectory: each generated frame is fed back as the newest frame of the history.

        Args:
            frames: the k starting frames, (batch, k, H, W, C) on the levels.
            past_actions: (batch, k − 1), the actions taken in all but the newest starting frame.
            actions: (batch, T), the actions to imagine under; actions[:, 0] is taken in the newest frame.
            seed: frame j is sampled with seed + j.

        Returns:
            uint8 numpy array (batch, T, H, W, C): the frames after each action.
        """
        frames = self._check_history(frames)
        seed = validation.check_seed(seed)

        def next_frame(history, taken, j):
            return self._sample_next(history, taken, (seed + j) % (validation.SEED_MAX + 1))

        return autoregressive_rollout(next_frame, frames, past_actions, actions)

    def get_config(self):
        config = super().get_config()
        for key in ("conditions", "condition_encoder", "num_classes", "context_dim", "normalize"):
            config.pop(key)
        config.update(
            {
                "frame_shape": list(self.frame_shape),
                "num_actions": self.num_actions,
                "context_frames": self.context_frames,
                "levels": self.levels,
                "sampler": keras.saving.serialize_keras_object(self.sampler),
                "steps": self.steps,
                "action_units": self.action_units,
            }
        )
        return config

