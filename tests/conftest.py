"""Shared test helpers. The suite runs once per backend: KERAS_BACKEND picks it."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_score
from keras_score import schedules

ALL_SCHEDULES = [
    schedules.VESchedule(),
    schedules.VPSchedule(),
    schedules.SubVPSchedule(),
    schedules.CosineSchedule(),
    schedules.EDMSchedule(),
]


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def schedule_id(schedule):
    return type(schedule).__name__


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


class ExactDenoiser:
    """A mixture's exact denoiser (its score shifted by `shift`) with the interface objectives use."""

    def __init__(self, mixture, schedule, shift=None):
        self.mixture = mixture
        self.schedule = schedule
        self.parameterization = keras_score.parameterization.get("edm")
        self.shift = shift

    def score(self, x, t, condition=None, training=False):
        score = self.mixture.score(x, t, self.schedule)
        return score if self.shift is None else score + self.shift

    def __call__(self, x, t, condition=None, training=False):
        alpha, sigma = self._alpha_sigma(t)
        return (x + sigma**2 * self.score(x, t)) / alpha

    def network_output(self, x, t, condition=None, training=False):
        alpha, sigma = self._alpha_sigma(t)
        c_skip, c_out = self.parameterization.coefficients(alpha, sigma)
        return (self(x, t) - c_skip * x) / c_out

    def _alpha_sigma(self, t):
        return ops.expand_dims(self.schedule.alpha(t), -1), ops.expand_dims(self.schedule.sigma(t), -1)
