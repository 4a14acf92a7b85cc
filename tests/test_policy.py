"""Diffusion policy: training windows, the obstacle task and its expert, a tiny policy, receding-horizon rollouts."""

import json

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_score.networks import TemporalUNet
from keras_score.policy import (
    DiffusionPolicy,
    ObstacleReach,
    RegressionPolicy,
    collect_demonstrations,
    demonstration_windows,
    rollout,
)

BACKEND = keras.backend.backend()
ZEROS = np.zeros((3, 2))


@keras.saving.register_keras_serializable(package="test_policy")
class CountingUNet(TemporalUNet):
    """A TemporalUNet that counts how often its Python `call` runs: once per trace on JAX and TensorFlow."""

    calls = 0

    def call(self, inputs):
        CountingUNet.calls += 1
        return super().call(inputs)


def tiny_unet(cls=TemporalUNet):
    return cls(down_dims=(8, 16), kernel_size=3, groups=4, embedding_dim=8)


@pytest.fixture(scope="module")
def demonstrations():
    env = ObstacleReach()
    return collect_demonstrations(env, env.expert(seed=0), 40, seed=0, max_steps=80)


@pytest.fixture(scope="module")
def policy(demonstrations):
    keras.utils.set_random_seed(0)
    model = DiffusionPolicy(2, tiny_unet(CountingUNet), n_obs_steps=2, horizon=8, n_action_steps=4, steps=3, seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(demonstrations, batch_size=128, epochs=1, verbose=0)
    return model


def test_windows_pad_the_history_before_and_the_actions_after_the_episode():
    episode = {"observations": np.arange(6.0)[:, None], "actions": 10 + np.arange(6.0)[:, None]}
    obs, actions = demonstration_windows([episode], n_obs_steps=2, horizon=4, n_action_steps=2)
    starts = np.arange(-1, 6 - 4 + 2)  # −(n_obs − 1) … T − horizon + n_action − 1
    assert obs.shape == (len(starts), 2, 1) and actions.shape == (len(starts), 4, 1)
    np.testing.assert_array_equal(obs[:, :, 0], np.clip(starts[:, None] + np.arange(2), 0, 5))
    np.testing.assert_array_equal(actions[:, :, 0], 10 + np.clip(starts[:, None] + np.arange(4), 0, 5))
    executed = actions[:, 1:3, 0]  # the chunk's entries n_obs − 1 … n_obs − 2 + n_action: after each newest step
    newest = obs[:, -1, 0]
    np.testing.assert_array_equal(executed[:, 0], 10 + newest)
    assert set(executed.ravel()) == set(10 + np.arange(6.0))  # every action of the episode is executed in some window


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: demonstration_windows([], 2, 16, 8), "`episodes` must be a non-empty list"),
        (lambda: demonstration_windows([{"observations": np.zeros((3, 2))}]), "'observations' and 'actions'"),
        (lambda: demonstration_windows([{"observations": np.zeros((3, 2)), "actions": np.zeros((4, 2))}]), "same"),
        (lambda: demonstration_windows([{"observations": np.full((3, 2), np.nan), "actions": ZEROS}]), "NaN"),
        (lambda: demonstration_windows([{"observations": ZEROS, "actions": ZEROS}], 2, 8, 8), "`horizon`"),
        (lambda: DiffusionPolicy(0), "`observation_dim`"),
        (lambda: DiffusionPolicy(2, n_action_steps=0), "`n_action_steps`"),
        (lambda: RegressionPolicy(2, n_obs_steps=4, horizon=4, n_action_steps=2), "`horizon`"),
        (lambda: ObstacleReach(max_step=0), "`max_step`"),
    ],
)
def test_bad_arguments_get_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_expert_takes_both_routes_and_always_reaches_the_goal():
    env = ObstacleReach()
    episodes = collect_demonstrations(env, env.expert(seed=1), 200, seed=0, max_steps=80)
    assert all(e["success"] and e["max_reward"] == 1.0 for e in episodes)
    left = np.mean([ObstacleReach.route(e["observations"]) == "left" for e in episodes])
    assert 0.40 < left < 0.60  # p = ½: 200 fair coin flips fall outside (0.4, 0.6) with probability 0.004
    again = collect_demonstrations(env, env.expert(seed=1), 3, seed=0, max_steps=80)
    np.testing.assert_array_equal(again[2]["actions"], episodes[2]["actions"])


def test_the_averaged_route_collides_with_the_obstacle():
    """Straight up — the mean of the left and the right route — hits the disc and ends the episode as a failure."""
    env = ObstacleReach()
    observation, _ = env.reset(seed=0)
    for step in range(30):
        observation, reward, terminated, _, info = env.step(observation + np.array([0.0, 0.1]))
        if terminated:
            break
    assert terminated and info["collision"] and not info["is_success"] and reward == 0.0
    assert observation[1] < -0.3  # stopped at the obstacle's edge, ~8 steps up
    with pytest.raises(ValueError, match="`action` must be a finite 2-D"):
        env.step([np.nan, 0.0])


