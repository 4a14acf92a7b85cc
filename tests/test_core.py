"""The opened-up core: the Denoiser layer, structured conditions, compile-once generate, and failures that leave a model intact."""

import keras
import numpy as np
import pytest
from conftest import to_numpy
from keras import ops

import keras_score
from keras_score.datasets import GaussianMixture
from keras_score.guidance import Inpainting
from keras_score.networks import MLP

MIXTURE = GaussianMixture.ring(num_components=4, radius=3.0, std=0.5)
BACKEND = keras.backend.backend()


def tiny(**kwargs):
    return keras_score.ScoreModel(MLP(hidden_units=16, num_blocks=1), seed=0, **kwargs)


@pytest.fixture(scope="module")
def data():
    return MIXTURE.sample(512, seed=0, return_labels=True)


def weights(model):
    return [to_numpy(v).copy() for v in model.variables]


def test_denoiser_is_the_models_d_and_round_trips(tmp_path):
    model = tiny(schedule="vp", parameterization="v", num_classes=3)
    model.build((None, 2))
    x = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((5, 2)).astype("float32"))
    labels = np.array([0, 1, 2, 0, 1], "int32")
    np.testing.assert_array_equal(to_numpy(model.denoiser(x, 0.3)), to_numpy(model.denoise(x, 0.3)))
    conditional = model.denoiser(x, 0.3, {"labels": ops.convert_to_tensor(labels)})
    np.testing.assert_array_equal(to_numpy(conditional), to_numpy(model.denoise(x, 0.3, labels=labels)))
    # The score is (α·D − x)/σ² of the same D.
    alpha, sigma = to_numpy(model.schedule.alpha(0.3)), to_numpy(model.schedule.sigma(0.3))
    np.testing.assert_allclose(
        to_numpy(model.denoiser.score(x, 0.3)), (alpha * to_numpy(model.denoise(x, 0.3)) - to_numpy(x)) / sigma**2,
        rtol=1e-5, atol=1e-5,
    )
    # An EMA-style copy: from_config + set_weights gives the same function.
    copy = keras_score.Denoiser.from_config(model.denoiser.get_config())
    copy.build((None, 2))
    copy.set_weights(model.denoiser.get_weights())
    np.testing.assert_allclose(to_numpy(copy(x, 0.3)), to_numpy(model.denoiser(x, 0.3)), rtol=1e-6)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded.denoise(x, 0.3, labels=labels)), to_numpy(conditional), rtol=1e-6)


