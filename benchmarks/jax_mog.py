"""The paper's mixture-of-Gaussians GAN written by hand in JAX, each solver step one `jax.jit` program.

The yardstick a JAX user would write for games/mog.game (facts.md): 8 modes on the unit
circle with std 0.01, balanced batches of 512 (sample i from mode i mod 8), z ~ N(0, I_16),
G and D fully connected 4 x 16 ReLU with xavier-uniform weights and zero biases, sigmoid
cross-entropy for D and the non-saturating loss for G, RMSProp as TensorFlow has it
(lr 1e-4, decay 0.9, eps 1e-10: avg = a avg + (1 - a) g^2; x -= lr g / (sqrt(avg) + eps)).

    simga      one RMSProp step on both players' gradients, one batch
    altga      D steps on one batch, then G on a fresh batch against the new D
    consensus  w = v - gamma grad(|v|^2 / 2), gamma 10, by one vjp of the field; one RMSProp on w

Timing protocol: the step (field, solver terms, optimizer) is one jitted call; the batch is
drawn by a separate jitted sampler *outside* the step, as gamedsl draws its batches outside
its (compiled) step, and a timed block of steps includes the sampling on every side.
`JaxMoG.block(method, n)` runs n steps and waits for the result (JAX dispatches
asynchronously).

jax is installed for the benchmarks only (`pip install jax jaxlib` into the venv); it is no
dependency of gamedsl. The benchmarks run one thread on every side, and XLA reads its flags
when jax is first imported: so importing this module first adds `ONE_THREAD` to XLA_FLAGS
(if something imported jax before, the flags are as they were, and `one_thread()` says so).

    python benchmarks/jax_mog.py [--steps 200]   # checks against the PyTorch loop, then times each solver
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
if "jax" not in sys.modules:
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {ONE_THREAD}".strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

METHODS = ("simga", "altga", "consensus")
MODES, STD, LATENT, HIDDEN = 8, 0.01, 16, (16, 16, 16, 16)
ANGLES = np.arange(MODES) * (2 * np.pi / MODES)
MEANS = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1).astype(np.float32)


# ---- networks and losses (loss form: each player minimises its own loss)
def mlp_init(key, n_in: int, n_out: int) -> list[tuple[jax.Array, jax.Array]]:
    sizes = (n_in, *HIDDEN, n_out)
    keys = jax.random.split(key, len(sizes) - 1)
    xavier = jax.nn.initializers.glorot_uniform()
    return [(xavier(k, (a, b), jnp.float32), jnp.zeros(b, jnp.float32)) for k, a, b in zip(keys, sizes, sizes[1:])]


def mlp(layers, x):
    for w, b in layers[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def loss_d(d, g, x, z):
    """BCE(D(x), 1) + BCE(D(G(z)), 0), with logits."""
    return jax.nn.softplus(-mlp(d, x)).mean() + jax.nn.softplus(mlp(d, mlp(g, z))).mean()


def loss_g(d, g, z):
    """BCE(D(G(z)), 1): the non-saturating generator loss."""
    return jax.nn.softplus(-mlp(d, mlp(g, z))).mean()


def field(params, x, z):
    """Each player's gradient of its own loss on one batch: -v in the paper's utility form."""
    d, g = params["D"], params["G"]
    return {"D": jax.grad(loss_d)(d, g, x, z), "G": jax.grad(loss_g, argnums=1)(d, g, z)}


def rmsprop(params, avg, grads, lr=1e-4, alpha=0.9, eps=1e-10):
    avg = jax.tree.map(lambda a, gr: alpha * a + (1 - alpha) * gr * gr, avg, grads)
    params = jax.tree.map(lambda p, gr, a: p - lr * gr / (jnp.sqrt(a) + eps), params, grads, avg)
    return params, avg


# ---- the steps: (params, avg) and batches in, (params, avg) out
@jax.jit
def simga(state, batch):
    params, avg = state
    return rmsprop(params, avg, field(params, *batch))


@partial(jax.jit, static_argnames="gamma")
def consensus(state, batch, gamma=10.0):
    params, avg = state
    grads, pullback = jax.vjp(lambda p: field(p, *batch), params)
    (grad_l,) = pullback(grads)  # grad of L = |v|^2 / 2: v'^T v by reverse mode through the field
    return rmsprop(params, avg, jax.tree.map(lambda gr, r: gr + gamma * r, grads, grad_l))


@jax.jit
def altga(state, batch_d, batch_g):
    params, avg = state
    d, avg_d = rmsprop(params["D"], avg["D"], jax.grad(loss_d)(params["D"], params["G"], *batch_d))
    g, avg_g = rmsprop(params["G"], avg["G"], jax.grad(loss_g, argnums=1)(d, params["G"], batch_g[1]))
    return {"D": d, "G": g}, {"D": avg_d, "G": avg_g}


@partial(jax.jit, static_argnames="batch")
def sample(key, batch: int = 512):
    """A balanced batch (sample i from mode i mod 8) and its z; returns the next key too."""
    key, kx, kz = jax.random.split(key, 3)
    x = jnp.asarray(MEANS)[jnp.arange(batch) % MODES] + STD * jax.random.normal(kx, (batch, 2))
    return key, (x, jax.random.normal(kz, (batch, LATENT)))


class JaxMoG:
    """G, D, their RMSProp state and a key; `block(method, n)` runs n steps."""

    def __init__(self, seed: int = 0, batch: int = 512, gamma: float = 10.0):
        kd, kg, self.key = jax.random.split(jax.random.PRNGKey(seed), 3)
        self.params = {"D": mlp_init(kd, 2, 1), "G": mlp_init(kg, LATENT, 2)}
        self.avg = jax.tree.map(jnp.zeros_like, self.params)
        self.batch, self.gamma = batch, gamma

    @classmethod
    def from_torch(cls, model) -> JaxMoG:
        """The same networks as a `HandwrittenMoG` (weights copied; torch's Linear is x W^T + b)."""
        out = cls(batch=model.batch, gamma=model.gamma)
        out.params = {name: _layers(getattr(model, name)) for name in ("D", "G")}
        out.avg = jax.tree.map(jnp.zeros_like, out.params)
        return out

    def step_on(self, method: str, *batches) -> None:
        """One step on given batches (altga takes two): what `block` does after sampling."""
        state = (self.params, self.avg)
        if method == "consensus":
            self.params, self.avg = consensus(state, batches[0], gamma=self.gamma)
        elif method == "simga":
            self.params, self.avg = simga(state, batches[0])
        elif method == "altga":
            self.params, self.avg = altga(state, *batches)
        else:
            raise ValueError(method)

    def draw(self):
        self.key, batch = sample(self.key, batch=self.batch)
        return batch

    def block(self, method: str, n: int) -> None:
        for _ in range(n):
            self.step_on(method, *[self.draw() for _ in range(2 if method == "altga" else 1)])
        jax.block_until_ready(self.params)


def _layers(net) -> list[tuple[jax.Array, jax.Array]]:
    linear = [m for m in net if hasattr(m, "weight")]
    return [(jnp.asarray(m.weight.detach().numpy().T), jnp.asarray(m.bias.detach().numpy())) for m in linear]


def check_against_torch(method: str, seed: int = 0) -> float:
    """Max |difference| of all parameters after one step of `method` taken by this module and by
    the hand-written PyTorch loop (benchmarks/handwritten_mog.py), from the same weights and on
    the same batches (the PyTorch model's draws, fed to both)."""
    from benchmarks.handwritten_mog import HandwrittenMoG

    torch_model = HandwrittenMoG(seed)
    jax_model = JaxMoG.from_torch(torch_model)
    batches = [torch_model.sample() for _ in range(2 if method == "altga" else 1)]
    draws = iter(batches)
    torch_model.sample = lambda: next(draws)  # the PyTorch step draws these batches, in order
    torch_model.step(method)
    jax_model.step_on(method, *[tuple(jnp.asarray(t.numpy()) for t in b) for b in batches])
    after = {name: _layers(getattr(torch_model, name)) for name in ("D", "G")}
    diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), jax_model.params, after)
    return max(jax.tree.leaves(diffs))


