"""A diffusion world model of MinAtar Breakout against copying the last frame and an MSE next-frame regressor.

Usage:
    KERAS_BACKEND=jax python benchmarks/world_model.py [--epochs 10] [--sticky 0.1] [--quick]
    KERAS_BACKEND=torch python benchmarks/world_model.py --cost-only   # the cost per frame on a backend

Data (offline, fixed seeds): `collect_minatar_episodes("breakout")` — the
ball-tracking paddle with random actions while the ball rises — 300
training episodes (seed 0) and 100 held-out ones (seed 1), ≤ 200 steps;
with `--sticky p` the game repeats the previous action with probability p
(MinAtar's default 0.1), which makes its transitions stochastic.
From every held-out episode long enough, one start at a random step (k =
4 real frames and the 3 actions between them), then 15 actions of the
episode itself: each model imagines the 15 frames under the same actions,
and they are compared with the real ones.

Models, on the same transitions:
- diffusion: `WorldModel` (DIAMOND's design) with `UNet(channels=--channels,
  channel_multipliers=(1, 2), blocks_per_level=--blocks)`, each frame sampled
  by three samplers at the same 3 denoiser evaluations: DIAMOND's 3 Euler
  steps, 2 Heun steps (the last one Euler) and 3 DPM-Solver++(2M) steps;
- regression: the same UNet and action embedding, fed the same frame
  stack and a constant noise level, trained by MSE to output the next frame
  directly (deterministic), thresholded at the midpoint;
- copy: the last real frame, repeated.

Reported for horizons 1…15: F1 per channel (paddle, ball, trail, brick) —
2·TP/(predicted + real positives) over all starts, a channel with no
positives in either counting 1 — and its mean over the four channels (each
weighted equally, so the static bricks do not dominate as they do pixel
F1); the cost per imagined frame (ms, the batch of starts at once) on the
backend it runs on; and the fit seconds.
"""

import argparse
import copy
import functools
import time

import keras
import numpy as np
from keras import ops

from keras_score import samplers
from keras_score.metrics import channel_f1, frame_total_variation
from keras_score.networks import UNet
from keras_score.world_model import (
    ActionEmbedding,
    WorldModel,
    autoregressive_rollout,
    collect_minatar_episodes,
    make_minatar_env,
    transition_windows,
)

K, HORIZON = 4, 15
TEST_SEED = 1  # of the held-out episodes
CHANNELS = ("paddle", "ball", "trail", "brick")


def starts(episodes, seed):
    """One random start per held-out episode long enough: k frames, k − 1 actions, 15 actions, 15 real frames.

    Also returns where each start is: (episode index, index of its last real frame).
    """
    rng = np.random.default_rng(seed)
    frames, past, actions, real, where = [], [], [], [], []
    for i, episode in enumerate(episodes):
        length = len(episode["actions"])
        if length < K - 1 + HORIZON:
            continue
        s = int(rng.integers(0, length - (K - 1 + HORIZON) + 1))
        frames.append(episode["frames"][s : s + K])
        past.append(episode["actions"][s : s + K - 1])
        actions.append(episode["actions"][s + K - 1 : s + K - 1 + HORIZON])
        real.append(episode["frames"][s + K : s + K + HORIZON])
        where.append((i, s + K - 1))
    return np.stack(frames), np.stack(past), np.stack(actions), np.stack(real), where


def real_branches(episodes, where, actions, seed, sticky, draws):
    """`draws` real continuations (n, draws, 15, H, W, C) of every start under its 15 actions.

    The held-out episodes are replayed in order in a game seeded as they
    were collected (the game's random draws then repeat exactly, which is
    checked frame by frame); at each start the game is copied, and each
    copy reseeded draws its own sticky repeats.
    """
    env = make_minatar_env("breakout", seed, sticky)
    index = {place: j for j, place in enumerate(where)}
    branches = np.empty((len(where), draws, HORIZON, *episodes[0]["frames"].shape[1:]), dtype="uint8")
    for i, episode in enumerate(episodes):
        env.reset()
        for t, action in enumerate(episode["actions"]):
            if (i, t) in index:
                j = index[(i, t)]
                for d in range(draws):
                    branch = copy.deepcopy(env)
                    branch.seed(seed * 1_000_003 + j * draws + d)
                    for h, a in enumerate(actions[j]):
                        branch.act(int(a))
                        branches[j, d, h] = branch.state()
            env.act(int(action))
            if not np.array_equal(env.state(), episode["frames"][t + 1]):
                raise RuntimeError(f"the replay of held-out episode {i} departs from it at step {t}")
    return branches


