"""Running policies in environments: demonstrations from an expert, and receding-horizon rollouts of a policy."""

import dataclasses

import numpy as np

from keras_score import validation


def collect_demonstrations(env, expert, num_episodes, seed=0, max_steps=300):
    """Episodes of an expert in a gymnasium-style environment, as the demonstrations of `fit`.

    Episode i starts from `env.reset(seed=seed + i)`; the expert is told
    of the new episode by `expert.reset(env)` and chooses each action by
    `expert.act(env)` (it may read the simulator's state). An episode ends
    when the environment terminates or truncates it, or after `max_steps`.

    Args:
        env: the environment (`reset(seed=...)`, `step(action)`).
        expert: an object with `reset(env)` and `act(env)`.
        num_episodes: number of episodes.
        seed: seed of the first episode's reset.
        max_steps: the longest episode.

    Returns:
        A list of dicts {"observations": float32 (T, d), the observation
        before each action; "actions": float32 (T, a); "max_reward": the
        episode's largest reward; "success": whether info["is_success"]
        was ever set}.

    Example:
    >>> env = ObstacleReach()
    >>> episodes = collect_demonstrations(env, env.expert(seed=0), 10, seed=0, max_steps=80)
    >>> episodes[0]["observations"].shape[1], episodes[0]["success"]
    (2, True)
    """
    num_episodes = validation.check_int(num_episodes, "num_episodes", minimum=1)
    seed = validation.check_seed(seed)
    max_steps = validation.check_int(max_steps, "max_steps", minimum=1)
    episodes = []
    for i in range(num_episodes):
        observation, _ = env.reset(seed=seed + i)
        expert.reset(env)
        observations, actions, max_reward, success = [], [], 0.0, False
        for _ in range(max_steps):
            action = np.asarray(expert.act(env), dtype="float32")
            observations.append(np.asarray(observation, dtype="float32"))
            actions.append(action)
            observation, reward, terminated, truncated, info = env.step(action)
            max_reward, success = max(max_reward, float(reward)), success or bool(info.get("is_success", False))
            if terminated or truncated:
                break
        episodes.append(
            {
                "observations": np.stack(observations),
                "actions": np.stack(actions),
                "max_reward": max_reward,
                "success": success,
            }
        )
    return episodes


@dataclasses.dataclass
class Rollouts:
    """The episodes of `rollout`, one row per environment.

    Attributes:
        observations: float32 (n, max_steps + 1, d), the observations from
            the reset on; past an episode's end its last observation repeats.
        lengths: int (n,), the steps each episode took.
        max_rewards: float (n,), each episode's largest reward (Push-T's score).
        successes: bool (n,), whether info["is_success"] was set.
        latencies: seconds of every chunk prediction (each for all n histories at once).
    """

    observations: np.ndarray
    lengths: np.ndarray
    max_rewards: np.ndarray
    successes: np.ndarray
    latencies: list

    @property
    def success_rate(self):
        return float(np.mean(self.successes))

    @property
    def score(self):
        """The mean over episodes of each episode's maximum reward."""
        return float(np.mean(self.max_rewards))

    def trajectory(self, i):
        """The observations of episode i, from the reset to its last step, shape (lengths[i] + 1, d)."""
        return self.observations[i, : self.lengths[i] + 1]


def rollout(policy, environments, max_steps=300, seed=0):
    """Receding-horizon control: every environment runs one episode under the policy, all planned in one batch.

    Each environment is reset with seed `seed + i`; its history starts as
    `n_obs_steps` copies of the first observation (as the training windows
    are padded). Every `n_action_steps` steps the policy predicts one chunk
    for all the environments' histories at once — a batch of fixed size,
    so a compiled sampler is reused at every step, episodes that have
    ended included — and each environment executes the chunk's
    `predict_actions` part. An episode ends when its environment
    terminates or truncates it, or after `max_steps`.

    Args:
        policy: a `ChunkedPolicy` (`DiffusionPolicy`, `RegressionPolicy`).
        environments: a list of gymnasium-style environments, one episode each.
        max_steps: the longest episode (Push-T: 300).
        seed: seed of the first reset, and of the policy's noise (chunk k uses seed + k).

    Returns:
        `Rollouts`.

    Example:
    >>> results = rollout(policy, [ObstacleReach() for _ in range(50)], max_steps=80, seed=0)
    >>> results.success_rate, 1000 * np.median(results.latencies)  # success, and ms per chunk
    """
    if not environments:
        raise ValueError("`environments` must be a non-empty list of environments; received none.")
    max_steps = validation.check_int(max_steps, "max_steps", minimum=1)
    seed = validation.check_seed(seed)
    first = [np.asarray(env.reset(seed=seed + i)[0], dtype="float32") for i, env in enumerate(environments)]
    n = len(environments)
    observations = np.repeat(np.stack(first)[:, None], max_steps + 1, axis=1)
    histories = np.repeat(np.stack(first)[:, None], policy.n_obs_steps, axis=1)
    lengths = np.zeros(n, dtype="int64")
    max_rewards = np.zeros(n)
    successes = np.zeros(n, dtype=bool)
    running = np.ones(n, dtype=bool)
    latencies = []
    step, chunk = 0, 0
    while step < max_steps and running.any():
        actions = policy.predict_actions(histories, seed=(seed + chunk) % (validation.SEED_MAX + 1))
        latencies.append(policy.last_latency)
        chunk += 1
        for k in range(min(policy.n_action_steps, max_steps - step)):
            for i in np.flatnonzero(running):
                observation, reward, terminated, truncated, info = environments[i].step(actions[i, k])
                observation = np.asarray(observation, dtype="float32")
                lengths[i] += 1
                observations[i, lengths[i] :] = observation
                histories[i] = np.concatenate([histories[i, 1:], observation[None]])
                max_rewards[i] = max(max_rewards[i], float(reward))
                successes[i] |= bool(info.get("is_success", False))
                running[i] = not (terminated or truncated)
            step += 1
    return Rollouts(observations, lengths, max_rewards, successes, latencies)
