#!/usr/bin/env python3
"""Times one VAE training step in JAX (the whole step one `jax.jit`, optax Adam) and in this
project, interleaved in one run, and prints the ratios.

The model, batch, optimizer, data and thread count are the same on both sides, and the same
as `compare_pytorch.py`'s: by default pytorch/examples' VAE (784-400-20-400-784, ReLU,
Bernoulli via binary cross-entropy summed over pixels, analytic KL, Adam 1e-3, batch 128) on
MNIST batches from data/mnist; with `--model burda`, Burda et al.'s one-stochastic-layer
model (784-200-200-50 tanh, Glorot weights, Adam with eps 1e-4, batch 20 of freshly
binarized images) trained on the k-sample ELBO (`--objective elbo-mc`) or the
importance-weighted bound (`--objective iwae`), every k·20 code through the decoder at once.

    python3 bench/compare_jax.py [--rounds 5] [--steps 300] [--threads 1 2]
    python3 bench/compare_jax.py --model burda [--objective iwae --k 5]
    python3 bench/compare_jax.py --vector-path avx2 --exe DIR/release/examples/step_timer

With `--vector-path avx2` both sides stop at AVX2 + FMA on a CPU that also has AVX-512, as
on a host without it: XLA through `--xla_cpu_max_isa=AVX2`, ours through step_timer's
`--vector-path avx2`; matrixmultiply chooses its kernel when it is built, so give `--exe` a
`step_timer` built with `MMTEST_FEATURE=avx,avx2,fma,sse2` (and a `CARGO_TARGET_DIR` of its
own).

XLA's CPU thread pool does not follow its flags, so each JAX measurement runs in its own
process under `taskset` on the first `threads` CPUs; ours runs under the same `taskset` with
`--threads`. It creates bench/.venv-jax and installs jax and optax there on first use. CI
does not run it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def jax_step_ms(steps, warmup, model, objective, k):
    """Median ms of `steps` jit-compiled training steps after `warmup` (the first compiles),
    on whatever CPUs this process may use. Step i's batch is sliced from one fixed shuffle
    (seed 1), as in compare_pytorch.py, and moved to the device inside the timed region."""
    import math

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from compare_pytorch import load_images

    images = load_images()
    order = np.random.default_rng(1).permutation(len(images))

    def linear(key, fan_in, fan_out):
        kw, kb = jax.random.split(key)
        if model == "burda":
            # Glorot (Xavier) uniform weights, zero biases.
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            w = jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound)
            return {"w": w, "b": jnp.zeros((fan_out,), jnp.float32)}
        # PyTorch's nn.Linear initialization: uniform on ±1/√fan_in, weight and bias.
        bound = 1.0 / np.sqrt(fan_in)
        return {
            "w": jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
            "b": jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound),
        }

    def dense(p, x):
        return x @ p["w"] + p["b"]

    if model == "burda":
        shapes = {
            "e1": (784, 200), "e2": (200, 200), "mu": (200, 50), "lv": (200, 50),
            "d1": (50, 200), "d2": (200, 200), "out": (200, 784),
        }
        batch_size, opt = 20, optax.adam(1e-3, eps=1e-4)
        c = -0.5 * 50 * math.log(2 * math.pi)

        def loss_fn(params, x, key):
            kx, ke = jax.random.split(key)
            x = jax.random.bernoulli(kx, x).astype(jnp.float32)
            h = jnp.tanh(dense(params["e2"], jnp.tanh(dense(params["e1"], x))))
            m, lv = dense(params["mu"], h), dense(params["lv"], h)
            eps = jax.random.normal(ke, (k, batch_size, 50))
            z = (m + jnp.exp(0.5 * lv) * eps).reshape(k * batch_size, 50)
            d = jnp.tanh(dense(params["d2"], jnp.tanh(dense(params["d1"], z))))
            logits = dense(params["out"], d).reshape(k, batch_size, 784)
            log_px = -optax.sigmoid_binary_cross_entropy(logits, x[None]).sum(-1)
            log_pz = -0.5 * (z**2).sum(-1).reshape(k, batch_size) + c
            log_qz = -0.5 * (eps**2 + lv).sum(-1) + c
            log_w = log_px + log_pz - log_qz
            if objective == "iwae":
                bound = jax.scipy.special.logsumexp(log_w, 0) - math.log(k)
            else:
                bound = log_w.mean(0)
            return -bound.sum()

    else:
        shapes = {"fc1": (784, 400), "fc21": (400, 20), "fc22": (400, 20), "fc3": (20, 400), "fc4": (400, 784)}
        batch_size, opt = 128, optax.adam(1e-3)

        def loss_fn(params, x, key):
            h = jax.nn.relu(dense(params["fc1"], x))
            mu, logvar = dense(params["fc21"], h), dense(params["fc22"], h)
            z = mu + jax.random.normal(key, mu.shape) * jnp.exp(0.5 * logvar)
            logits = dense(params["fc4"], jax.nn.relu(dense(params["fc3"], z)))
            bce = optax.sigmoid_binary_cross_entropy(logits, x).sum()
            kld = -0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar))
            return bce + kld

    keys = jax.random.split(jax.random.PRNGKey(1), len(shapes))
    params = {name: linear(kk, i, o) for kk, (name, (i, o)) in zip(keys, shapes.items())}
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, x, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    key = jax.random.PRNGKey(0)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        at = (i * batch_size) % (len(images) - batch_size)
        batch = images[order[at:][:batch_size]].astype(np.float32) / 255.0
        key, sub = jax.random.split(key)
        params, opt_state, loss = step(params, opt_state, jnp.asarray(batch), sub)
        loss.block_until_ready()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def cpus(threads):
    return f"0-{threads - 1}" if threads > 1 else "0"


def model_flags(args):
    """The flags that choose the model, as both sides take them."""
    flags = ["--model", args.model]
    if args.model == "burda":
        flags += ["--objective", args.objective, "--k", str(args.k)]
    return flags


def jax_in_process(threads, args):
    env = dict(os.environ)
    if args.vector_path is not None:
        isa = args.vector_path.upper()
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_cpu_max_isa={isa}").strip()
    out = subprocess.check_output(
        ["taskset", "-c", cpus(threads), sys.executable, __file__, "--worker", "--steps", str(args.steps)]
        + ["--warmup", str(args.warmup)]
        + model_flags(args),
        cwd=ROOT,
        env=env,
    )
    return json.loads(out.decode().strip().splitlines()[-1])["median_ms"]


def ours_step_ms(threads, args):
    exe = args.exe or ROOT / "target" / "release" / "examples" / "step_timer"
    flags = ["--threads", str(threads), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.vector_path is not None:
        flags += ["--vector-path", args.vector_path]
    if args.model == "burda":
        flags += ["--preset", "burda", "--objective", args.objective, "--k", str(args.k)]
    out = subprocess.check_output(["taskset", "-c", cpus(threads), str(exe)] + flags, cwd=ROOT)
    return json.loads(out)["median_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", choices=["default", "burda"], default="default")
    ap.add_argument("--objective", choices=["elbo-mc", "iwae"], default="elbo-mc", help="burda only")
    ap.add_argument("--k", type=int, default=1, help="samples per image (burda only)")
    ap.add_argument("--vector-path", choices=["avx2", "avx512"], help="the widest vectors both sides use")
    ap.add_argument("--exe", type=Path, help="our step_timer (default: this tree's release build, made first)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import benchvenv

    benchvenv.ensure(__file__, benchvenv.JAX)
    if args.worker:
        print(json.dumps({"median_ms": jax_step_ms(args.steps, args.warmup, args.model, args.objective, args.k)}))
        return
    import jax

    if args.exe is None:
        subprocess.check_call(["cargo", "build", "--release", "--quiet", "--example", "step_timer"], cwd=ROOT)
    elif not args.exe.is_file():
        sys.exit(f"compare_jax: --exe {args.exe}: no such file")
    what = args.model if args.model == "default" else f"burda {args.objective} k={args.k}"
    path = f"; vector path {args.vector_path}" if args.vector_path else ""
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs; {what}{path}; median ms per step over {args.steps} steps")
    print(f"{'threads':>7} {'round':>5} {'jax':>9} {'ours':>9} {'ratio':>7}")
    for threads in args.threads:
        ratios, jx_all, us_all = [], [], []
        for r in range(args.rounds):
            # Interleave: JAX, then ours, each round, so drifts in the host's load hit both.
            jx = jax_in_process(threads, args)
            us = ours_step_ms(threads, args)
            ratios.append(us / jx)
            jx_all.append(jx)
            us_all.append(us)
            print(f"{threads:>7} {r + 1:>5} {jx:>9.3f} {us:>9.3f} {us / jx:>7.3f}")
        print(
            f"{threads:>7} {'median':>5} {statistics.median(jx_all):>9.3f} {statistics.median(us_all):>9.3f} "
            f"{statistics.median(ratios):>7.3f}"
        )


if __name__ == "__main__":
    main()
