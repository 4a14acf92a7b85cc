"""What every action-chunk policy shares: the three lengths, the observation checks and the executed actions."""

import time

import numpy as np

from keras_score.policy import windows


class ChunkedPolicy:
    """A policy that maps an observation history to a chunk of future actions (receding-horizon control).

    A subclass implements `_chunk(observations, seed)` on a validated batch
    and calls `_set_steps` in its constructor; this class gives it the
    public `predict_chunk` and `predict_actions`, the windows of `fit`, and
    the latency of the last prediction. `keras_score.policy.rollout` runs
    any such policy in environments.

    Attributes:
        n_obs_steps: observations in a history.
        horizon: actions in a chunk.
        n_action_steps: actions executed before planning again.
        last_latency: seconds the last `predict_chunk` or `predict_actions` took.
    """

    last_latency = None

    def _set_steps(self, n_obs_steps, horizon, n_action_steps):
        self.n_obs_steps, self.horizon, self.n_action_steps = windows.check_steps(n_obs_steps, horizon, n_action_steps)

    @property
    def executed(self):
        """The slice of a chunk that is executed: the actions from the newest observation on."""
        return slice(self.n_obs_steps - 1, self.n_obs_steps - 1 + self.n_action_steps)

    def _training_arrays(self, x, y):
        """(observation histories, action chunks) from demonstrations `x`, or from arrays x and y."""
        if y is None:
            return windows.demonstration_windows(x, self.n_obs_steps, self.horizon, self.n_action_steps)
        observations = np.asarray(x, dtype="float32")
        actions = np.asarray(y, dtype="float32")
        if observations.ndim != 3 or observations.shape[1] != self.n_obs_steps:
            raise ValueError(
                f"`x` must be observation histories of shape (n, n_obs_steps={self.n_obs_steps}, d) or a list of "
                f"episodes; received shape {observations.shape}."
            )
        if actions.ndim != 3 or actions.shape[:2] != (len(observations), self.horizon):
            raise ValueError(
                f"`y` must be action chunks of shape (n={len(observations)}, horizon={self.horizon}, a); "
                f"received shape {actions.shape}."
            )
        return observations, actions

    def _check_observations(self, observations):
        """A batch (b, n_obs_steps, d) of finite float32 histories; a single history (n_obs_steps, d) gets b = 1."""
        array = np.asarray(observations, dtype="float32")
        if array.ndim == 2:
            array = array[None]
        expected = (self.n_obs_steps, self.observation_dim)
        if array.ndim != 3 or array.shape[1:] != expected or len(array) == 0:
            raise ValueError(
                f"`observations` must have shape (batch, {expected[0]}, {expected[1]}) or {expected}; "
                f"received shape {np.shape(observations)}."
            )
        if not np.all(np.isfinite(array)):
            raise ValueError("`observations` holds NaN or Inf values.")
        return array

    def predict_chunk(self, observations, seed=None):
        """The predicted chunk of `horizon` actions after each observation history.

        Args:
            observations: (batch, n_obs_steps, d) histories, oldest first, or one (n_obs_steps, d).
            seed: seed of a stochastic policy's noise (None: fresh).

        Returns:
            numpy array (batch, horizon, action_dim), in the actions' units.
        """
        observations = self._check_observations(observations)
        start = time.perf_counter()
        chunk = self._chunk(observations, seed)
        self.last_latency = time.perf_counter() - start
        return chunk

    def predict_actions(self, observations, seed=None):
        """The `n_action_steps` actions to execute now: the chunk from the newest observation's step on.

        Args:
            observations: as `predict_chunk`.
            seed: as `predict_chunk`.

        Returns:
            numpy array (batch, n_action_steps, action_dim).
        """
        return self.predict_chunk(observations, seed)[:, self.executed]

    def _chunk(self, observations, seed):
        raise NotImplementedError

    def _chunk_config(self):
        return {
            "observation_dim": self.observation_dim,
            "n_obs_steps": self.n_obs_steps,
            "horizon": self.horizon,
            "n_action_steps": self.n_action_steps,
        }
