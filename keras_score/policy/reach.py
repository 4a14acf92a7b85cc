"""`ObstacleReach`: a 2-D reach around an obstacle whose expert goes left or right with probability ½."""

import numpy as np

from keras_score import validation

LEFT, RIGHT = "left", "right"


class ObstacleReach:
    """A point agent reaches the goal above a disc-shaped obstacle; a collision ends the episode as a failure.

    The agent starts near (0, −1.2), the goal is (0, 1.2) and the obstacle a
    disc of radius 0.5 at the origin, so every successful path goes around
    it on the left or on the right. An action is the agent's target
    position; the agent moves toward it by at most `max_step` per step.
    The observation is the agent's position. The episode ends with success
    within `goal_radius` of the goal (reward 1) or with failure when the
    agent's path touches the obstacle (reward 0). The interface is
    gymnasium's (`reset(seed=...)`, `step(action)` returning (observation,
    reward, terminated, truncated, info) with info["is_success"]), in plain
    numpy.

    The expert (`expert(seed)`) picks a route at random at each reset, left
    or right with probability ½, and follows it at full speed: from the
    same first observation the demonstrations go both ways, so a
    regression policy, which predicts their mean, drives straight into the
    obstacle.

    Args:
        max_step: the largest move per step.
        goal_radius: distance to the goal that counts as reached.
        start_noise: half-width of the uniform start box around (0, −1.2).

    Example:
    >>> env = ObstacleReach()
    >>> observation, info = env.reset(seed=0)
    >>> observation.shape
    (2,)

    Reference: Chi et al., "Diffusion Policy", RSS 2023, Fig. 3 (multimodal
    action distributions; the regression policy's averaged mode).
    """

    observation_dim = 2
    action_dim = 2
    goal = np.array([0.0, 1.2])
    start = np.array([0.0, -1.2])
    obstacle_radius = 0.5

    def __init__(self, max_step=0.1, goal_radius=0.1, start_noise=0.1):
        self.max_step = validation.check_positive_float(max_step, "max_step")
        self.goal_radius = validation.check_positive_float(goal_radius, "goal_radius")
        self.start_noise = validation.check_float(start_noise, "start_noise", minimum=0.0, maximum=0.3)
        self.position = None
        self.rng = np.random.default_rng()

    def reset(self, seed=None, options=None):
        """Starts an episode; returns (observation, info)."""
        if seed is not None:
            self.rng = np.random.default_rng(validation.check_seed(seed))
        self.position = self.start + self.rng.uniform(-self.start_noise, self.start_noise, size=2)
        return self.position.astype("float32"), {"is_success": False, "collision": False}

    def step(self, action):
        """Moves toward the target position `action` by at most `max_step`; returns the gymnasium 5-tuple."""
        if self.position is None:
            raise ValueError("Call `reset` before `step`.")
        target = np.asarray(action, dtype="float64").reshape(-1)
        if target.shape != (2,) or not np.all(np.isfinite(target)):
            raise ValueError(f"`action` must be a finite 2-D target position; received {action!r}.")
        move = target - self.position
        length = np.linalg.norm(move)
        if length > self.max_step:
            move *= self.max_step / length
        start, self.position = self.position, self.position + move
        collision = _segment_distance(start, self.position) < self.obstacle_radius
        success = not collision and np.linalg.norm(self.position - self.goal) < self.goal_radius
        info = {"is_success": bool(success), "collision": bool(collision)}
        return self.position.astype("float32"), float(success), bool(success or collision), False, info

    def expert(self, seed=None):
        """The demonstrator: `RouteExpert` around this obstacle, left or right with probability ½."""
        return RouteExpert(seed)

    @staticmethod
    def route(positions):
        """The side on which a path passed the obstacle: "left", "right", or None if it never came level with it.

        Args:
            positions: the agent's positions along one episode, shape (T, 2).
        """
        positions = np.asarray(positions)
        level = np.abs(positions[:, 1]) < 0.25
        if not np.any(level):
            return None
        return LEFT if np.mean(positions[level, 0]) < 0 else RIGHT


class RouteExpert:
    """Goes around the obstacle by one side, drawn at each `reset`: waypoints (±w, −0.3), (±w, 0.3), then the goal.

    The lateral distance w is drawn uniformly in [0.7, 0.9] per episode, so
    the demonstrations cover a band of paths on each side.

    Args:
        seed: seed of the expert's choices (None: fresh).
    """

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(validation.check_seed(seed))
        self.waypoints = []

    def reset(self, env):
        side = -1.0 if self.rng.random() < 0.5 else 1.0
        width = side * self.rng.uniform(0.7, 0.9)
        self.waypoints = [np.array([width, -0.3]), np.array([width, 0.3]), env.goal.copy()]

    def act(self, env):
        while len(self.waypoints) > 1 and np.linalg.norm(self.waypoints[0] - env.position) < env.max_step:
            self.waypoints.pop(0)
        move = self.waypoints[0] - env.position
        length = np.linalg.norm(move)
        return (env.position + move * min(1.0, env.max_step / max(length, 1e-12))).astype("float32")


def _segment_distance(a, b):
    """The distance from the origin (the obstacle's centre) to the segment from a to b."""
    d = b - a
    u = np.clip(-np.dot(a, d) / max(np.dot(d, d), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(a + u * d))
