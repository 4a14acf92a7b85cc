"""World model (DIAMOND): transitions, MinAtar data, a tiny next-frame model, rollouts without recompiling."""

import json

import keras
import numpy as np
import pytest

from keras_score.metrics import channel_f1, frame_total_variation
from keras_score.networks import UNet
from keras_score.world_model import (
    ActionEmbedding,
    LearnedEnvironment,
    WorldModel,
    autoregressive_rollout,
    collect_minatar_episodes,
    starting_histories,
    transition_windows,
)

pytest.importorskip("minatar")

BACKEND = keras.backend.backend()


@keras.saving.register_keras_serializable(package="test_world_model")
class CountingUNet(UNet):
    """A UNet that counts how often its Python `call` runs: once per trace on JAX and TensorFlow."""

    calls = 0

    def call(self, inputs, training=False):
        CountingUNet.calls += 1
        return super().call(inputs, training=training)


@pytest.fixture(scope="module")
def episodes():
    return collect_minatar_episodes("breakout", num_episodes=6, seed=0, max_steps=40)


@pytest.fixture(scope="module")
def model(episodes):
    keras.utils.set_random_seed(0)
    network = CountingUNet(channels=8, channel_multipliers=(1, 2), blocks_per_level=1, groups=4, output_channels=4)
    world = WorldModel((10, 10, 4), num_actions=6, context_frames=2, network=network, action_units=4, seed=0)
    world.compile(optimizer=keras.optimizers.AdamW(1e-3))
    world.fit(episodes, batch_size=64, epochs=1, verbose=0)
    return world


def test_transitions_pair_k_frames_and_their_actions_with_the_next_frame():
    episode = {"frames": np.arange(6)[:, None, None, None], "actions": 10 + np.arange(5)}
    frames, actions, targets = transition_windows([episode], 3)
    np.testing.assert_array_equal(frames[:, :, 0, 0, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(actions, [[10, 11, 12], [11, 12, 13], [12, 13, 14]])  # actions[t] taken in frame t
    np.testing.assert_array_equal(targets[:, 0, 0, 0], [3, 4, 5])  # the frame after the newest action
    with pytest.raises(ValueError, match=r"frames \(T \+ 1, H, W, C\) and actions \(T,\)"):
        transition_windows([{"frames": np.zeros((5, 2, 2, 1)), "actions": np.zeros(5, "int32")}], 2)
    with pytest.raises(ValueError, match="No episode is longer"):
        transition_windows([episode], 7)


def test_minatar_episodes_are_binary_deterministic_and_long_under_the_tracker(episodes):
    assert len(episodes) == 6
    for episode in episodes:
        assert episode["frames"].shape == (len(episode["actions"]) + 1, 10, 10, 4)
        assert episode["frames"].dtype == np.uint8 and set(np.unique(episode["frames"])) <= {0, 1}
        assert episode["actions"].dtype == np.int32 and np.all((episode["actions"] >= 0) & (episode["actions"] < 6))
    again = collect_minatar_episodes("breakout", num_episodes=6, seed=0, max_steps=40)
    for a, b in zip(episodes, again):
        np.testing.assert_array_equal(a["frames"], b["frames"])
    (tracked,) = collect_minatar_episodes("breakout", num_episodes=1, seed=3, max_steps=150, random_fraction=0.0)
    assert len(tracked["actions"]) == 150  # the scripted paddle never loses the ball
    with pytest.raises(ValueError, match="`game` must be one of"):
        collect_minatar_episodes("pong")


def test_sticky_actions_repeat_the_previous_action():
    (always,) = collect_minatar_episodes("breakout", 1, seed=0, max_steps=30, sticky_action_prob=1.0)
    paddle = always["frames"][:, 9, :, 0]
    assert np.all(paddle == paddle[0]) and np.any(always["actions"] != 0)  # every step repeats the first no-op
    (some,) = collect_minatar_episodes("breakout", 1, seed=0, max_steps=30, sticky_action_prob=0.5)
    (none,) = collect_minatar_episodes("breakout", 1, seed=0, max_steps=30)
    assert not np.array_equal(some["frames"][: len(none["frames"])], none["frames"][: len(some["frames"])])
    with pytest.raises(ValueError, match="`sticky_action_prob` must be"):
        collect_minatar_episodes("breakout", 1, sticky_action_prob=1.5)


def test_autoregressive_rollout_feeds_each_prediction_back_with_the_actions_aligned():
    seen = []

    def next_frame(history, taken, j):
        seen.append((history[0, :, 0, 0, 0].tolist(), taken[0].tolist(), j))
        return np.full(history.shape[:1] + history.shape[2:], 10 + j)

    frames = np.arange(3).reshape(1, 3, 1, 1, 1)
    imagined = autoregressive_rollout(next_frame, frames, [[7, 8]], [[1, 2, 3]])
    assert imagined[0, :, 0, 0, 0].tolist() == [10, 11, 12]
    assert seen == [([0, 1, 2], [7, 8, 1], 0), ([1, 2, 10], [8, 1, 2], 1), ([2, 10, 11], [1, 2, 3], 2)]
    with pytest.raises(ValueError, match=r"`past_actions` must have shape \(1, 2\)"):
        autoregressive_rollout(next_frame, frames, [[7]], [[1]])
    with pytest.raises(ValueError, match=r"`actions` must have shape \(1, T\)"):
        autoregressive_rollout(next_frame, frames, [[7, 8]], [1])


def test_action_embedding_is_one_vector_per_action_and_step():
    layer = ActionEmbedding(6, units=3)
    out = keras.ops.convert_to_numpy(layer({"actions": np.array([[0, 1], [1, 0], [0, 1]], "int32")}))
    assert out.shape == (3, 6)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[0, :3], out[1, 3:])  # action 0 at step 0 and at step 1: the same vector
    assert not np.allclose(out[0], out[1])


def test_rollout_imagines_frames_on_the_levels_without_recompiling(model, episodes):
    frames, past_actions = starting_histories(episodes, 2)
    actions = np.random.default_rng(0).integers(0, 6, size=(len(frames), 5))
    model._generate_functions.clear()
    calls = CountingUNet.calls
    imagined = model.rollout(frames, past_actions, actions, seed=0)
    assert imagined.shape == (len(frames), 5, 10, 10, 4) and imagined.dtype == np.uint8
    assert set(np.unique(imagined)) <= {0, 1}
    traced = CountingUNet.calls - calls
    if BACKEND in ("jax", "tensorflow"):
        assert 0 < traced <= 2 * model.steps  # one trace of the sampling loop for all five frames
    else:
        assert traced == 5 * model.steps  # eager: one network call per Euler step
    assert len(model._generate_functions) == 1
    np.testing.assert_array_equal(model.rollout(frames, past_actions, actions, seed=0), imagined)
    first = model.predict_next(frames, np.concatenate([past_actions, actions[:, :1]], axis=1), seed=0)
    np.testing.assert_array_equal(first, imagined[:, 0])


def test_world_model_round_trips_through_keras_saving(model, episodes, tmp_path):
    frames, past_actions = starting_histories(episodes, 2)
    actions = np.ones((len(frames), 3), "int32")
    path = tmp_path / "world.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, WorldModel) and (loaded.context_frames, loaded.num_actions, loaded.steps) == (2, 6, 3)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(model.get_config(), sort_keys=True)
    np.testing.assert_array_equal(
        loaded.rollout(frames, past_actions, actions, seed=4), model.rollout(frames, past_actions, actions, seed=4)
    )


def test_learned_environment_steps_like_gymnasium(model, episodes):
    env = LearnedEnvironment(model, *starting_histories(episodes, 2), max_steps=3)
    frame, info = env.reset(seed=0)
    assert frame.shape == (10, 10, 4) and 0 <= info["start"] < len(episodes)
    for step in range(3):
        frame, reward, terminated, truncated, _ = env.step(step % 6)
        assert frame.shape == (10, 10, 4) and reward == 0.0 and not terminated
    assert truncated
    with pytest.raises(ValueError, match="`action` must be an integer >= 0 and <= 5"):
        env.step(6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda m, f, a: m.predict_next(f[:, :, :5], a), "frame shape"),
        (lambda m, f, a: m.predict_next(2 * f + 1, a), "levels 0…1"),
        (lambda m, f, a: m.predict_next(f, a[:, :1]), "`actions` must have shape"),
        (lambda m, f, a: m.rollout(f, a, a), "`past_actions` must have shape"),
        (lambda m, f, a: WorldModel((10, 10), 6), "`frame_shape` must be"),
        (lambda m, f, a: m.fit([{"frames": np.zeros((4, 10, 10, 4)), "actions": np.full(3, 7)}]), "num_actions"),
    ],
)
def test_bad_inputs_get_clear_errors(model, episodes, call, match):
    frames, past_actions = starting_histories(episodes, 2)
    actions = np.concatenate([past_actions, past_actions], axis=1)
    with pytest.raises(ValueError, match=match):
        call(model, frames, actions)


