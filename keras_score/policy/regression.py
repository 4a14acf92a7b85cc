"""`RegressionPolicy`: behaviour cloning by mean-squared-error regression of the action chunk, the baseline."""

import keras
import numpy as np
from keras import layers, ops

from keras_score import validation
from keras_score.normalization import Standardization
from keras_score.policy import windows
from keras_score.policy.chunked import ChunkedPolicy
from keras_score.policy.encoder import OBSERVATIONS, ObservationEncoder


@keras.saving.register_keras_serializable(package="keras_score")
class RegressionPolicy(ChunkedPolicy, keras.Model):
    """An MLP from the observation history to the action chunk, trained by MSE: the conditional mean of the actions.

    Where demonstrations act in several ways from the same observations it
    predicts their average (between the left and the right route lies the
    obstacle), which is what a diffusion policy avoids. Observations and
    actions are standardised with statistics fitted at the first `fit`
    and saved with the model; the loss is the MSE of the standardised
    chunk. Same interface as `DiffusionPolicy` (`fit` on episodes or arrays,
    `predict_chunk`, `predict_actions`, `keras_score.policy.rollout`).

    Args:
        observation_dim: size d of one observation vector.
        action_dim: size of one action (None: taken from the first `fit`).
        hidden_units: width of the hidden layers.
        num_layers: number of hidden layers (Mish activations).
        n_obs_steps, horizon, n_action_steps: as `DiffusionPolicy`.

    Example:
    ```python
    baseline = RegressionPolicy(env.observation_dim, hidden_units=256)
    baseline.compile(optimizer=keras.optimizers.AdamW(1e-3))
    baseline.fit(episodes, batch_size=256, epochs=50)
    actions = baseline.predict_actions(history)
    ```

    Reference: Chi et al., "Diffusion Policy", RSS 2023, Sec. IV (the
    mode-averaging of explicit regression policies); Pomerleau 1989 (behaviour cloning).
    """

    def __init__(
        self,
        observation_dim,
        action_dim=None,
        hidden_units=256,
        num_layers=3,
        n_obs_steps=2,
        horizon=16,
        n_action_steps=8,
        **kwargs,
    ):
        lengths = windows.check_steps(n_obs_steps, horizon, n_action_steps)
        super().__init__(**kwargs)
        self._set_steps(*lengths)
        self.observation_dim = validation.check_int(observation_dim, "observation_dim", minimum=1)
        self.action_dim = None if action_dim is None else validation.check_int(action_dim, "action_dim", minimum=1)
        self.hidden_units = validation.check_int(hidden_units, "hidden_units", minimum=1)
        self.num_layers = validation.check_int(num_layers, "num_layers", minimum=0)
        self.observation_encoder = ObservationEncoder(name="observation_encoder")
        self.action_normalizer = Standardization(name="action_normalizer")
        self.hidden = [layers.Dense(self.hidden_units, activation="mish") for _ in range(self.num_layers)]
        self.head = None

    @staticmethod
    def hidden_units_for(params, observation_dim, action_dim, num_layers=3, n_obs_steps=2, horizon=16):
        """The hidden width whose trained parameter count is closest to `params` (a size-matched baseline).

        The MLP holds in·w + w + (L − 1)(w² + w) + w·out + out parameters,
        in = n_obs_steps·observation_dim and out = horizon·action_dim.

        Args:
            params: the parameter count to match (e.g. the diffusion policy's network).
            observation_dim, action_dim, num_layers, n_obs_steps, horizon: the baseline's shape.

        Returns:
            int, the `hidden_units` to give.

        Example:
        >>> RegressionPolicy.hidden_units_for(1_000_000, observation_dim=2, action_dim=2)
        697
        """
        params = validation.check_int(params, "params", minimum=1)
        num_layers = validation.check_int(num_layers, "num_layers", minimum=1)
        inputs = n_obs_steps * validation.check_int(observation_dim, "observation_dim", minimum=1)
        outputs = horizon * validation.check_int(action_dim, "action_dim", minimum=1)

        def count(w):
            return inputs * w + w + (num_layers - 1) * (w * w + w) + w * outputs + outputs

        a, b = num_layers - 1, inputs + 1 + (num_layers - 1) + outputs
        c = outputs - params
        root = -c / b if a == 0 else (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
        return min((max(1, int(np.floor(root)) + d) for d in (0, 1)), key=lambda w: abs(count(w) - params))

    def build(self, input_shape=None):
        if self.action_dim is None:
            raise ValueError("The regression policy is not built: call `fit` first, or give `action_dim`.")
        shape = (None, self.n_obs_steps, self.observation_dim)
        self.observation_encoder.build({OBSERVATIONS: shape})
        width = self.n_obs_steps * self.observation_dim
        for layer in self.hidden:
            layer.build((None, width))
            width = self.hidden_units
        self.head = layers.Dense(self.horizon * self.action_dim, name="head")
        self.head.build((None, width))
        self.action_normalizer.build((None, self.horizon, self.action_dim))
        self.built = True

    def call(self, observations, training=False):
        h = self.observation_encoder({OBSERVATIONS: observations})
        for layer in self.hidden:
            h = layer(h)
        return ops.reshape(self.head(h), (-1, self.horizon, self.action_dim))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.mean(ops.square(self.action_normalizer(y) - y_pred))

    def fit(self, x=None, y=None, **kwargs):
        """Trains on a list of episodes, or on histories x (n, n_obs_steps, d) and action chunks y (n, horizon, a).

        Returns:
            the Keras `History`.
        """
        observations, actions = self._training_arrays(x, y)
        if observations.shape[2] != self.observation_dim:
            raise ValueError(
                f"The observations must be {self.observation_dim}-D (observation_dim); "
                f"received {observations.shape[2]}-D observations."
            )
        if self.action_dim is not None and actions.shape[2] != self.action_dim:
            raise ValueError(f"The actions must be {self.action_dim}-D (action_dim); received {actions.shape[2]}-D.")
        if not np.all(np.isfinite(observations)) or not np.all(np.isfinite(actions)):
            raise ValueError("Training data contains NaN or Inf values.")
        if not self.built:
            self.action_dim = actions.shape[2]
            self.build()
        if not self.action_normalizer.is_adapted:
            self.observation_encoder.adapt(observations)
            self.action_normalizer.adapt(actions)
        return super().fit(observations, actions, **kwargs)

    def _chunk(self, observations, seed):
        if not self.built:
            raise ValueError("The regression policy is not trained: call `fit` before predicting.")
        standardized = ops.convert_to_tensor(self.predict_on_batch(observations))
        return ops.convert_to_numpy(self.action_normalizer.inverse(standardized))

    def get_config(self):
        return {
            **super().get_config(),
            **self._chunk_config(),
            "action_dim": self.action_dim,
            "hidden_units": self.hidden_units,
            "num_layers": self.num_layers,
        }