def valid_frames(frames):
    """Whether each Breakout frame obeys the game: one paddle cell, in the bottom row; one ball cell; one trail cell."""
    frames = np.asarray(frames, dtype=bool)
    counts = frames.sum(axis=(-3, -2))
    paddle, ball, trail = (counts[..., CHANNELS.index(c)] == 1 for c in ("paddle", "ball", "trail"))
    return paddle & frames[..., 9, :, CHANNELS.index("paddle")].any(axis=-1) & ball & trail


@keras.saving.register_keras_serializable(package="benchmarks")
class NextFrameRegressor(keras.Model):
    """The world model's UNet and action embedding as a deterministic regressor of the next frame (MSE)."""

    def __init__(self, network, num_actions, action_units, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.actions = ActionEmbedding(num_actions, action_units)

    def build(self, input_shape):
        """Builds every weight by one forward pass on zeros (as the world model's denoiser does)."""
        context_shape, actions_shape = input_shape
        self.call((ops.zeros((1, *context_shape[1:])), ops.zeros((1, *actions_shape[1:]), dtype="int32")))
        self.built = True

    def call(self, inputs):
        context, actions = inputs  # context (b, H, W, k·C) in [−1, 1]
        channels = ops.shape(context)[-1] // K
        x = ops.concatenate([ops.zeros_like(context[..., :channels]), context], axis=-1)
        noise = ops.zeros((ops.shape(context)[0],))
        return self.network((x, noise, self.actions({"actions": actions})))


def stack(frames):
    """(n, k, H, W, C) levels → (n, H, W, k·C) in [−1, 1], the frames in order."""
    scaled = 2.0 * np.asarray(frames, dtype="float32") - 1.0
    return np.transpose(scaled, (0, 2, 3, 1, 4)).reshape(*scaled.shape[:1], *scaled.shape[2:4], -1)


def regressor_rollout(model, frames, past, actions):
    def next_frame(history, taken, j):
        return (model.predict_on_batch([stack(history), taken]) > 0).astype("uint8")

    return autoregressive_rollout(next_frame, frames, past, actions)


def unet(args):
    return UNet(channels=args.channels, channel_multipliers=(1, 2), blocks_per_level=args.blocks, output_channels=4)


ACTION_UNITS = 16  # each step's action embedding, the same in both models
SAMPLERS = (("euler", 3), ("heun", 2), ("dpmpp_2m", 3))  # 3 denoiser evaluations per frame each


def timed_rollout(rollout, frames, past, actions):
    """(imagined frames, seconds per imagined frame for the whole batch), after a first, compiling step."""
    rollout(frames, past, actions[:, :1])
    start = time.perf_counter()
    imagined = rollout(frames, past, actions)
    return imagined, (time.perf_counter() - start) / actions.shape[1]


def diffusion_model(args, train, frames, past, actions):
    """The trained diffusion world model's rollouts and costs per sampler, and its fit seconds and losses by epoch.

    With `--draws m`, also m rollouts from every start per sampler (n, m, 15, H, W, C), each sampling its own frames.
    """
    keras.utils.set_random_seed(0)
    diffusion = WorldModel((10, 10, 4), 6, context_frames=K, network=unet(args), action_units=ACTION_UNITS, seed=0)
    diffusion.compile(optimizer=keras.optimizers.AdamW(1e-3))
    start = time.perf_counter()
    history = diffusion.fit(train, batch_size=64, epochs=args.epochs, verbose=0)
    fit = (time.perf_counter() - start, history.history["loss"])
    print(f"diffusion: {diffusion.network.count_params():,} UNet parameters")
    results, draws, costs = {}, {}, {}
    for name, steps in SAMPLERS:
        diffusion.sampler, diffusion.steps = samplers.get(name), steps
        label = f"diffusion, {name} {steps} (NFE {diffusion.sampler.num_function_evals(steps)})"
        rollout = functools.partial(diffusion.rollout, seed=0)
        results[label], costs[label] = timed_rollout(rollout, frames, past, actions)
        if args.draws:
            repeated = [np.repeat(a, args.draws, axis=0) for a in (frames, past, actions)]
            draws[label] = rollout(*repeated).reshape(len(frames), args.draws, *results[label].shape[1:])
    return results, draws, costs, fit


def regression_model(args, train, frames, past, actions):
    """The MSE regressor's rollout, its cost, and its fit seconds and losses by epoch."""
    keras.utils.set_random_seed(0)
    regressor = NextFrameRegressor(unet(args), 6, ACTION_UNITS)
    regressor.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="mse")
    context, taken, targets = transition_windows(train, K)
    start = time.perf_counter()
    history = regressor.fit(
        [stack(context), taken], 2.0 * targets.astype("float32") - 1.0, batch_size=64, epochs=args.epochs, verbose=0
    )
    fit = (time.perf_counter() - start, history.history["loss"])
    imagined, cost = timed_rollout(functools.partial(regressor_rollout, regressor), frames, past, actions)
    return imagined, cost, fit


