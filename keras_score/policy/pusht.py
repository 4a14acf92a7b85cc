"""Scripted planning expert and demonstration collection for the Push-T task.

Push-T (Chi et al., 2023, "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion") asks a circular
agent to push a T-shaped block onto a fixed goal pose. The human demonstrations of the paper are a download, so this
module produces demonstrations offline with a planning expert that uses a private copy of the environment's
simulator to evaluate candidate pushes.

Reference:
    Chi, C., Feng, S., Du, Y., Xu, Z., Cousineau, E., Burchfiel, B. and Song, S. (2023). Diffusion Policy:
    Visuomotor Policy Learning via Action Diffusion. Robotics: Science and Systems.
"""

import math

import numpy as np

from keras_score import validation
from keras_score.policy.control import collect_demonstrations

_ARENA_LOW = 24.0  # Range of agent positions that keep clear of the walls.
_ARENA_HIGH = 488.0
_APPROACH_GAP = 6.0  # Distance, in pixels, between the agent and the T when a push starts.
_PUSH_OVERHEAD = 3.0  # Steps added to a candidate's duration when ranking pushes by progress per step.
_MIN_IMPROVEMENT = 0.03  # Smallest predicted relative decrease of the keypoint distance worth a push.


def _import_gym_pusht():
    try:
        import gym_pusht  # noqa: F401  (registers the environment)
        import gymnasium
    except ImportError as error:
        raise ImportError("Push-T needs gym-pusht and gymnasium: pip install gym-pusht") from error
    return gymnasium


def make_pusht_env(keypoints=False, **kwargs):
    """Creates the Push-T environment with state observations.

    The observation is ``(agent_x, agent_y, block_x, block_y, block_angle)``, or with `keypoints` the paper's
    low-dimensional one, ``(agent_x, agent_y)`` followed by the (x, y) of the T's 8 corner keypoints (18 numbers, no
    angle that wraps at 2π). The action is the target position of the agent in ``[0, 512]^2``. The reward is
    ``clip(coverage / 0.95, 0, 1)`` and an episode terminates when the coverage of the goal exceeds 0.95
    (Chi et al., 2023).

    Args:
        keypoints: Observe the agent's position and the T's keypoints instead of the block's pose.
        **kwargs: Extra keyword arguments for ``gymnasium.make`` (e.g. ``max_episode_steps``, ``render_mode``).

    Returns:
        The ``gymnasium`` environment ``gym_pusht/PushT-v0``.

    Raises:
        ImportError: If ``gym-pusht`` is not installed.

    Example:
        >>> env = make_pusht_env()
        >>> observation, info = env.reset(seed=0)
        >>> observation.shape
        (5,)
        >>> make_pusht_env(keypoints=True).reset(seed=0)[0].shape
        (18,)
    """
    gymnasium = _import_gym_pusht()
    if not validation.check_bool(keypoints, "keypoints"):
        return gymnasium.make("gym_pusht/PushT-v0", obs_type="state", **kwargs)
    env = gymnasium.make("gym_pusht/PushT-v0", obs_type="environment_state_agent_pos", **kwargs)
    space = gymnasium.spaces.Box(low=0.0, high=512.0, shape=(18,), dtype=np.float64)
    return gymnasium.wrappers.TransformObservation(
        env, lambda o: np.concatenate([o["agent_pos"], o["environment_state"]]), space
    )


def _get_sim_state(sim):
    """Returns the dynamic state of a Push-T simulator as a float64 array of 10 values."""
    agent, block = sim.agent, sim.block
    return np.array(
        [
            *agent.position,
            *agent.velocity,
            *block.position,
            block.angle,
            *block.velocity,
            block.angular_velocity,
        ],
        dtype=np.float64,
    )