def test_policy_stores_the_normalisations_and_predicts_chunks(policy, demonstrations):
    obs, actions = demonstration_windows(demonstrations, 2, 8, 4)
    np.testing.assert_allclose(
        to_numpy(policy.observation_encoder.normalizer.mean), obs.reshape(-1, 2).mean(0), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(to_numpy(policy.normalizer.mean), actions.reshape(-1, 2).mean(0), rtol=1e-4, atol=1e-5)
    chunk = policy.predict_chunk(obs[:5], seed=0)
    assert chunk.shape == (5, 8, 2) and np.all(np.isfinite(chunk))
    np.testing.assert_array_equal(policy.predict_actions(obs[:5], seed=0), chunk[:, 1:5])
    assert policy.predict_chunk(obs[0], seed=0).shape == (1, 8, 2)
    assert policy.last_latency > 0
    with pytest.raises(ValueError, match=r"`observations` must have shape \(batch, 2, 2\)"):
        policy.predict_chunk(np.zeros((5, 3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        policy.predict_chunk(np.full((1, 2, 2), np.nan))


def test_policy_round_trips_through_keras_saving(policy, demonstrations, tmp_path):
    obs, _ = demonstration_windows(demonstrations, 2, 8, 4)
    path = tmp_path / "policy.keras"
    policy.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DiffusionPolicy)
    assert (loaded.n_obs_steps, loaded.horizon, loaded.n_action_steps, loaded.steps) == (2, 8, 4, 3)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(policy.get_config(), sort_keys=True)
    np.testing.assert_allclose(loaded.predict_chunk(obs[:4], seed=3), policy.predict_chunk(obs[:4], seed=3), atol=1e-5)


def test_receding_horizon_rollout_runs_whole_episodes_without_recompiling(policy):
    policy._generate_functions.clear()
    calls_before = CountingUNet.calls
    results = rollout(policy, [ObstacleReach() for _ in range(3)], max_steps=20, seed=5)
    chunks = len(results.latencies)
    assert chunks == -(-results.lengths.max() // 4)  # a chunk every 4 steps until the last episode ends
    traced = CountingUNet.calls - calls_before
    if BACKEND in ("jax", "tensorflow"):
        assert 0 < traced <= 3 * policy.steps  # one trace of the sampling loop, not one per chunk
    else:
        assert traced == chunks * policy.steps  # eager: one network call per sampler step
    assert len(policy._generate_functions) == 1
    assert results.observations.shape == (3, 21, 2) and results.lengths.max() <= 20
    for i in range(3):
        np.testing.assert_array_equal(results.trajectory(i)[0], ObstacleReach().reset(seed=5 + i)[0])
    assert np.all(np.diff(results.trajectory(0), axis=0).__abs__().max(axis=1) <= 0.1 + 1e-6)


def test_regression_baseline_trains_predicts_and_round_trips(demonstrations, tmp_path):
    keras.utils.set_random_seed(0)
    baseline = RegressionPolicy(2, hidden_units=16, num_layers=2, horizon=8, n_action_steps=4)
    baseline.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = baseline.fit(demonstrations, batch_size=128, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    obs, _ = demonstration_windows(demonstrations, 2, 8, 4)
    assert baseline.predict_actions(obs[:3]).shape == (3, 4, 2)
    results = rollout(baseline, [ObstacleReach() for _ in range(2)], max_steps=8, seed=0)
    assert results.latencies and np.all((results.lengths >= 1) & (results.lengths <= 8))
    path = tmp_path / "baseline.keras"
    baseline.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict_chunk(obs[:3]), baseline.predict_chunk(obs[:3]), atol=1e-5)
    with pytest.raises(ValueError, match=r"`y` must be action chunks of shape \(n=3, horizon=8, a\)"):
        baseline.fit(obs[:3], np.zeros((3, 4, 2)))


@pytest.mark.parametrize("params,num_layers", [(1_000_000, 3), (5_000, 1), (40_000, 2)])
def test_regression_width_matches_a_parameter_count(params, num_layers):
    def trained(width):
        policy = RegressionPolicy(5, 2, hidden_units=width, num_layers=num_layers, horizon=8, n_action_steps=4)
        policy.build()
        return sum(int(np.prod(v.shape)) for v in policy.trainable_variables)

    width = RegressionPolicy.hidden_units_for(params, 5, 2, num_layers=num_layers, horizon=8)
    assert abs(trained(width) - params) <= min(abs(trained(width - 1) - params), abs(trained(width + 1) - params))