def print_laws(results, draws, branches):
    """Distances of the imagined laws to the real one, per step, against the noise floor of two real sets.

    A deterministic model (and the copy) is one trajectory per start; the
    diffusion model's m sampled ones are compared with m real ones, the
    other m real ones measure what two finite sets of one law differ by.
    """
    real, independent = np.split(branches, 2, axis=1)
    sets = {name: draws.get(name, imagined[:, None]) for name, imagined in results.items()}
    sets["real, an independent set"] = independent
    steps = (1, 5, 10, 15)
    header = " | ".join(f"h={h}" for h in steps)
    print(f"| model ({real.shape[1]} real continuations per start) | measure | {header} |")
    print("|---|---|" + "---|" * len(steps))
    for name, imagined in sets.items():
        rows = {
            "TV of frames": frame_total_variation(imagined, real).mean(axis=0),
            "TV of paddle": frame_total_variation(imagined[..., :1], real[..., :1]).mean(axis=0),
            "TV of ball": frame_total_variation(imagined[..., 1:2], real[..., 1:2]).mean(axis=0),
            "valid frames": valid_frames(imagined).mean(axis=(0, 1)),
        }
        for measure, values in rows.items():
            print(f"| {name} | {measure} | " + " | ".join(f"{values[h - 1]:.3f}" for h in steps) + " |")


def main():
    parser = argparse.ArgumentParser(description="Diffusion world model of MinAtar Breakout against baselines.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--train-episodes", type=int, default=300)
    parser.add_argument("--test-episodes", type=int, default=100)
    parser.add_argument("--sticky", type=float, default=0.0, help="sticky_action_prob of the game (MinAtar's: 0.1)")
    parser.add_argument("--models", default="diffusion,regression", help="which trained models to run (copy always)")
    parser.add_argument(
        "--draws", type=int, default=16, help="rollouts per start, and real continuations, for the distances of laws"
    )
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke run")
    parser.add_argument(
        "--cost-only", action="store_true", help="the cost per imagined frame only: models fitted on 4 episodes"
    )
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.channels, args.blocks, args.train_episodes, args.test_episodes = 1, 8, 1, 10, 10
        args.draws = 2
    if args.cost_only:
        args.epochs, args.train_episodes, args.draws = 1, 4, 0
    print(f"backend {keras.backend.backend()}, {args}")
    train = collect_minatar_episodes("breakout", args.train_episodes, 0, 200, sticky_action_prob=args.sticky)
    test = collect_minatar_episodes("breakout", args.test_episodes, TEST_SEED, 200, sticky_action_prob=args.sticky)
    frames, past, actions, real, where = starts(test, seed=2)
    print(f"{sum(len(e['actions']) for e in train)} training transitions; {len(frames)} held-out starts")
    results, draws, costs, fits = {}, {}, {}, {}

    models = args.models.split(",")
    if "diffusion" in models:
        diffusion_results, diffusion_draws, diffusion_costs, fits["diffusion"] = diffusion_model(
            args, train, frames, past, actions
        )
        results.update(diffusion_results)
        draws.update(diffusion_draws)
        costs.update(diffusion_costs)
    if "regression" in models:
        results["regression"], costs["regression"], fits["regression"] = regression_model(
            args, train, frames, past, actions
        )
    results["copy"] = np.repeat(frames[:, -1:], HORIZON, axis=1)
    costs["copy"] = 0.0

    for name, (seconds, losses) in fits.items():
        print(f"{name}: fit {seconds:.0f} s, training loss by epoch " + " ".join(f"{v:.4f}" for v in losses))
    if not args.cost_only:
        print("| model | " + " | ".join(f"h={h}" for h in range(1, HORIZON + 1)) + " |")
        print("|---|" + "---|" * HORIZON)
        scores = {name: channel_f1(imagined, real) for name, imagined in results.items()}
        for name, f1 in scores.items():
            print(f"| {name}, mean F1 | " + " | ".join(f"{v:.3f}" for v in f1.mean(axis=1)) + " |")
        for c, channel in enumerate(CHANNELS):
            for name, f1 in scores.items():
                print(f"| {name}, {channel} | " + " | ".join(f"{v:.3f}" for v in f1[:, c]) + " |")
    if args.draws:
        print_laws(results, draws, real_branches(test, where, actions, TEST_SEED, args.sticky, 2 * args.draws))
    for name, cost in costs.items():
        print(f"{name}: {1000 * cost / len(frames):.3f} ms per imagined frame ({len(frames)} frames per call)")


if __name__ == "__main__":
    main()
