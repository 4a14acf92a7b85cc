"""Checking arguments, in one place and with one wording for the whole library.

Every public constructor and function checks its arguments with these
helpers, so the same mistake gets the same message everywhere: the argument
is named, the expectation stated, the received value shown. Booleans are
never accepted as numbers (`True` is an `int` in Python, never a step count
or a churn), and no NaN or Inf passes a number check.
"""

import numbers

import numpy as np

SEED_MAX = 2**31 - 1


def _received(name, value):
    return f"received {name}={value!r}."


def check_int(value, name, minimum=None, maximum=None):
    """An integer in [minimum, maximum] (bounds optional); returns it as `int`.

    Args:
        value: the argument.
        name: its name, for the message.
        minimum, maximum: inclusive bounds, or None.

    Returns:
        `int(value)`.

    Example:
    >>> check_int(8, "steps", minimum=1)
    8
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        raise ValueError(f"`{name}` must be {_describe('an integer', minimum, maximum)}; {_received(name, value)}")
    return int(value)


def check_float(value, name, minimum=None, maximum=None, exclusive_minimum=False, exclusive_maximum=False):
    """A finite real number within the given bounds; returns it as `float`.

    Args:
        value: the argument.
        name: its name, for the message.
        minimum, maximum: bounds, or None.
        exclusive_minimum, exclusive_maximum: whether the bound itself is excluded.

    Returns:
        `float(value)`.

    Example:
    >>> check_float(0.5, "eta", minimum=0.0, maximum=1.0)
    0.5
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and np.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if exclusive_maximum else value <= maximum
    if not ok:
        kind = _describe("a finite number", minimum, maximum, exclusive_minimum, exclusive_maximum)
        raise ValueError(f"`{name}` must be {kind}; {_received(name, value)}")
    return float(value)


def check_positive_float(value, name):
    """A finite number > 0; returns it as `float`."""
    return check_float(value, name, minimum=0.0, exclusive_minimum=True)


def check_bool(value, name):
    """A boolean; returns it as `bool`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False; {_received(name, value)}")
    return bool(value)


def check_choice(value, name, options):
    """One of `options`; returns it."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {list(options)}; {_received(name, value)}")
    return value


def check_episode_list(episodes, keys, layout):
    """A non-empty list of dicts that each hold `keys` (recorded episodes); returns it as a list.

    Args:
        episodes: the argument.
        keys: the entries every episode must have.
        layout: the expected form, for the message, e.g. "{'frames': (T + 1, H, W, C), 'actions': (T,)}".
    """
    if isinstance(episodes, dict) or not hasattr(episodes, "__len__") or len(episodes) == 0:
        raise ValueError(f"`episodes` must be a non-empty list of dicts {layout}; received {type(episodes).__name__}.")
    for i, episode in enumerate(episodes):
        if not isinstance(episode, dict) or any(key not in episode for key in keys):
            raise ValueError(f"`episodes[{i}]` must be a dict with {' and '.join(repr(k) for k in keys)}.")
    return list(episodes)


def random_seed():
    """A fresh seed in [0, 2³¹ − 1] from the operating system's entropy (for a call given seed=None)."""
    return int(np.random.SeedSequence().entropy % (SEED_MAX + 1))


def check_seed(seed, name="seed"):
    """A seed: None or an integer in [0, 2³¹ − 1] (the range every backend's generator takes)."""
    if seed is None:
        return None
    return check_int(seed, name, minimum=0, maximum=SEED_MAX)


def _describe(kind, minimum, maximum, exclusive_minimum=False, exclusive_maximum=False):
    low = None if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum}"
    high = None if maximum is None else f"{'<' if exclusive_maximum else '<='} {maximum}"
    bounds = " and ".join(b for b in (low, high) if b)
    return f"{kind} {bounds}" if bounds else kind