def test_channel_f1_counts_per_channel_and_step():
    real = np.zeros((2, 3, 4, 4, 2), "uint8")
    real[:, :, 0, 0, 0] = 1  # channel 0: one pixel per frame; channel 1 empty
    predicted = real.copy()
    predicted[0, 1, 0, 0, 0] = 0  # a miss at step 1
    predicted[:, 2, 1, 1, 0] = 1  # two false alarms at step 2
    f1 = channel_f1(predicted, real)
    np.testing.assert_allclose(f1[:, 0], [1.0, 2 * 1 / (1 + 2), 2 * 2 / (4 + 2)])
    np.testing.assert_array_equal(f1[:, 1], [1.0, 1.0, 1.0])  # nothing to find, nothing invented
    with pytest.raises(ValueError, match="of one shape"):
        channel_f1(predicted[:1], real)


def test_frame_total_variation_is_half_the_l1_distance_of_frame_rates():
    frames = np.zeros((2, 4, 1, 2, 2, 1), "uint8")
    frames[0, :3, 0, 0, 0, 0] = 1  # start 0: frame A three times in four, frame B once
    real = np.zeros((2, 2, 1, 2, 2, 1), "uint8")
    real[0, :, 0, 1, 1, 0] = 1  # start 0: frame C twice, shared with neither
    real[1, 0, 0, 0, 0, 0] = 1  # start 1: one A, one B against four B
    np.testing.assert_allclose(frame_total_variation(frames, real), [[1.0], [0.5]])
    np.testing.assert_allclose(frame_total_variation(frames[:, ::-1], real), [[1.0], [0.5]])  # order of draws
    with pytest.raises(ValueError, match="trajectory sets"):
        frame_total_variation(frames[:1], real)


def test_frame_total_variation_converges_to_the_distance_of_the_laws():
    rng = np.random.default_rng(0)
    on_03 = rng.random((1, 20000, 1, 1, 1, 1)) < 0.3
    on_05 = rng.random((1, 20000, 1, 1, 1, 1)) < 0.5
    np.testing.assert_allclose(frame_total_variation(on_03, on_05), [[0.2]], atol=0.015)
