"""Every registered sampler runs on a trained ScoreModel through `generate`."""

import keras
import numpy as np
import pytest

import keras_score
from keras_score.datasets import GaussianMixture
from keras_score.networks import MLP


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = keras_score.ScoreModel(MLP(hidden_units=16, num_blocks=1), schedule="ve", seed=0)
    model.compile(optimizer="adam")
    model.fit(GaussianMixture.ring().sample(512, seed=0), batch_size=128, epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("name", sorted(keras_score.samplers.SAMPLERS))
def test_sampler_runs_through_generate(model, name):
    first = model.generate(6, sampler=name, steps=3, seed=0)
    assert first.shape == (6, 2) and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, model.generate(6, sampler=name, steps=3, seed=0))


def test_generate_reports_function_evaluations_and_progress(model, capsys):
    grid = keras_score.samplers.time_grid(model.schedule, 5, "karras")
    lands = keras_score.samplers.time_grids.lands_on_data(model.schedule, grid)
    model.generate(6, sampler="heun", steps=5, seed=0, batch_size=4, verbose=1)
    assert model.last_num_function_evals == keras_score.samplers.Heun().num_function_evals(5, lands)
    output = capsys.readouterr().out
    assert "6/6" in output and "nfe" in output
    model.generate(6, sampler="heun", steps=5, seed=0)  # verbose="auto": no bar when not on a terminal
    assert capsys.readouterr().out == ""
    model.generate(6, sampler="rk45", steps=3, seed=0)
    assert model.last_num_function_evals > 6  # adaptive: counted during the run
