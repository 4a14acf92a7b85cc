"""Training-step time of `ScoreModel.fit` against hand-written JAX and PyTorch loops of the same network.

Usage:
    KERAS_BACKEND=jax python benchmarks/train_step.py [--batch-size 256] [--steps 200]
    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/train_step.py --jit-compile

In one process it times, after a warm-up that pays for tracing and
compilation:
- one `ScoreModel.fit` step on the chosen backend, with a plain network
  (3 × Dense(256, SiLU) on [x, c_noise], then Dense(d)) and EDM's defaults
  (preconditioning, log-normal σ, EDM weighting, Adam);
- one step of a hand-written `jax.jit` loop of the same network and loss
  (Adam written out), and one of a plain PyTorch loop (`torch.nn.Linear`,
  `torch.optim.Adam`), each when that framework is installed;
- with `--mlp`, also keras_score's default `MLP`, and the eager denoiser
  call beside it;
and prints each keras_score step as a ratio of the two references.
"""

import argparse
import math
import time

import keras
import numpy as np

import keras_score
from keras_score.datasets import GaussianMixture

SIGMA_DATA = 0.5
P_MEAN, P_STD = -1.2, 1.2


@keras.saving.register_keras_serializable(package="benchmarks")
class PlainNetwork(keras.layers.Layer):
    """F((x, c_noise)) = Dense(d)(3 × Dense(units, SiLU)([x, c_noise])): the network both references write out."""

    def __init__(self, units=256, depth=3, **kwargs):
        super().__init__(**kwargs)
        self.units, self.depth = units, depth
        self.hidden = [keras.layers.Dense(units, activation="silu") for _ in range(depth)]
        self.out = None

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.out = keras.layers.Dense(dim)
        h = (None, dim + 1)
        for layer in self.hidden:
            layer.build(h)
            h = (None, self.units)
        self.out.build(h)

    def call(self, inputs):
        x, c_noise = inputs
        h = keras.ops.concatenate([x, keras.ops.reshape(c_noise, (-1, 1))], axis=-1)
        for layer in self.hidden:
            h = layer(h)
        return self.out(h)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "depth": self.depth}


