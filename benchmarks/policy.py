"""Diffusion policy against MSE behaviour cloning: the multimodal obstacle reach and Push-T.

Usage:
    KERAS_BACKEND=jax python benchmarks/policy.py [--task reach|pusht|all] [--quick]

Both policies see the same demonstrations, of the same expert, cut into
the same windows (n_obs_steps 2, horizon 16, n_action_steps 8, the paper's
Push-T settings), and run by the same receding-horizon loop
(`keras_score.policy.rollout`, every environment of an evaluation planned
in one batch). The diffusion policy is a `DiffusionPolicy` with a
`TemporalUNet` of widths `--down-dims` and 10 DDIM steps; the baseline a
`RegressionPolicy` MLP (3 hidden layers) whose width is chosen to give it
about as many parameters. Both train with AdamW for the same number of
epochs at batch 256, by default with the paper's schedule: a linear warm-up
over 500 steps to 1e-3, then cosine decay to 0 at the last step
(`--schedule constant` keeps 1e-3 throughout).

reach (`ObstacleReach`): 200 expert episodes (seeds 0…199), whose expert
goes left or right of the obstacle with probability ½; 100 evaluation
episodes of ≤ 80 steps (reset seeds 10,000…10,099). Reported: success
(goal reached without collision), collisions, the share of rollouts that
passed on each side, latency per chunk (median over the chunks of the
batched loop, all 100 histories at once, and per single history).

pusht (gym-pusht's `PushT-v0`; observations the paper's low-dimensional ones,
the agent's position and the T's 8 keypoints, or with `--pusht-pose` the
5-D state with the block's angle): `--pusht-demos` expert
episodes (`keras_score.policy.PushTExpert`, reset seeds 0…), 50 evaluation
episodes of ≤ 300 steps (reset seeds 100,000…100,049) for the policies and
for the expert itself; reported: the paper's score, the mean over
episodes of each one's maximum reward clip(coverage/0.95, 0, 1), and the
success rate (coverage > 0.95), and the policy's score as a fraction of
the expert's on the same starts.
"""

import argparse
import time

import keras
import numpy as np

from keras_score.networks import TemporalUNet
from keras_score.policy import (
    DiffusionPolicy,
    ObstacleReach,
    RegressionPolicy,
    collect_demonstrations,
    demonstration_windows,
    rollout,
)

N_OBS, HORIZON, N_ACTION = 2, 16, 8
BATCH_SIZE = 256