def one_thread() -> bool:
    """Whether XLA runs on one thread: the flags were in place when jax was first imported."""
    return ONE_THREAD in os.environ.get("XLA_FLAGS", "")


def print_checks(methods=METHODS, tolerance: float = 1e-5) -> bool:
    """Print the check for each method; True when all agree within `tolerance`."""
    ok = True
    for method in methods:
        diff = check_against_torch(method)
        ok &= diff <= tolerance
        verdict = "agree" if diff <= tolerance else "DISAGREE"
        print(f"check: JAX vs hand-written PyTorch, one {method} step from the same weights and batch: "
              f"max |Δ parameter| = {diff:.1e} ({verdict}, tolerance {tolerance:.0e})")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="steps to time per solver after the check (default 200)")
    args = parser.parse_args()
    ok = print_checks()
    jax.clear_caches()  # so that each first step below includes its compilation
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    for method in METHODS:
        model = JaxMoG()
        start = time.perf_counter()
        model.block(method, 1)
        first = time.perf_counter() - start
        wall, cpu = time.perf_counter(), time.process_time()
        model.block(method, args.steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{method:<10} first step (compile) {first:6.2f} s   "
              f"{1e3 * cpu / args.steps:6.3f} CPU ms/step   {1e3 * wall / args.steps:6.3f} wall ms/step")  # fmt: skip
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]
    main()