def test_the_null_condition_is_learned_and_replaces_dropped_examples():
    model = tiny(num_classes=3)
    model.build((None, 2))
    x = ops.zeros((4, 2))
    condition = {"labels": ops.convert_to_tensor(np.array([0, 1, 2, 0], "int32"))}
    dropped = dict(condition, drop=ops.convert_to_tensor(np.array([True, False, True, False])))
    d_null = to_numpy(model.denoiser(x, 1.0))
    d_cond = to_numpy(model.denoiser(x, 1.0, condition))
    d_mixed = to_numpy(model.denoiser(x, 1.0, dropped))
    np.testing.assert_allclose(d_mixed[[0, 2]], d_null[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(d_mixed[[1, 3]], d_cond[[1, 3]], rtol=1e-6)
    assert any("null_embedding" in v.path for v in model.trainable_variables)


class HistoryEncoder(keras.layers.Layer):
    """A user's encoder of an observation history (batch, T, d): a GRU summary."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gru = keras.layers.GRU(units)

    def call(self, condition):
        return self.gru(condition["history"])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_a_sequence_condition_with_a_user_encoder_trains_and_guides(tmp_path):
    # x depends on the last observation of a history (T=3, d=2): x ≈ 2·h[-1].
    rng = np.random.default_rng(0)
    history = rng.standard_normal((512, 3, 2)).astype("float32")
    x = (2.0 * history[:, -1] + 0.1 * rng.standard_normal((512, 2))).astype("float32")
    model = tiny(conditions={"history": (3, 2)}, condition_encoder=HistoryEncoder(), p_uncond=0.2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history_loss = model.fit({"x": x, "history": history}, batch_size=128, epochs=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(history_loss))
    samples = model.generate(16, condition={"history": history[:16]}, guidance_scale=1.5, steps=6, seed=0)
    assert samples.shape == (16, 2) and np.all(np.isfinite(samples))
    with pytest.raises(ValueError, match="history"):
        model.generate(4, condition={"history": np.zeros((4, 2, 2))})
    with pytest.raises(ValueError, match="Unknown condition"):
        model.generate(4, condition={"history": history[:4], "other": np.zeros((4, 1))})
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects={"HistoryEncoder": HistoryEncoder})
    again = loaded.generate(16, condition={"history": history[:16]}, guidance_scale=1.5, steps=6, seed=0)
    np.testing.assert_allclose(again, samples, rtol=1e-4, atol=1e-4)


class Counting(keras.layers.Layer):
    """An MLP that counts how often its Python `call` runs: once per trace on JAX and TensorFlow."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mlp = MLP(hidden_units=16, num_blocks=1)
        self.calls = 0

    def call(self, inputs):
        self.calls += 1
        return self.mlp(inputs)


def test_generate_compiles_once_for_new_scales_labels_seeds_and_masks(data):
    x, labels = data
    network = Counting()
    model = keras_score.ScoreModel(network, num_classes=4, seed=0)
    model.compile(optimizer="adam")
    model.fit(x, labels, batch_size=128, epochs=1, verbose=0)
    rng = np.random.default_rng(0)
    runs = []
    for i, scale in enumerate((0.0, 1.0, 2.5, 4.0)):
        values = np.where(rng.random((8, 2)) < 0.5, rng.standard_normal((8, 2)), np.nan)
        calls = network.calls
        runs.append(
            model.generate(
                8, steps=4, seed=i, labels=rng.integers(0, 4, 8), guidance_scale=scale, guidance=Inpainting(values)
            )
        )
        if i > 0 and BACKEND in ("jax", "tensorflow"):
            assert network.calls == calls, f"call {i} retraced"
    assert len(model._generate_functions) == 1
    assert all(np.all(np.isfinite(r)) for r in runs)


def test_guidance_scale_is_exact_classifier_free_guidance(data):
    x, labels = data
    model = tiny(num_classes=4)
    model.compile(optimizer="adam")
    model.fit(x, labels, batch_size=128, epochs=1, verbose=0)
    z = ops.convert_to_tensor(x[:6])
    given = np.array([0, 1, 2, 3, 0, 1])
    d_cond, d_uncond = to_numpy(model.denoise(z, 0.7, labels=given)), to_numpy(model.denoise(z, 0.7))
    for w in (0.0, 1.0, 3.0):
        guided = to_numpy(model.denoise(z, 0.7, labels=given, guidance_scale=w))
        np.testing.assert_allclose(guided, d_uncond + w * (d_cond - d_uncond), rtol=1e-4, atol=1e-5)


def test_a_failed_fit_leaves_the_model_usable(data, tmp_path):
    import tensorflow as tf

    x, _ = data
    model = tiny()
    model.compile(optimizer="adam")
    model.fit(x, batch_size=128, epochs=1, verbose=0)
    before = weights(model.denoiser) + weights(model.normalizer)
    wrong = tf.data.Dataset.from_tensor_slices(np.zeros((64, 3), "float32")).batch(32)
    with pytest.raises(Exception):
        model.fit(wrong, epochs=1, verbose=0)
    # The weights are kept (the training-noise generator may have advanced; that harms nothing).
    for a, b in zip(before, weights(model.denoiser) + weights(model.normalizer)):
        np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(model.generate(4, steps=3, seed=0)))
    model.save(str(tmp_path / "m.keras"))
    assert np.isfinite(model.fit(x, batch_size=128, epochs=1, verbose=0).history["loss"][-1])


def test_fit_checks_data_and_labels_before_training(data):
    x, labels = data
    model = tiny(num_classes=4)
    model.compile(optimizer="adam")
    for bad, message in ((labels + 1, r"`labels` must lie in \[0, 3\]"), (labels - 1, r"`labels` must lie in")):
        with pytest.raises(ValueError, match=message):
            model.fit(x, bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`labels` must be integers"):
        model.fit(x, labels + 0.5, epochs=1, verbose=0)
    model.fit(x, labels, batch_size=128, epochs=1, verbose=0)
    nan_data = x.copy()
    nan_data[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(nan_data, labels, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        model.fit(np.zeros((8, 3), "float32"), labels[:8], epochs=1, verbose=0)
    unnormalized = tiny(normalize=False)
    unnormalized.compile(optimizer="adam")
    with pytest.raises(ValueError, match="NaN"):
        unnormalized.fit(nan_data, epochs=1, verbose=0)


def test_a_diverging_run_stops_with_the_last_good_weights(data):
    x, _ = data
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=128, epochs=1, verbose=0)
    good = weights(model)
    model.compile(optimizer=keras.optimizers.SGD(1e8))
    with pytest.raises(FloatingPointError, match="loss became"):
        model.fit(x, batch_size=64, epochs=3, verbose=0)
    for a, b in zip(good, weights(model)):
        np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(model.generate(4, steps=3, seed=0)))


class NoBuild(keras.layers.Layer):
    """A user network with sub-layers and no `build` method."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(16, activation="silu")
        self.out = keras.layers.Dense(2)

    def call(self, inputs):
        x, noise = inputs
        return self.out(self.hidden(ops.concatenate([x, noise[:, None]], axis=-1)))


def test_a_network_without_build_trains_on_every_backend(data):
    x, _ = data
    model = keras_score.ScoreModel(NoBuild(), seed=0)
    model.compile(optimizer="adam")
    losses = model.fit(x, batch_size=128, epochs=3, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_seeds_are_validated(data):
    x, _ = data
    model = tiny()
    model.compile(optimizer="adam")
    model.fit(x[:128], batch_size=128, epochs=1, verbose=0)
    for seed in (-1, 2**31, True, 1.5):
        with pytest.raises(ValueError, match="`seed`"):
            model.generate(2, steps=2, seed=seed)
    with pytest.raises(ValueError, match="`seed`"):
        keras_score.ScoreModel(MLP(hidden_units=16, num_blocks=1), seed=-3)
    assert model.generate(2, steps=2, seed=2**31 - 1).shape == (2, 2)


def test_the_training_noise_state_is_saved_and_resumed(data, tmp_path):
    x, _ = data
    model = tiny()
    model.compile(optimizer="adam")
    model.fit(x, batch_size=128, epochs=1, verbose=0)
    state = to_numpy(model.seed_generator.state).copy()
    assert not np.array_equal(state, to_numpy(tiny().seed_generator.state))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(loaded.seed_generator.state), state)
    # The loaded model draws the noise the original would draw next, not the noise of its first step.
    batch = x[:32]
    np.testing.assert_allclose(
        to_numpy(loaded.per_example_loss(batch)), to_numpy(model.per_example_loss(batch)), rtol=1e-5
    )


def test_a_first_fit_that_fails_leaves_the_model_usable(data):
    import tensorflow as tf

    x, labels = data
    model = tiny(num_classes=4)
    model.compile(optimizer="adam")
    model.build((None, 2))
    model.normalizer.adapt(x)
    unlabeled = tf.data.Dataset.from_tensor_slices(x).batch(64)
    with pytest.raises(ValueError, match="needs `labels`"):
        model.fit(unlabeled, epochs=1, verbose=0)
    assert np.isfinite(model.fit(x, labels, batch_size=128, epochs=1, verbose=0).history["loss"][-1])


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: MLP(hidden_units=True), "hidden_units"),
        (lambda: MLP(num_blocks=0), "num_blocks"),
        (lambda: MLP(embedding_dim=3), "dim"),
        (lambda: keras_score.networks.embeddings.FourierEmbedding(16, scale=float("nan")), "scale"),
        (lambda: keras_score.conditioning.ConditionEmbedding(num_classes=True), "num_classes"),
        (lambda: tiny(p_uncond=1.0), "p_uncond"),
        (lambda: tiny(normalize="yes"), "normalize"),
        (lambda: tiny(conditions={"history": (3, 0)}), "history"),
        (lambda: tiny(conditions={"x": (3,)}), "'x'"),
    ],
)
def test_constructors_name_the_bad_argument(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_layer_norm_matches_keras_and_has_exact_second_derivatives():
    from keras_score.backend import vector_jacobian_product
    from keras_score.networks import LayerNorm

    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.standard_normal((3, 5)).astype("float32"))
    ours, theirs = LayerNorm(), keras.layers.LayerNormalization()
    ours.build((None, 5))
    theirs.build((None, 5))
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(theirs(x)), atol=1e-5)
    # d/dx of vᵀ∇ₓ(uᵀ y(x)) by autodiff against central differences of the first derivative.
    u = ops.convert_to_tensor(rng.standard_normal((3, 5)).astype("float32"))
    v = rng.standard_normal((3, 5))

    def first(z):
        return to_numpy(vector_jacobian_product(ours, ops.convert_to_tensor(z.astype("float32")), u)[1]).astype(
            np.float64
        )

    def directional(z):
        return ops.sum(vector_jacobian_product(ours, z, u)[1] * ops.convert_to_tensor(v.astype("float32")), axis=-1)

    exact = to_numpy(keras_score.backend.gradient(directional, x))
    h = 1e-2
    base = to_numpy(x).astype(np.float64)
    numeric = np.zeros_like(base)
    for i in range(base.shape[1]):
        step = np.zeros_like(base)
        step[:, i] = h
        numeric[:, i] = np.sum((first(base + step) - first(base - step)) * v, axis=-1) / (2 * h)
    np.testing.assert_allclose(exact, numeric, rtol=2e-2, atol=2e-2)