def learning_rate(episodes, args):
    """AdamW's learning rate: constant, or with `--schedule cosine` the paper's linear warm-up
    over `--warmup-steps` then cosine decay to 0 at the last step."""
    if args.schedule == "constant":
        return args.learning_rate
    windows = len(demonstration_windows(episodes, N_OBS, HORIZON, N_ACTION)[0])
    steps = args.epochs * -(-windows // BATCH_SIZE)
    warmup = min(args.warmup_steps, steps // 2)
    return keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, warmup_target=args.learning_rate, warmup_steps=warmup
    )


def train(policy, episodes, args):
    keras.utils.set_random_seed(args.seed)
    policy.compile(optimizer=keras.optimizers.AdamW(learning_rate(episodes, args)))
    start = time.perf_counter()
    policy.fit(episodes, batch_size=BATCH_SIZE, epochs=args.epochs, verbose=0)
    return time.perf_counter() - start


def policies(observation_dim, action_dim, episodes, args):
    """The trained diffusion policy and its size-matched MSE baseline, with their fit seconds."""
    network = TemporalUNet(down_dims=args.down_dims, embedding_dim=args.embedding_dim)
    diffusion = DiffusionPolicy(
        observation_dim, network, n_obs_steps=N_OBS, horizon=HORIZON, n_action_steps=N_ACTION, seed=args.seed
    )
    fit_diffusion = train(diffusion, episodes, args)
    if not args.baseline:
        return {"diffusion policy": (diffusion, fit_diffusion)}
    width = RegressionPolicy.hidden_units_for(
        trainable_params(diffusion), observation_dim, action_dim, n_obs_steps=N_OBS, horizon=HORIZON
    )
    baseline = RegressionPolicy(
        observation_dim, hidden_units=width, n_obs_steps=N_OBS, horizon=HORIZON, n_action_steps=N_ACTION
    )
    fit_baseline = train(baseline, episodes, args)
    return {"diffusion policy": (diffusion, fit_diffusion), "MSE regression": (baseline, fit_baseline)}


def trainable_params(policy):
    """The trained parameters (without the EMA copy or the normalisation statistics)."""
    return int(sum(np.prod(v.shape) for v in policy.trainable_variables))


def single_latency(policy, observation):
    """Median seconds of one chunk for one history (after a first, compiling call)."""
    history = np.repeat(np.asarray(observation, dtype="float32")[None, None], N_OBS, axis=1)
    times = []
    for i in range(6):
        policy.predict_chunk(history, seed=i)
        times.append(policy.last_latency)
    return float(np.median(times[1:]))


def reach(args):
    env = ObstacleReach()
    episodes = collect_demonstrations(env, env.expert(seed=args.seed), args.reach_demos, seed=0, max_steps=80)
    routes = [ObstacleReach.route(e["observations"]) for e in episodes]
    print(f"reach: {len(episodes)} demonstrations, left {routes.count('left') / len(routes):.2f}")
    print("| policy | params | fit s | success | collisions | left | right | ms/chunk (batch) | ms/chunk (one) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (policy, fit_seconds) in policies(2, 2, episodes, args).items():
        envs = [ObstacleReach() for _ in range(args.reach_rollouts)]
        results = rollout(policy, envs, max_steps=80, seed=10_000)
        routes = [ObstacleReach.route(results.trajectory(i)) for i in range(len(envs))]
        collisions = np.mean([not s and n < 80 for s, n in zip(results.successes, results.lengths)])
        print(
            f"| {name} | {trainable_params(policy):,} | {fit_seconds:.0f} | {results.success_rate:.2f} | "
            f"{collisions:.2f} | {routes.count('left') / len(envs):.2f} | {routes.count('right') / len(envs):.2f} | "
            f"{1000 * np.median(results.latencies[1:]):.1f} | {1000 * single_latency(policy, envs[0].start):.1f} |"
        )


def pusht(args):
    from keras_score.policy import PushTExpert, make_pusht_env

    observation_dim = 5 if args.pusht_pose else 18
    env = make_pusht_env(keypoints=not args.pusht_pose)
    start = time.perf_counter()
    episodes = collect_demonstrations(env, PushTExpert(seed=args.seed), args.pusht_demos, seed=0, max_steps=300)
    demo_seconds = time.perf_counter() - start
    print(
        f"pusht: {len(episodes)} demonstrations in {demo_seconds:.0f} s, "
        f"score {np.mean([e['max_reward'] for e in episodes]):.3f}, "
        f"success {np.mean([e['success'] for e in episodes]):.2f}, "
        f"{sum(len(e['actions']) for e in episodes)} steps"
    )
    evaluation = collect_demonstrations(env, PushTExpert(seed=args.seed + 1), args.pusht_rollouts, 100_000, 300)
    expert_score = np.mean([e["max_reward"] for e in evaluation])
    print("| policy | params | fit s | score (mean max reward) | success | fraction of the expert | ms/chunk |")
    print("|---|---|---|---|---|---|---|")
    print(f"| expert | | | {expert_score:.3f} | {np.mean([e['success'] for e in evaluation]):.2f} | 1.00 | |")
    for name, (policy, fit_seconds) in policies(observation_dim, 2, episodes, args).items():
        envs = [make_pusht_env(keypoints=not args.pusht_pose) for _ in range(args.pusht_rollouts)]
        results = rollout(policy, envs, max_steps=300, seed=100_000)
        print(
            f"| {name} | {trainable_params(policy):,} | {fit_seconds:.0f} | {results.score:.3f} | "
            f"{results.success_rate:.2f} | {results.score / expert_score:.2f} | "
            f"{1000 * np.median(results.latencies[1:]):.1f} |"
        )


def main():
    parser = argparse.ArgumentParser(description="Diffusion policy against MSE behaviour cloning.")
    parser.add_argument("--task", choices=["reach", "pusht", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke run")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--down-dims", default="64,128", help="the TemporalUNet's widths")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="cosine")
    parser.add_argument("--warmup-steps", type=int, default=500, help="with --schedule cosine")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="the diffusion policy only")
    parser.add_argument("--reach-demos", type=int, default=200)
    parser.add_argument("--reach-rollouts", type=int, default=100)
    parser.add_argument("--pusht-demos", type=int, default=200)
    parser.add_argument("--pusht-rollouts", type=int, default=50)
    parser.add_argument("--pusht-pose", action="store_true", help="observe the block's pose, not its keypoints")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.down_dims = tuple(int(d) for d in args.down_dims.split(","))
    if args.quick:
        args.epochs, args.down_dims, args.embedding_dim = 2, (8, 16), 8
        args.reach_demos, args.reach_rollouts, args.pusht_demos, args.pusht_rollouts = 20, 10, 2, 2
    print(f"backend {keras.backend.backend()}, {args}")
    if args.task in ("reach", "all"):
        reach(args)
    if args.task in ("pusht", "all"):
        pusht(args)


if __name__ == "__main__":
    main()
