"""MinAtar frames and actions, collected offline under a fixed seed by a mix of a random and a scripted policy."""

import numpy as np

from keras_score import validation


def _import_minatar():
    try:
        from minatar import Environment
    except ImportError as error:
        raise ImportError("MinAtar games need the minatar package: pip install minatar") from error
    return Environment


def make_minatar_env(game="breakout", seed=0, sticky_action_prob=0.0):
    """A MinAtar game, seeded, without sticky actions unless asked.

    Args:
        game: "breakout", "freeway", "asterix", "seaquest" or "space_invaders".
        seed: seed of the game's own randomness.
        sticky_action_prob: probability that a step repeats the previous
            action instead of the one given (MinAtar's own default is 0.1;
            it makes even Breakout's transitions stochastic given the action).

    Returns:
        `minatar.Environment`; `state()` is a (10, 10, C) boolean frame.

    Example:
    >>> env = make_minatar_env("breakout", seed=0)
    >>> env.state().shape
    (10, 10, 4)
    """
    game = validation.check_choice(game, "game", ("breakout", "freeway", "asterix", "seaquest", "space_invaders"))
    sticky = validation.check_float(sticky_action_prob, "sticky_action_prob", minimum=0.0, maximum=1.0)
    env = _import_minatar()(game, sticky_action_prob=sticky, difficulty_ramping=False)
    env.seed(validation.check_seed(seed))
    env.reset()
    return env


def breakout_tracker(env, rng):
    """Breakout's scripted policy: move the paddle under where the ball goes next (left 1, right 3, else no-op 0).

    The ball's horizontal direction is read from its trail; the target is
    the ball's next column, so the paddle meets it instead of lagging a step.
    """
    frame = env.state()
    channels = env.env.channels
    paddle = np.flatnonzero(frame[9, :, channels["paddle"]])
    ball = np.argwhere(frame[:, :, channels["ball"]])
    trail = np.argwhere(frame[:, :, channels["trail"]])
    if not len(paddle) or not len(ball):
        return 0
    direction = ball[0][1] - trail[0][1] if len(trail) else 0
    offset = np.clip(ball[0][1] + direction, 0, 9) - paddle[0]
    return 1 if offset < 0 else 3 if offset > 0 else 0


def _rising(env):
    """Whether Breakout's ball moves up (away from the paddle), when a random action cannot lose the ball."""
    frame = env.state()
    channels = env.env.channels
    ball, trail = np.argwhere(frame[:, :, channels["ball"]]), np.argwhere(frame[:, :, channels["trail"]])
    return bool(len(ball) and len(trail) and ball[0][0] < trail[0][0])


def collect_minatar_episodes(
    game="breakout", num_episodes=20, seed=0, max_steps=200, random_fraction=0.3, sticky_action_prob=0.0
):
    """Episodes of a MinAtar game under a mix of a uniformly random and a scripted policy.

    In Breakout, while the ball rises each step takes a uniformly random
    action with probability `random_fraction`, and otherwise the scripted
    `breakout_tracker`, which moves the paddle under the ball and so keeps
    episodes going while the paddle still wanders (a uniformly random
    policy alone loses within 16 steps on average, too short for 15-step
    rollouts). Other games are played at random throughout.

    Args:
        game: a MinAtar game name.
        num_episodes: number of episodes.
        seed: seed of the game and of the policy's choices.
        max_steps: the longest episode.
        random_fraction: Breakout: probability of a random action at a step where the ball rises.
        sticky_action_prob: as `make_minatar_env`; the recorded action is the one
            chosen, not the one the game repeated.

    Returns:
        A list of dicts {"frames": uint8 (T + 1, 10, 10, C) with values 0/1,
        "actions": int32 (T,)}: actions[t] leads from frames[t] to frames[t + 1].

    Example:
    >>> episodes = collect_minatar_episodes("breakout", num_episodes=2, seed=0, max_steps=50)
    >>> episodes[0]["frames"].shape[1:], episodes[0]["actions"].dtype
    ((10, 10, 4), dtype('int32'))

    Reference: Young & Tian, "MinAtar: An Atari-Inspired Testbed for
    Thorough and Reproducible Reinforcement Learning Experiments", 2019.
    """
    num_episodes = validation.check_int(num_episodes, "num_episodes", minimum=1)
    max_steps = validation.check_int(max_steps, "max_steps", minimum=1)
    fraction = validation.check_float(random_fraction, "random_fraction", minimum=0.0, maximum=1.0)
    env = make_minatar_env(game, seed, sticky_action_prob)
    rng = np.random.default_rng(validation.check_seed(seed))
    scripted = breakout_tracker if game == "breakout" else None
    episodes = []
    for _ in range(num_episodes):
        env.reset()
        frames, actions = [env.state()], []
        for _ in range(max_steps):
            if scripted is None or (_rising(env) and rng.random() < fraction):
                action = int(rng.integers(env.num_actions()))
            else:
                action = scripted(env, rng)
            _, terminal = env.act(action)
            actions.append(action)
            frames.append(env.state())
            if terminal:
                break
        episodes.append({"frames": np.asarray(frames, dtype="uint8"), "actions": np.asarray(actions, dtype="int32")})
    return episodes