def _set_sim_state(sim, state):
    """Restores a state from `_get_sim_state`, so that the same actions then give exactly the same future.

    Chipmunk keeps solver state that pymunk does not expose (the bias velocities of the last penetration correction,
    applied at the start of the next step, and the cached contact impulses). To make a restore a pure function of
    `state`, the bodies are first parked apart and stepped until that hidden state is cleared. The block's angle is
    set before its position because a pose names the body origin while Chipmunk rotates about the centre of gravity.
    """
    space, agent, block = sim.space, sim.agent, sim.block
    agent.position, agent.velocity = (-1000.0, -1000.0), (0.0, 0.0)
    block.position, block.velocity, block.angular_velocity = (2000.0, 2000.0), (0.0, 0.0), 0.0
    for _ in range(space.collision_persistence + 1):
        space.step(sim.dt)
    state = [float(value) for value in state]
    agent.position = (state[0], state[1])
    agent.velocity = (state[2], state[3])
    block.angle = state[6]
    block.position = (state[4], state[5])
    block.velocity = (state[7], state[8])
    block.angular_velocity = state[9]


def _simulate(sim, targets):
    """Steps a Push-T simulator through agent targets exactly as ``env.step`` does, without computing rewards.

    Args:
        sim: An unwrapped Push-T environment (``gym_pusht.envs.PushTEnv``).
        targets: Sequence of ``(x, y)`` agent targets, one per environment step.

    Returns:
        Float64 array ``(len(targets), 3)`` of block poses ``(x, y, angle)`` after each step.
    """
    agent, block, space = sim.agent, sim.block, sim.space
    k_p, k_v, dt = float(sim.k_p), float(sim.k_v), float(sim.dt)
    substeps = int(1 / (sim.dt * sim.control_hz))
    px, py = agent.position
    vx, vy = agent.velocity
    poses = np.empty((len(targets), 3))
    for index, (tx, ty) in enumerate(targets):
        tx, ty = float(tx), float(ty)
        for _ in range(substeps):
            vx = vx + (k_p * (tx - px) + k_v * (0.0 - vx)) * dt
            vy = vy + (k_p * (ty - py) + k_v * (0.0 - vy)) * dt
            agent.velocity = (vx, vy)
            space.step(dt)
            px = px + vx * dt
            py = py + vy * dt
        bx, by = block.position
        poses[index] = bx, by, block.angle
    return poses


def _rotation(angle):
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


class _Tee:
    """Geometry of the T block in its body frame: keypoints, boxes and candidate contacts."""

    def __init__(self, sim, agent_radius, contact_spacing, approach_gap):
        shapes = getattr(sim, "_block_shapes", None) or list(sim.block.shapes)
        vertices = [np.array([tuple(v) for v in shape.get_vertices()]) for shape in shapes]
        self.keypoints = np.concatenate(vertices, axis=0)
        self.boxes = np.array([[v.min(axis=0), v.max(axis=0)] for v in vertices])
        self.center = np.array(tuple(sim.block.center_of_gravity))
        self.agent_radius = agent_radius
        self.goal_keypoints = self.transform(sim.goal_pose, self.keypoints)
        radius = float(np.max(np.linalg.norm(self.keypoints - self.center, axis=1)))
        self.detour_radius = radius + agent_radius + 10.0
        points, normals = [], []
        for low, high in self.boxes:
            for axis in (0, 1):
                other = 1 - axis
                length = high[other] - low[other]
                count = max(2, int(round(length / contact_spacing)) + 1)
                along = np.linspace(low[other] + 2.0, high[other] - 2.0, count)
                for side, value in ((-1.0, low[axis]), (1.0, high[axis])):
                    for coordinate in along:
                        point, normal = np.zeros(2), np.zeros(2)
                        point[axis], point[other], normal[axis] = value, coordinate, side
                        start = point + normal * (agent_radius + approach_gap)
                        if self.distance(start[None])[0] >= agent_radius + approach_gap - 1e-6:
                            points.append(point)
                            normals.append(normal)
        self.contacts = np.array(points)
        self.normals = np.array(normals)

    @staticmethod
    def transform(pose, local_points):
        return local_points @ _rotation(pose[2]).T + np.asarray(pose[:2])

    def cost(self, pose):
        """Mean distance of the T's keypoints to the goal's keypoints."""
        return float(np.mean(np.linalg.norm(self.transform(pose, self.keypoints) - self.goal_keypoints, axis=1)))

    def distance(self, local_points):
        """Distance of body-frame points to the T (0 inside)."""
        points = np.asarray(local_points)[:, None]
        gaps = np.maximum(np.maximum(self.boxes[None, :, 0] - points, points - self.boxes[None, :, 1]), 0.0)
        return np.min(np.linalg.norm(gaps, axis=2), axis=1)

    def displacement(self, pose, other):
        """Mean distance between the keypoints of two poses."""
        difference = self.transform(pose, self.keypoints) - self.transform(other, self.keypoints)
        return float(np.mean(np.linalg.norm(difference, axis=1)))

    def world_distance(self, pose, points):
        local = (np.asarray(points) - np.asarray(pose[:2])) @ _rotation(pose[2])
        return self.distance(local)


