"""TemporalUNet (Diffusion Policy's ConditionalUnet1D): shapes, FiLM conditioning, errors, serialization, a tiny policy."""

import keras
import numpy as np
import pytest
from conftest import to_numpy
from keras import ops

from keras_score import ScoreModel
from keras_score.networks import ConditionalResidualBlock1D, TemporalUNet


def tiny(**kwargs):
    return TemporalUNet(down_dims=(8, 16), kernel_size=3, groups=4, embedding_dim=8, **kwargs)


@pytest.mark.parametrize("down_dims,horizon", [((8,), 5), ((8, 16), 8), ((8, 16, 16), 16)])
def test_output_has_the_input_shape_for_any_levels(down_dims, horizon):
    net = TemporalUNet(down_dims=down_dims, groups=4, embedding_dim=8)
    x = ops.zeros((3, horizon, 2))
    assert net((x, ops.zeros((3,)))).shape == (3, horizon, 2)
    assert net.compute_output_shape(((3, horizon, 2), (3,))) == (3, horizon, 2)


def test_film_makes_the_output_depend_on_noise_and_condition():
    net = tiny()
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.normal(size=(4, 8, 2)).astype("float32"))
    condition = ops.convert_to_tensor(rng.normal(size=(4, 6)).astype("float32"))
    base = to_numpy(net((x, ops.zeros((4,)), condition)))
    assert np.abs(base - to_numpy(net((x, ops.ones((4,)), condition)))).max() > 1e-4
    assert np.abs(base - to_numpy(net((x, ops.zeros((4,)), 2 * condition)))).max() > 1e-4
    block = ConditionalResidualBlock1D(8, kernel_size=3, groups=4)
    h = block((x, condition))
    assert h.shape == (4, 8, 8)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: tiny()((ops.zeros((2, 7, 2)), ops.zeros((2,)))), "divisible by 2"),
        (lambda: tiny()((ops.zeros((2, 8)), ops.zeros((2,)))), "batch, horizon, action_dim"),
        (lambda: TemporalUNet(down_dims=(12, 16), groups=8), "`groups`"),
        (lambda: TemporalUNet(down_dims=()), "`down_dims`"),
        (lambda: TemporalUNet(down_dims=5), "`down_dims`"),
    ],
)
def test_bad_arguments_get_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_policy_trains_samples_action_chunks_and_round_trips(tmp_path):
    """A ScoreModel over 8-step 2-D action chunks conditioned on a 2-step history of 3-D observations."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    history = rng.normal(size=(64, 2, 3)).astype("float32")
    actions = np.repeat(history[:, -1:, :2], 8, axis=1) + 0.05 * rng.normal(size=(64, 8, 2)).astype("float32")
    model = ScoreModel(tiny(), conditions={"history": (2, 3)}, parameterization="epsilon", schedule="vp", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(actions, {"history": history}, batch_size=32, epochs=2, verbose=0)
    chunk = model.generate(4, sampler="ddim", steps=4, seed=0, condition={"history": history[:4]})
    assert chunk.shape == (4, 8, 2) and np.all(np.isfinite(chunk))
    model.save(tmp_path / "policy.keras")
    loaded = keras.saving.load_model(tmp_path / "policy.keras")
    again = loaded.generate(4, sampler="ddim", steps=4, seed=0, condition={"history": history[:4]})
    np.testing.assert_allclose(again, chunk, atol=1e-5)
    assert TemporalUNet.from_config(model.network.get_config()).get_config() == model.network.get_config()