def time_fit(network, data, batch_size, steps, jit_compile):
    """Seconds per `ScoreModel.fit` step, and the model."""
    model = keras_score.ScoreModel(network, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    model.fit(data[: batch_size * 5], batch_size=batch_size, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(data[: batch_size * steps], batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    return (time.perf_counter() - start) / steps, model


def _edm_batch(rng, data, batch_size):
    """x₀, σ and ε of one batch, drawn on the host (as the references' data pipeline)."""
    x0 = data[rng.integers(0, len(data), batch_size)]
    sigma = np.exp(P_MEAN + P_STD * rng.standard_normal((batch_size, 1))).astype("float32")
    return x0, sigma, rng.standard_normal(x0.shape).astype("float32")


def time_jax_reference(data, batch_size, steps, units):
    """Seconds per step of a hand-written `jax.jit` EDM loop of `PlainNetwork` with Adam."""
    import jax
    import jax.numpy as jnp

    dim = data.shape[1]
    sizes = [dim + 1, units, units, units, dim]
    keys = jax.random.split(jax.random.PRNGKey(0), len(sizes) - 1)
    params = [
        (jax.random.normal(k, (a, b)) * math.sqrt(1.0 / a), jnp.zeros(b)) for k, a, b in zip(keys, sizes, sizes[1:])
    ]

    def loss_fn(params, x0, sigma, noise):
        c_skip = SIGMA_DATA**2 / (sigma**2 + SIGMA_DATA**2)
        c_out = sigma * SIGMA_DATA / jnp.sqrt(sigma**2 + SIGMA_DATA**2)
        c_in = 1.0 / jnp.sqrt(sigma**2 + SIGMA_DATA**2)
        x = x0 + sigma * noise
        h = jnp.concatenate([c_in * x, jnp.log(sigma) / 4.0], axis=-1)
        for w, b in params[:-1]:
            h = jax.nn.silu(h @ w + b)
        denoised = c_skip * x + c_out * (h @ params[-1][0] + params[-1][1])
        weight = (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2
        return jnp.mean(weight * (denoised - x0) ** 2)

    @jax.jit
    def step(params, m, v, t, x0, sigma, noise):
        loss, grads = jax.value_and_grad(loss_fn)(params, x0, sigma, noise)
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        scale = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + 1e-7), params, m, v)
        return params, m, v, loss

    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    rng = np.random.default_rng(0)
    batches = [_edm_batch(rng, data, batch_size) for _ in range(steps)]
    for t in range(1, 6):
        params, m, v, loss = step(params, m, v, t, *batches[0])
    loss.block_until_ready()
    start = time.perf_counter()
    for t, batch in enumerate(batches, start=6):
        params, m, v, loss = step(params, m, v, t, *batch)
        float(loss)  # a host read per step, as `fit` does for its logs
    return (time.perf_counter() - start) / steps


def time_torch_reference(data, batch_size, steps, units):
    """Seconds per step of a plain PyTorch EDM loop of `PlainNetwork` with `torch.optim.Adam`."""
    import torch

    dim = data.shape[1]
    torch.manual_seed(0)
    layers = []
    for a, b in zip([dim + 1, units, units], [units] * 3):
        layers += [torch.nn.Linear(a, b), torch.nn.SiLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(units, dim))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(x0, sigma, noise):
        c_skip = SIGMA_DATA**2 / (sigma**2 + SIGMA_DATA**2)
        c_out = sigma * SIGMA_DATA / torch.sqrt(sigma**2 + SIGMA_DATA**2)
        c_in = 1.0 / torch.sqrt(sigma**2 + SIGMA_DATA**2)
        x = x0 + sigma * noise
        denoised = c_skip * x + c_out * net(torch.cat([c_in * x, torch.log(sigma) / 4.0], dim=-1))
        weight = (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2
        loss = torch.mean(weight * (denoised - x0) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()  # a host read per step, as `fit` does for its logs

    rng = np.random.default_rng(0)
    batches = [tuple(torch.from_numpy(a) for a in _edm_batch(rng, data, batch_size)) for _ in range(steps)]
    for _ in range(5):
        step(*batches[0])
    start = time.perf_counter()
    for batch in batches:
        step(*batch)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--hidden-units", type=int, default=256)
    parser.add_argument("--jit-compile", default="auto", help="ScoreModel.compile's jit_compile: auto, true, false")
    parser.add_argument("--mlp", action="store_true", help="also time keras_score's default MLP and its eager call")
    args = parser.parse_args()
    jit_compile = {"auto": "auto", "true": True, "false": False}[str(args.jit_compile).lower()]

    data = GaussianMixture.ring().sample(args.batch_size * args.steps, seed=0)
    print(f"backend={keras.backend.backend()} batch={args.batch_size} hidden={args.hidden_units} "
          f"steps={args.steps} jit_compile={args.jit_compile}")
    references = {}
    for name, reference in (("hand-written jax.jit", time_jax_reference), ("plain PyTorch", time_torch_reference)):
        try:
            references[name] = reference(data, args.batch_size, args.steps, args.hidden_units)
        except ImportError:
            continue
        print(f"{name} loop step: {1e3 * references[name]:.2f} ms")
    plain, _ = time_fit(PlainNetwork(args.hidden_units), data, args.batch_size, args.steps, jit_compile)
    ratios = " | ".join(f"{plain / seconds:.2f}x {name}" for name, seconds in references.items())
    print(f"ScoreModel.fit step, plain network: {1e3 * plain:.2f} ms | {ratios}")
    if args.mlp:
        step, model = time_fit(
            keras_score.networks.MLP(hidden_units=args.hidden_units), data, args.batch_size, args.steps, jit_compile
        )
        x = keras.ops.convert_to_tensor(data[: args.batch_size])
        model.denoise(x, 1.0)
        repeats = 50
        start = time.perf_counter()
        for _ in range(repeats):
            keras.ops.convert_to_numpy(model.denoise(x, 1.0))
        call = (time.perf_counter() - start) / repeats
        print(f"ScoreModel.fit step, MLP: {1e3 * step:.2f} ms | eager denoiser call: {1e3 * call:.2f} ms | "
              f"ratio {step / call:.2f}")


if __name__ == "__main__":
    main()