def _push_line(start, direction, speed, first, count):
    """Agent targets ``first, ..., first + count - 1`` steps along a straight push, clipped to the action range."""
    steps = np.arange(first, first + count)[:, None] * speed
    return list(np.clip(start + direction * steps, 0.0, 512.0))


def _polyline_length(points):
    points = np.asarray(points)
    return float(np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1))) if len(points) > 1 else 0.0


def _resample(points, start, speed):
    """Targets that advance from `start` along a polyline by at most `speed` per step."""
    targets, position = [], np.asarray(start, dtype=np.float64)
    for point in np.asarray(points, dtype=np.float64):
        segment = point - position
        length = float(np.linalg.norm(segment))
        steps = int(math.ceil(length / speed)) if length > 1e-9 else 0
        for index in range(1, steps + 1):
            targets.append(position + segment * index / steps)
        position = point
    return targets


class PushTExpert:
    """Push-primitive planning expert for Push-T.

    At each decision the expert enumerates candidate pushes: a contact point on the T's outline (every
    ``contact_spacing`` pixels) and a straight push along the inward face normal, at a speed that shrinks as the
    block nears the goal. Every candidate is rolled out from the current block pose in a private copy of the
    simulator (the environment itself is never stepped by the planner) and predicts the lowest mean distance of the
    T's eight keypoints to the goal's keypoints that the push reaches; this distance combines position and angle
    errors. The expert picks the candidate with the largest predicted decrease per step spent (travel at
    ``transit_speed`` plus the push itself). The agent travels to the chosen contact on a collision-free path
    (straight if clear, otherwise around a circle enclosing the block), approaches along the face normal and
    pushes. While pushing, it re-simulates the rest of the push from the true state every step and stops as soon as
    continuing no longer lowers the keypoint distance, then holds still for ``settle_steps`` steps. Pushes that fall
    short of their prediction are not retried until progress resumes, and after ``patience`` steps without progress
    the expert tries a random push among the five best predictions. Actions are agent targets that move at most
    ``transit_speed`` (or the push speed) pixels per step, so action sequences are piecewise linear.

    Reference:
        Chi et al. (2023), "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion", Push-T task.

    Args:
        seed: Seed of the generator used to break ties and to escape plateaus; reseeded per episode by `reset`.
        contact_spacing: Spacing, in pixels, of the candidate contact points along the T's faces.
        transit_speed: Largest motion of the target per step, in pixels, while travelling between pushes.
        max_push_speed: Push speed, in pixels per step, far from the goal.
        min_push_speed: Push speed close to the goal.
        max_push_steps: Number of push steps each candidate is simulated for.
        settle_steps: Steps the target is held still after each push.
        patience: Steps without progress after which a random good push is tried.

    Example:
        >>> env = make_pusht_env()
        >>> expert = PushTExpert(seed=0)
        >>> observation, info = env.reset(seed=0)
        >>> expert.reset(env, seed=0)
        >>> action = expert.act(env)
        >>> action.shape
        (2,)
    """

    def __init__(
        self,
        seed=0,
        contact_spacing=8.0,
        transit_speed=20.0,
        max_push_speed=8.0,
        min_push_speed=1.5,
        max_push_steps=10,
        settle_steps=2,
        patience=40,
    ):
        self.seed = validation.check_int(seed, "seed", minimum=0, maximum=validation.SEED_MAX)
        for name, value in (
            ("contact_spacing", contact_spacing),
            ("transit_speed", transit_speed),
            ("max_push_speed", max_push_speed),
            ("min_push_speed", min_push_speed),
        ):
            validation.check_positive_float(value, name)
        if min_push_speed > max_push_speed:
            raise ValueError(
                "`min_push_speed` must not exceed `max_push_speed`; received "
                f"min_push_speed={min_push_speed!r}, max_push_speed={max_push_speed!r}."
            )
        validation.check_int(max_push_steps, "max_push_steps", minimum=1)
        validation.check_int(settle_steps, "settle_steps", minimum=0)
        validation.check_int(patience, "patience", minimum=1)
        self.contact_spacing = float(contact_spacing)
        self.transit_speed = float(transit_speed)
        self.max_push_speed = float(max_push_speed)
        self.min_push_speed = float(min_push_speed)
        self.max_push_steps = int(max_push_steps)
        self.settle_steps = int(settle_steps)
        self.patience = int(patience)
        self._sim = None
        self._resets = 0

    def reset(self, env, seed=None):
        """Prepares the expert for a new episode of `env` (call after ``env.reset``).

        Args:
            env: The Push-T environment (wrapped or not).
            seed: Optional per-episode seed; by default the expert's seed combined with the number of resets.
        """
        unwrapped = env.unwrapped
        self._sim = type(unwrapped)(obs_type="state", block_cog=unwrapped.block_cog, damping=unwrapped.damping)
        self._sim._setup()
        radius = float(next(iter(unwrapped.agent.shapes)).radius)
        self._tee = _Tee(self._sim, radius, self.contact_spacing, _APPROACH_GAP)
        episode_seed = [self.seed, self._resets] if seed is None else [self.seed, int(seed)]
        self._rng = np.random.default_rng(episode_seed)
        self._resets += 1
        self._plan = None
        self._target = np.array(tuple(unwrapped.agent.position), dtype=np.float64)
        self._last_normal = None
        self._steps = self._progress_step = 0
        self._best_cost = math.inf
        self._tabu = set()

    def act(self, env):
        """Returns the next action (agent target, float32 array of shape ``(2,)`` in ``[0, 512]``).

        Args:
            env: The Push-T environment passed to `reset`. Its state is read, never modified.

        Returns:
            The action for ``env.step``.

        Raises:
            ValueError: If `reset` was not called first.
        """
        if self._sim is None:
            raise ValueError("`PushTExpert.reset(env)` must be called before `act(env)`.")
        state = _get_sim_state(env.unwrapped)
        pose = state[4:7]
        self._steps += 1
        cost = self._tee.cost(pose)
        if cost < self._best_cost - 0.05:
            self._best_cost, self._progress_step = cost, self._steps
        plan = self._plan
        if plan is not None and plan["phase"] == "transit" and self._tee.displacement(pose, plan["pose"]) > 1.0:
            plan = None
        if plan is not None and plan["phase"] == "push" and not self._keep_pushing(state, plan):
            plan["phase"] = "settle"
        if plan is not None and plan["phase"] == "settle":
            plan["held"] += 1
            if plan["held"] > self.settle_steps:
                self._last_normal = plan["normal"]
                if plan["cost"] - cost < 0.5 * (plan["cost"] - plan["predicted"]):
                    self._tabu.add(plan["index"])
                else:
                    self._tabu.clear()
                plan = None
        if plan is None:
            plan = self._choose_push(state, explore=self._steps - self._progress_step > self.patience)
        self._plan = plan
        if plan["phase"] == "settle":
            target = self._target
        elif plan["phase"] == "transit":
            target = plan["transit"].pop(0)
            if not plan["transit"]:
                plan["phase"] = "push"
        else:
            plan["pushed"] += 1
            target = _push_line(plan["start"], plan["direction"], plan["speed"], plan["pushed"], 1)[0]
        self._target = np.clip(np.asarray(target, dtype=np.float64), 0.0, 512.0)
        return self._target.astype(np.float32)

    def _keep_pushing(self, state, plan):
        """Whether continuing the push, as simulated from the true state, lowers the keypoint distance."""
        if plan["pushed"] >= 4 * self.max_push_steps:
            return False
        if not plan["touched"]:
            plan["touched"] = self._tee.world_distance(state[4:7], state[None, :2])[0] < self._tee.agent_radius + 1.0
            if not plan["touched"]:
                return plan["pushed"] < self.max_push_steps + _APPROACH_GAP / plan["speed"]
        _set_sim_state(self._sim, state)
        stop_cost = self._tee.cost(_simulate(self._sim, [self._target] * (self.settle_steps + 1))[-1])
        targets = _push_line(plan["start"], plan["direction"], plan["speed"], plan["pushed"] + 1, self.max_push_steps)
        _set_sim_state(self._sim, state)
        poses = _simulate(self._sim, targets + targets[-1:] * self.settle_steps)
        return min(self._tee.cost(p) for p in poses[self.settle_steps:]) < stop_cost - 0.01

    def _push_speed(self, cost):
        return float(np.clip(0.25 * cost, self.min_push_speed, self.max_push_speed))

    def _choose_push(self, state, explore):
        """Plans the next push: the best simulated candidate, or a random good one when progress has stalled."""
        tee, sim = self._tee, self._sim
        pose = state[4:7]
        cost = tee.cost(pose)
        speed = self._push_speed(cost)
        starts = tee.transform(pose, tee.contacts + tee.normals * (tee.agent_radius + _APPROACH_GAP))
        directions = -tee.normals @ _rotation(pose[2]).T
        inside = np.flatnonzero(np.all((starts >= _ARENA_LOW) & (starts <= _ARENA_HIGH), axis=1))
        rest = np.zeros_like(state)
        rest[4:7] = pose
        predicted = np.empty(len(inside))
        durations = np.empty(len(inside))
        for position, index in enumerate(inside):
            targets = _push_line(starts[index], directions[index], speed, 1, self.max_push_steps)
            rest[0:2] = starts[index]
            _set_sim_state(sim, rest)
            costs = [tee.cost(p) for p in _simulate(sim, targets + targets[-1:] * self.settle_steps)]
            durations[position] = int(np.argmin(costs)) + 1
            predicted[position] = min(costs)
        improving = (predicted < cost - max(0.1, _MIN_IMPROVEMENT * cost)) & ~np.isin(inside, list(self._tabu))
        if explore or not np.any(improving):
            order = np.argsort(predicted)[:5]
            chosen = order[self._rng.integers(len(order))]
            self._best_cost, self._progress_step = cost, self._steps
            path = self._path(pose, state[:2], inside[chosen], starts[inside[chosen]])
        else:
            best = None
            for position in np.flatnonzero(improving):
                index = inside[position]
                path = self._path(pose, state[:2], index, starts[index])
                travel = _polyline_length([state[:2]] + path + [starts[index]])
                duration = travel / self.transit_speed + durations[position] + _PUSH_OVERHEAD
                rate = (cost - predicted[position]) / duration + 1e-6 * self._rng.random()
                if best is None or rate > best[0]:
                    best = (rate, position, path)
            _, chosen, path = best
        choice = inside[chosen]
        start = starts[choice]
        transit = _resample(path, self._target, self.transit_speed)
        transit += _resample([start], path[-1], max(2.0 * speed, 4.0))
        return {
            "phase": "transit" if transit else "push",
            "pose": pose.copy(),
            "normal": tee.normals[choice],
            "transit": transit,
            "start": start,
            "direction": directions[choice],
            "speed": speed,
            "pushed": 0,
            "held": 0,
            "touched": False,
            "index": int(choice),
            "cost": cost,
            "predicted": float(predicted[chosen]),
        }

    def _clear(self, pose, a, b, margin):
        count = max(2, int(np.linalg.norm(b - a) / 4.0) + 1)
        points = a + (b - a) * np.linspace(0.0, 1.0, count)[:, None]
        return bool(np.all(self._tee.world_distance(pose, points) >= self._tee.agent_radius + margin))

    def _path(self, pose, agent, index, start):
        """Waypoints from the agent to a point on the approach line of the pre-contact point `start`."""
        tee = self._tee
        rotation = _rotation(pose[2])
        normal = rotation @ tee.normals[index]
        waypoints = []
        position = np.asarray(agent, dtype=np.float64)
        if tee.world_distance(pose, position[None])[0] < tee.agent_radius + 4.0:
            if self._last_normal is not None:
                away = rotation @ self._last_normal
            else:
                away = position - tee.transform(pose, tee.center[None])[0]
            position = position + away / max(np.linalg.norm(away), 1e-9) * 10.0
            waypoints.append(position)
        near = start + normal * 12.0
        if self._clear(pose, position, near, 6.0):
            return waypoints + [near]
        center = tee.transform(pose, tee.center[None])[0]
        radius = tee.detour_radius
        offset = start - center
        along = float(offset @ normal)
        reach = -along + math.sqrt(max(along**2 - offset @ offset + radius**2, 0.0))
        approach = start + normal * max(reach, 12.0)
        first = math.atan2(*(position - center)[::-1])
        last = math.atan2(*(approach - center)[::-1])
        turn = (last - first + math.pi) % (2 * math.pi) - math.pi
        options = []
        for sweep in (turn, turn - math.copysign(2 * math.pi, turn)):
            count = max(1, int(abs(sweep) / (math.pi / 9)))
            angles = first + sweep * np.arange(0, count + 1) / count
            arc = center + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            outside = np.sum(np.clip(_ARENA_LOW - arc, 0, None) + np.clip(arc - _ARENA_HIGH, 0, None))
            options.append((outside, abs(sweep), arc))
        arc = min(options, key=lambda option: option[:2])[2]
        return waypoints + list(np.clip(arc, _ARENA_LOW, _ARENA_HIGH)) + [approach]


