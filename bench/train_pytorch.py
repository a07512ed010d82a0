#!/usr/bin/env python3
"""Trains the PyTorch twin of an `mnist_vae` model with the default recipe and prints the
test negative ELBO per epoch, to compare with `mnist_vae`'s own at equal epochs.

The model is `load_in_pytorch.build_model` of the configuration `mnist_vae` would store
(`--arch conv`: 1→32→64 channels of 4×4 stride-2 convolutions, a dense layer to the
latent, the mirror image with transposed convolutions; `--arch mlp`: pytorch/examples'
784-400-20). The recipe is `mnist_vae`'s default: continuous pixels in [0, 1] as Bernoulli
targets (BCE with logits summed over pixels), the closed-form KL, one sample of z, Adam
1e-3, batch 128 of a fresh shuffle every epoch, latent 20, PyTorch's default
initialization; the test negative ELBO is the mean over the 10,000 test images with one
sample each, as `mnist_vae` reports it. `--seed` seeds torch and the shuffle.

    python3 bench/train_pytorch.py --arch conv [--epochs 10] [--seed 1] [--threads 2]

It uses bench/.venv (created, with torch and safetensors, on first use). CI does not run it.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main():
    import benchvenv

    benchvenv.ensure(__file__)
    import numpy as np
    import torch
    import torch.nn.functional as F

    import mnist_idx
    from load_in_pytorch import build_model, default_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=["conv", "mlp"], default="conv")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "mnist")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = build_model(default_config(args.arch))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train, test = (mnist_idx.images(args.data, split).astype(np.float32) / 255.0 for split in ("train", "test"))

    def neg_elbo(x):
        mu, logvar = model.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits, _ = model.decode(z)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    print(f"torch {torch.__version__}, {args.threads} threads; arch {args.arch}, seed {args.seed}")
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        order, total = rng.permutation(len(train)), 0.0
        for i in range(0, len(order), 128):
            x = torch.from_numpy(train[order[i : i + 128]])
            loss = neg_elbo(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            test_total = sum(neg_elbo(torch.from_numpy(test[i : i + 1000])).item() for i in range(0, len(test), 1000))
        print(
            f"epoch {epoch} train_neg_elbo {total / len(train):.4f} test_neg_elbo {test_total / len(test):.4f} "
            f"seconds {seconds:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
