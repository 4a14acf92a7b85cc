"""Tests of the Push-T planning expert and demonstration collection."""

import sys

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

from keras_score.policy import pusht  # noqa: E402
from keras_score.policy.pusht import PushTExpert, collect_pusht_demonstrations, make_pusht_env  # noqa: E402


def _keypoint_distance(env):
    """Mean distance of the T's keypoints to the goal's keypoints, from the environment's own geometry."""
    unwrapped = env.unwrapped
    keypoints = unwrapped.get_keypoints(unwrapped._block_shapes)
    local = np.array([tuple(v) for shape in unwrapped._block_shapes for v in shape.get_vertices()])
    x, y, angle = unwrapped.goal_pose
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    goal = local @ rotation.T + np.array([x, y])
    return float(np.mean(np.linalg.norm(keypoints - goal, axis=1)))


def _contact_state(seed=0, steps=15):
    """An environment whose agent has been driven into the block, so that contacts are active."""
    env = make_pusht_env()
    observation, _ = env.reset(seed=seed)
    for _ in range(steps):
        observation, *_ = env.step(observation[2:4].astype(np.float32))
    return env, observation


def test_restoring_the_simulator_state_reproduces_the_future_exactly():
    env, observation = _contact_state()
    state = pusht._get_sim_state(env.unwrapped)
    actions = [
        (observation[2:4] + 30.0 * np.array([np.cos(i / 3), np.sin(i / 3)])).astype(np.float32) for i in range(20)
    ]
    rollouts = []
    for _ in range(3):
        pusht._set_sim_state(env.unwrapped, state)
        rollouts.append(np.array([env.step(action)[0] for action in actions]))
    np.testing.assert_array_equal(rollouts[0], rollouts[1])
    np.testing.assert_array_equal(rollouts[1], rollouts[2])
    assert np.abs(rollouts[0][-1, 2:] - observation[2:]).max() > 1.0  # The block moved: contacts were exercised.


def test_private_simulator_predicts_the_environment():
    env, observation = _contact_state()
    expert = PushTExpert()
    expert.reset(env)
    state = pusht._get_sim_state(env.unwrapped)
    actions = [(observation[2:4] + [10.0 * np.cos(i / 4), 10.0 * np.sin(i / 4)]).astype(np.float32) for i in range(20)]
    real = np.array([env.step(action)[0] for action in actions])
    pusht._set_sim_state(expert._sim, state)
    predicted = pusht._simulate(expert._sim, actions)
    np.testing.assert_allclose(predicted[:, :2], real[:, 2:4], atol=0.05)
    np.testing.assert_allclose(np.mod(predicted[:, 2], 2 * np.pi), real[:, 4], atol=1e-3)


def test_expert_leaves_the_environment_unchanged():
    env = make_pusht_env()
    replay = make_pusht_env()
    env.reset(seed=3)
    replay.reset(seed=3)
    expert = PushTExpert(seed=3)
    expert.reset(env, seed=3)
    for _ in range(40):
        before = pusht._get_sim_state(env.unwrapped)
        action = expert.act(env)
        np.testing.assert_array_equal(pusht._get_sim_state(env.unwrapped), before)
        observation, *_ = env.step(action)
        np.testing.assert_array_equal(replay.step(action)[0], observation)


def test_collection_shapes_dtypes_and_determinism():
    episodes = collect_pusht_demonstrations(2, seed=5, max_steps=15)
    again = collect_pusht_demonstrations(2, seed=5, max_steps=15)
    assert len(episodes) == 2
    for index, (episode, repeat) in enumerate(zip(episodes, again)):
        assert set(episode) == {"observations", "actions", "max_reward", "success"}
        assert episode["observations"].dtype == np.float32 and episode["actions"].dtype == np.float32
        assert episode["observations"].shape == (15, 5) and episode["actions"].shape == (15, 2)
        assert np.all((episode["actions"] >= 0.0) & (episode["actions"] <= 512.0))
        assert isinstance(episode["max_reward"], float) and 0.0 <= episode["max_reward"] <= 1.0
        assert isinstance(episode["success"], bool)
        first, _ = make_pusht_env().reset(seed=5 + index)
        np.testing.assert_array_equal(episode["observations"][0], first.astype(np.float32))
        np.testing.assert_array_equal(episode["observations"], repeat["observations"])
        np.testing.assert_array_equal(episode["actions"], repeat["actions"])
        assert np.linalg.norm(np.diff(episode["actions"], axis=0), axis=1).max() <= 20.0 + 1e-3


def test_expert_makes_progress():
    env = make_pusht_env()
    env.reset(seed=3)
    expert = PushTExpert(seed=3)
    expert.reset(env, seed=3)
    initial = _keypoint_distance(env)
    for _ in range(80):
        env.step(expert.act(env))
    assert _keypoint_distance(env) < 0.25 * initial


def test_expert_solves_an_episode():
    (episode,) = collect_pusht_demonstrations(1, seed=14)
    assert episode["success"] and episode["max_reward"] == 1.0
    assert len(episode["actions"]) < 300


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_episodes": 0}, "`num_episodes` must be an integer >= 1; received num_episodes=0."),
        ({"num_episodes": 1.5}, "`num_episodes` must be an integer >= 1; received num_episodes=1.5."),
        ({"num_episodes": 1, "max_steps": 0}, "`max_steps` must be an integer >= 1; received max_steps=0."),
        ({"num_episodes": 1, "seed": "a"}, "`seed` must be an integer >= 0 and <= 2147483647; received seed='a'."),
    ],
)
def test_collection_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        collect_pusht_demonstrations(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"transit_speed": 0}, "`transit_speed` must be a finite number > 0.0; received transit_speed=0."),
        ({"contact_spacing": -1.0}, "`contact_spacing` must be a finite number > 0.0; received contact_spacing=-1.0."),
        ({"min_push_speed": 5.0, "max_push_speed": 2.0}, "`min_push_speed` must not exceed `max_push_speed`"),
        ({"max_push_steps": 0}, "`max_push_steps` must be an integer >= 1; received max_push_steps=0."),
        ({"settle_steps": -1}, "`settle_steps` must be an integer >= 0; received settle_steps=-1."),
        ({"seed": 1.0}, "`seed` must be an integer >= 0 and <= 2147483647; received seed=1.0."),
    ],
)
def test_expert_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        PushTExpert(**kwargs)


def test_act_before_reset_raises():
    env = make_pusht_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="must be called before"):
        PushTExpert().act(env)


def test_missing_gym_pusht_raises_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gym_pusht", None)
    with pytest.raises(ImportError, match="pip install gym-pusht"):
        make_pusht_env()


def test_keypoint_observations_are_the_agent_and_the_tees_corners():
    env = make_pusht_env(keypoints=True)
    observation, _ = env.reset(seed=0)
    unwrapped = env.unwrapped
    assert observation.shape == (18,)
    np.testing.assert_allclose(observation[:2], tuple(unwrapped.agent.position))
    np.testing.assert_allclose(observation[2:].reshape(8, 2), unwrapped.get_keypoints(unwrapped._block_shapes))
    with pytest.raises(ValueError, match="`keypoints` must be True or False"):
        make_pusht_env(keypoints="yes")
