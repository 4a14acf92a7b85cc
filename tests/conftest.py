"""Shared test helpers. The suite runs once per backend: KERAS_BACKEND picks it."""

import keras
import numpy as np
import pytest

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
