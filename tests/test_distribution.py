"""Data-parallel training and sampling on keras.distribution (JAX, 4 host devices) and tf.distribute (TensorFlow)."""

import os
import subprocess
import sys

import keras
import pytest

import keras_score

REPO = os.path.dirname(os.path.dirname(keras_score.__file__))

JAX_DATA_PARALLEL = """
import numpy as np, keras, jax, keras_score
from keras_score import backend
assert len(jax.devices()) == 4

def trained():
    keras.utils.set_random_seed(0)
    model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=16, num_blocks=1), ema="edm", seed=3)
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(data, batch_size=32, epochs=2, verbose=0, shuffle=False)
    return model

data = keras_score.datasets.GaussianMixture.ring().sample(128, seed=0)
single = trained()
samples = single.generate(16, steps=4, seed=0, batch_size=8)
log_prob = single.log_prob(data[:8], steps=4, solver="heun")

keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
parallel = trained()
assert parallel.denoiser.trainable_variables[0].value.sharding.num_devices == 4  # replicated
for a, b in zip(single.variables, parallel.variables):
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-5)
assert backend.distribute_batch(keras.ops.zeros((8, 2)), 8).sharding.num_devices == 4
parallel.set_weights(single.get_weights())
np.testing.assert_allclose(parallel.generate(16, steps=4, seed=0, batch_size=8), samples, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(parallel.log_prob(data[:8], steps=4, solver="heun"), log_prob, rtol=1e-5, atol=1e-5)
for call, match in (
    (lambda: parallel.generate(12, steps=2, batch_size=6), "`batch_size` must be a multiple of the 4 devices"),
    (lambda: parallel.generate(10, steps=2, batch_size=8), "the last batch"),
    (lambda: parallel.fit(data, batch_size=30, epochs=1, verbose=0), "received 30"),
    (lambda: parallel.log_prob(data[:6], steps=2, solver="heun"), "received 6"),
):
    try:
        call()
    except ValueError as error:
        assert match in str(error), error
    else:
        raise AssertionError(f"no error for {match!r}")
print("ok")
"""


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="keras.distribution runs on JAX")
def test_jax_data_parallel_matches_one_device():
    env = dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    result = subprocess.run(
        [sys.executable, "-c", JAX_DATA_PARALLEL], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


TF_MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np, keras, keras_score

data = keras_score.datasets.GaussianMixture.ring().sample(256, seed=0)

def trained(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=32, num_blocks=1), ema="edm", seed=3)
        model.compile(keras.optimizers.SGD(0.05))  # not Adam, which would hide a gradient twice too large
    losses = model.fit(data, batch_size=32, epochs=6, verbose=0).history["loss"]
    return model, losses

single, single_losses = trained(tf.distribute.get_strategy())
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
model, losses = trained(strategy)
for variable in (model.denoiser.trainable_variables[0], model.ema_weights[0]):
    values = variable.value.values  # a MirroredVariable: one copy per replica, kept equal
    assert len(values) == 2 and np.array_equal(values[0].numpy(), values[1].numpy())
assert np.all(np.isfinite(losses))
# The loss is the global batch's mean (each replica's scaled by 1/2): its level matches one device's.
assert abs(np.mean(losses) - np.mean(single_losses)) < 0.1 * np.mean(single_losses), (losses, single_losses)
# The weights moved as far from the common initial weights as on one device (not twice as far).
keras.utils.set_random_seed(0)
start = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=32, num_blocks=1), seed=3)
start.build((None, 2))
moved = [np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).mean()
         for m in (single, model) for a, b in zip(m.denoiser.trainable_variables, start.denoiser.trainable_variables)]
half = len(moved) // 2
ratio = np.sum(moved[half:]) / np.sum(moved[:half])
assert 0.7 < ratio < 1.4, ratio
samples = model.generate(64, steps=8, seed=0)
assert samples.shape == (64, 2) and np.all(np.isfinite(samples))
# The replicas share one generator state; the view compute_loss draws from gives each its own noise.
with strategy.scope():
    generator = keras.random.SeedGenerator(5)
draws = {}
for view in (False, True):
    seed = lambda: keras_score.backend.replica_seed_generator(generator) if view else generator
    per_replica = strategy.run(tf.function(lambda: keras.random.normal((8,), seed=seed())))
    draws[view] = [value.numpy() for value in per_replica.values]
assert np.array_equal(*draws[False])  # what the replicas drew before the view
assert not np.allclose(*draws[True]) and not np.allclose(draws[True][0], draws[False][0])
print("ok")
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute is TensorFlow's")
def test_tensorflow_mirrored_strategy_trains_on_two_logical_devices():
    env = dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", TF_MIRRORED], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


# One process of a torch.distributed (gloo) group of 2: the same data on both ranks first (their mean
# gradient is each one's, so the weights must equal a one-process run), then each rank its own half.
TORCH_RANK = """
import sys
import numpy as np, torch.distributed as dist, keras, keras_score
torch_distributed = "OUT" not in globals()  # run in a process of the group, not in the test
if torch_distributed:
    dist.init_process_group("gloo")
rank = dist.get_rank() if torch_distributed else 0
data = keras_score.datasets.GaussianMixture.ring().sample(128, seed=0)
keras.utils.set_random_seed(rank)  # different initial weights and Fourier features: rank 0's are broadcast
model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=16, num_blocks=1), ema="edm", seed=3)
model.compile(keras.optimizers.SGD(0.05))  # not Adam, which would hide a summed (doubled) gradient
model.build((None, 2))
model.normalizer.adapt(data)
if torch_distributed:
    keras_score.backend.average_gradients_across_processes(model)
model.fit(data, batch_size=32, epochs=1, verbose=0, shuffle=False)
values = lambda: [keras.ops.convert_to_numpy(v) for v in model.variables]
if not torch_distributed:
    OUT.extend(values())
else:
    np.savez(f"{sys.argv[1]}/same-{rank}.npz", *values())
    model.fit(data[rank::2], batch_size=32, epochs=1, verbose=0, shuffle=False)
    np.savez(f"{sys.argv[1]}/split-{rank}.npz", *values())
"""


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch.distributed is PyTorch's")
def test_torch_processes_average_their_gradients(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", TORCH_RANK, str(tmp_path)],
            env=dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="torch", OMP_NUM_THREADS="1", RANK=str(rank),
                     WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)),
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    one_process = []
    exec(compile(TORCH_RANK, "TORCH_RANK", "exec"), {"OUT": one_process})
    import numpy as np

    for phase, reference in (("same", one_process), ("split", None)):
        ranks = [np.load(tmp_path / f"{phase}-{rank}.npz") for rank in (0, 1)]
        for name in ranks[0].files:
            np.testing.assert_array_equal(ranks[0][name], ranks[1][name])  # the processes stay in step
        if reference is not None:
            for name, expected in zip(ranks[0].files, reference):
                np.testing.assert_allclose(ranks[0][name], expected, rtol=1e-6, atol=1e-7)


def test_gradient_averaging_needs_torch_and_a_process_group():
    model = keras_score.ScoreModel(keras_score.networks.MLP(hidden_units=8, num_blocks=1))
    model.build((None, 2))
    match = "Initialise torch.distributed" if keras.backend.backend() == "torch" else "for the torch backend"
    with pytest.raises(ValueError, match=match):
        keras_score.backend.average_gradients_across_processes(model)