def collect_pusht_demonstrations(num_episodes, seed=0, max_steps=300, expert=None):
    """Push-T demonstrations of a planning expert: `collect_demonstrations` in `make_pusht_env()`.

    Episode ``i`` starts from ``env.reset(seed=seed + i)`` and ends when the block covers more than 95% of the goal
    (the environment terminates) or after `max_steps` steps.

    Args:
        num_episodes: Number of episodes, a positive integer.
        seed: Seed of the first episode's reset.
        max_steps: Largest number of steps per episode, a positive integer.
        expert: Object with ``reset(env)`` and ``act(env)``; by default ``PushTExpert(seed=seed)``.

    Returns:
        A list of dicts, one per episode, with ``"observations"`` (float32 ``(T, 5)``, the observation before each
        action), ``"actions"`` (float32 ``(T, 2)``), ``"max_reward"`` (float, the largest reward of the episode) and
        ``"success"`` (bool, whether the coverage exceeded 0.95).

    Raises:
        ValueError: If `num_episodes` or `max_steps` is not a positive integer, or `seed` is not a valid seed.
        ImportError: If ``gym-pusht`` is not installed.

    Example:
        >>> episodes = collect_pusht_demonstrations(2, seed=0, max_steps=20)
        >>> episodes[0]["observations"].shape[1], episodes[0]["actions"].shape[1]
        (5, 2)
    """
    seed = validation.check_seed(seed)
    expert = PushTExpert(seed=seed) if expert is None else expert
    env = make_pusht_env(max_episode_steps=validation.check_int(max_steps, "max_steps", minimum=1))
    try:
        return collect_demonstrations(env, expert, num_episodes, seed=seed, max_steps=max_steps)
    finally:
        env.close()
