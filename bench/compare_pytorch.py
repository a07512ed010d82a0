#!/usr/bin/env python3
"""Times one VAE training step (forward, backward, Adam) in PyTorch on the CPU and in this
project, interleaved in one run, and prints the ratios.

The model, batch, optimizer, data and thread count are the same on both sides: by default
pytorch/examples' vae/main.py (784-400-20-400-784, ReLU, Bernoulli via BCE summed over
pixels, analytic KL, Adam 1e-3, batch 128) on MNIST batches from data/mnist; with
`--model burda`, Burda et al.'s 784-200-200-50 tanh model at batch 20 (see
`torch_burda_step_ms`); with `--model conv`, the convolutional VAE of `--arch conv` at
batch 128 (see `torch_conv_step_ms`).

    python3 bench/compare_pytorch.py [--rounds 5] [--steps 200] [--threads 1 2]
    python3 bench/compare_pytorch.py --model burda [--objective iwae --k 5]
    python3 bench/compare_pytorch.py --model conv

It creates bench/.venv and installs torch there with pip on first use. CI does not run it.
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
# benchvenv and load_in_pytorch (the PyTorch models of a checkpoint's shape) live beside this.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def ensure_torch():
    """Re-executes this script inside bench/.venv (see benchvenv.py)."""
    import benchvenv

    benchvenv.ensure(__file__)


def load_images():
    import mnist_idx

    return mnist_idx.images(ROOT / "data" / "mnist", "train")


def timed(opt, steps, warmup, loss_of_step):
    """Median milliseconds of `steps` optimizer steps after `warmup` untimed ones;
    `loss_of_step(i)` prepares step i's batch and builds its loss (both inside the time)."""
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = loss_of_step(i)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def batches_of(images, size):
    """Step i's batch of `size` images in [0, 1] from one fixed shuffle (seed 1)."""
    import numpy as np
    import torch

    order = np.random.default_rng(1).permutation(len(images))
    return lambda i: torch.from_numpy(images[order[(i * size) % (len(images) - size) :][:size]].astype(np.float32) / 255.0)


def torch_step_ms(images, threads, steps, warmup):
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(1)

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 400)
            self.fc21 = nn.Linear(400, 20)
            self.fc22 = nn.Linear(400, 20)
            self.fc3 = nn.Linear(20, 400)
            self.fc4 = nn.Linear(400, 784)

        def forward(self, x):
            h1 = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h1), self.fc22(h1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = batches_of(images, 128)
    def loss_of_step(i):
        x = batch(i)
        recon, mu, logvar = model(x)
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    return timed(opt, steps, warmup, loss_of_step)


def torch_burda_step_ms(images, threads, steps, warmup, objective, k):
    """Burda et al.'s one-stochastic-layer model: 784-200-200-50 tanh, Glorot weights, Adam
    (eps 1e-4), batch 20 of freshly binarized images, the mean over k of log w (elbo-mc) or
    log of the mean of w (iwae), every k·batch code through the decoder at once."""
    import math

    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(1)

    def mlp(sizes):
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        return nn.Sequential(*layers)

    enc, dec = mlp([784, 200, 200]), mlp([50, 200, 200])
    mu, logvar, out = nn.Linear(200, 50), nn.Linear(200, 50), nn.Linear(200, 784)
    params = [p for m in (enc, dec, mu, logvar, out) for p in m.parameters()]
    for m in (enc, dec, mu, logvar, out):
        for layer in m.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-4)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(images))
    c = -0.5 * 50 * math.log(2 * math.pi)
    def loss_of_step(i):
        idx = order[(i * 20) % (len(images) - 20) :][:20]
        x = torch.bernoulli(torch.from_numpy(images[idx].astype(np.float32) / 255.0))
        h = enc(x)
        m, lv = mu(h), logvar(h)
        eps = torch.randn(k, 20, 50)
        z = (m + torch.exp(0.5 * lv) * eps).reshape(k * 20, 50)
        logits = out(dec(z)).reshape(k, 20, 784)
        log_px = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand(k, 20, 784), reduction="none"
        ).sum(-1)
        log_pz = -0.5 * z.pow(2).sum(-1).reshape(k, 20) + c
        log_qz = -0.5 * (eps.pow(2) + lv).sum(-1) + c
        log_w = log_px + log_pz - log_qz
        bound = torch.logsumexp(log_w, 0) - math.log(k) if objective == "iwae" else log_w.mean(0)
        return -bound.sum()

    return timed(opt, steps, warmup, loss_of_step)


def torch_conv_step_ms(images, threads, steps, warmup):
    """The default recipe with `--arch conv`'s model (load_in_pytorch.build_model builds the
    same model from a checkpoint's configuration): 1→32→64 channels of 4×4 stride-2
    convolutions, a dense layer to the latent, the mirror image with transposed convolutions;
    Bernoulli via BCE with logits summed over pixels, analytic KL, Adam 1e-3, batch 128."""
    import torch
    import torch.nn.functional as F

    from load_in_pytorch import build_model, default_config

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = build_model(default_config("conv"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = batches_of(images, 128)
    def loss_of_step(i):
        x = batch(i)
        mu, logvar = model.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits, _ = model.decode(z)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    return timed(opt, steps, warmup, loss_of_step)


def ours_step_ms(threads, steps, warmup, model, objective, k):
    exe = ROOT / "target" / "release" / "examples" / "step_timer"
    flags = ["--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup)]
    # step_timer takes mnist_vae's flags for the model.
    flags += {"default": [], "burda": ["--preset", "burda", "--objective", objective, "--k", str(k)], "conv": ["--arch", "conv"]}[model]
    out = subprocess.check_output([str(exe)] + flags, cwd=ROOT)
    return json.loads(out)["median_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", choices=["default", "burda", "conv"], default="default")
    ap.add_argument("--objective", choices=["elbo-mc", "iwae"], default="elbo-mc", help="burda only")
    ap.add_argument("--k", type=int, default=1, help="samples per image (burda only)")
    args = ap.parse_args()
    ensure_torch()
    import torch

    subprocess.check_call(["cargo", "build", "--release", "--quiet", "--example", "step_timer"], cwd=ROOT)
    images = load_images()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs; model {args.model}"
        + (f" ({args.objective}, k = {args.k})" if args.model == "burda" else "")
        + f"; median ms per step over {args.steps} steps"
    )
    print(f"{'threads':>7} {'round':>5} {'pytorch':>9} {'ours':>9} {'ratio':>7}")
    for threads in args.threads:
        ratios, pt_all, us_all = [], [], []
        for r in range(args.rounds):
            # Interleave: PyTorch, then ours, each round, so drifts in the host's load hit both.
            if args.model == "burda":
                pt = torch_burda_step_ms(images, threads, args.steps, args.warmup, args.objective, args.k)
            elif args.model == "conv":
                pt = torch_conv_step_ms(images, threads, args.steps, args.warmup)
            else:
                pt = torch_step_ms(images, threads, args.steps, args.warmup)
            us = ours_step_ms(threads, args.steps, args.warmup, args.model, args.objective, args.k)
            ratios.append(us / pt)
            pt_all.append(pt)
            us_all.append(us)
            print(f"{threads:>7} {r + 1:>5} {pt:>9.3f} {us:>9.3f} {us / pt:>7.3f}")
        print(
            f"{threads:>7} {'median':>5} {statistics.median(pt_all):>9.3f} {statistics.median(us_all):>9.3f} "
            f"{statistics.median(ratios):>7.3f}"
        )


if __name__ == "__main__":
    main()
