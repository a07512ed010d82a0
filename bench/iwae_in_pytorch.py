#!/usr/bin/env python3
"""Estimates a checkpoint's test log-likelihood with the importance-weighted bound in
PyTorch, written from the model's definition rather than from our code: a second
implementation of the k = 5000 evaluation of Burda et al.'s rows.

It rebuilds the multilayer model of the checkpoint's stored configuration (one or more
stochastic layers, `logvar` or `log_sigma` heads, Bernoulli pixels), loads every weight by
name with `load_state_dict(strict=True)`, and for each test image computes

    log p(x) ≈ log (1/k) Σᵢ p(x|z₁ⁱ) p(z₁ⁱ|z₂ⁱ) … p(z_Lⁱ) / (q(z₁ⁱ|x) q(z₂ⁱ|z₁ⁱ) …),

with zⁱ drawn from q layer by layer. It prints the mean negative estimate and its standard
error over the images, beside the run's own number when the checkpoint's folder holds a
`summary.json`.

    python3 bench/iwae_in_pytorch.py results/burda-2l-vae-k1/checkpoint.safetensors \\
        [--k 5000] [--images 500] [--threads 2] [--write-data /tmp/same-images]

The test images are binarized here, from `--seed`, not as `mnist_vae` binarizes them. To
compare both implementations on the same images, `--write-data DIR` writes the images this
script evaluated (binary, so `mnist_vae`'s binarization keeps them as they are) as the test
set of an MNIST folder, with the training files linked beside; then

    mnist_vae <the row's flags> --resume CHECKPOINT --epochs 3280 --iwae-k 5000 \\
        --data DIR --out /tmp/eval

evaluates those images with our code (`summary.json` in `/tmp/eval`), and
`cargo run --release --example iwae_per_image -- --checkpoint CHECKPOINT --data DIR` gives
ours image by image (`--seed` for other draws). The two estimates
differ by the bound's Monte Carlo noise only: up to about a tenth of a nat over 500 images
at k = 5000, a few thousandths over the 10,000 (`docs/results.md`).

It uses bench/.venv (created, with torch and safetensors, on first use). CI does not run it.
"""

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import mnist_idx  # noqa: E402


def ensure_venv():
    """Re-executes this script inside bench/.venv (see benchvenv.py)."""
    import benchvenv

    benchvenv.ensure(__file__)


def build_model(m):
    """The model of configuration `m` with the names `mnist_vae` gives its parameters."""
    from torch import nn

    if m.get("conv") or m["likelihood"] != "bernoulli":
        sys.exit("error: this script evaluates multilayer models with Bernoulli pixels only")
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}[m["activation"]]
    scale = {"logvar": "logvar", "log-sigma": "log_sigma"}[m.get("sigma", "logvar")]

    def mlp(width, sizes):
        layers = []
        for h in sizes:
            layers += [nn.Linear(width, h), act()]
            width = h
        return nn.Sequential(*layers), width

    model = nn.Module()
    enc = m["hidden"]
    dec = m["decoder_hidden"] if m["decoder_hidden"] is not None else enc[::-1]
    model.encoder, w = mlp(m["input"], enc)
    heads = nn.Linear(w, m["latent"]), nn.Linear(w, m["latent"])
    model.add_module("mu", heads[0])
    model.add_module(scale, heads[1])
    model.heads = heads  # a tuple: not registered a second time
    model.decoder, w = mlp(m["latent"], dec)
    model.out = nn.Linear(w, m["input"])
    # Layer n ≥ 2: q(z_n | z_{n-1}) through encoder{n}, mu{n}, {scale}{n}; p(z_{n-1} | z_n)
    # through decoder{n} (the hidden sizes reversed), decoder{n}_mu, decoder{n}_{scale}.
    model.upper = []
    below = m["latent"]
    for n, up in enumerate(m.get("upper") or [], start=2):
        q, w = mlp(below, up["hidden"])
        q_mu, q_scale = nn.Linear(w, up["latent"]), nn.Linear(w, up["latent"])
        p, w = mlp(up["latent"], up["hidden"][::-1])
        p_mu, p_scale = nn.Linear(w, below), nn.Linear(w, below)
        for name, mod in [(f"encoder{n}", q), (f"mu{n}", q_mu), (f"{scale}{n}", q_scale), (f"decoder{n}", p),
                          (f"decoder{n}_mu", p_mu), (f"decoder{n}_{scale}", p_scale)]:
            model.add_module(name, mod)
        model.upper.append((q, q_mu, q_scale, p, p_mu, p_scale))
        below = up["latent"]
    # A log-σ head's output doubled is the log-variance.
    model.to_logvar = (lambda s: 2.0 * s) if scale == "log_sigma" else (lambda s: s)
    return model


def log_normal(z, mu, logvar):
    """log N(z; mu, diag(exp(logvar))), summed over the last axis."""
    return -0.5 * (((z - mu) ** 2) * (-logvar).exp() + logvar + math.log(2 * math.pi)).sum(-1)


def log_weights(model, x, k):
    """`[k, batch]` log importance weights of k draws per image of `x` (`[batch, d]`)."""
    import torch
    import torch.nn.functional as F

    h = model.encoder(x)
    mu, logvar = model.heads[0](h), model.to_logvar(model.heads[1](h))
    z = mu + (0.5 * logvar).exp() * torch.randn((k, *mu.shape), dtype=x.dtype)
    log_w = -log_normal(z, mu, logvar)
    logits = model.out(model.decoder(z))
    log_w = log_w - F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    for q, q_mu, q_scale, p, p_mu, p_scale in model.upper:
        h = q(z)
        mu, logvar = q_mu(h), model.to_logvar(q_scale(h))
        above = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        log_w = log_w - log_normal(above, mu, logvar)
        h = p(above)
        log_w = log_w + log_normal(z, p_mu(h), model.to_logvar(p_scale(h)))
        z = above
    return log_w + log_normal(z, torch.zeros_like(z), torch.zeros_like(z))


def main():
    ensure_venv()
    import numpy as np
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "mnist")
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--images", type=int, default=10000, help="the first N test images")
    ap.add_argument("--seed", type=int, default=0, help="of the test set's binarization")
    ap.add_argument("--draws-seed", type=int, default=1, help="of the draws of z")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, default=8192, help="decoder rows at once (draws × images)")
    ap.add_argument("--f64", action="store_true", help="evaluate in float64")
    ap.add_argument("--write-data", type=Path, help="an MNIST folder whose test set is these images")
    ap.add_argument("--per-image", type=Path, help="a file for each image's estimate, a line each")
    args = ap.parse_args()
    if min(args.k, args.images, args.threads, args.rows) < 1:
        sys.exit("error: --k, --images, --threads and --rows must be at least 1")
    if not args.checkpoint.is_file():
        sys.exit(f"error: no checkpoint at {args.checkpoint}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.draws_seed)
    dtype = torch.float64 if args.f64 else torch.float32

    with safe_open(str(args.checkpoint), framework="pt") as f:
        cfg = json.loads(f.metadata()["config"])
    state = {k: v for k, v in load_file(str(args.checkpoint)).items() if not k.startswith("optimizer.")}
    model = build_model(cfg["model"])
    model.load_state_dict(state, strict=True)
    model.to(dtype)

    dims, pixels = mnist_idx.read(mnist_idx.find(args.data, "test"))
    images = pixels.reshape(dims[0], -1)[: args.images]
    n = len(images)
    if cfg["binarize"]:
        on = np.random.default_rng(args.seed).random(images.shape) < images / 255.0
        images = np.where(on, 255, 0).astype(np.uint8)
    if args.write_data:
        out = args.write_data
        out.mkdir(parents=True, exist_ok=True)
        for kind in ("images", "labels"):
            train = mnist_idx.find(args.data, "train", kind)
            if not (out / train.name).exists():
                (out / train.name).symlink_to(train.resolve())
        mnist_idx.write(out / mnist_idx.FILES[("test", "images")], [n, *dims[1:]], images)
        _, labels = mnist_idx.read(mnist_idx.find(args.data, "test", "labels"))
        mnist_idx.write(out / mnist_idx.FILES[("test", "labels")], [n], labels[:n])

    x_all = torch.from_numpy(images.astype(np.float64) / 255.0).to(dtype)
    per_image = []
    chunk = max(1, min(args.k, args.rows))
    with torch.no_grad():
        for i in range(n):
            x = x_all[i : i + 1]
            parts = []
            for start in range(0, args.k, chunk):
                parts.append(log_weights(model, x, min(chunk, args.k - start)))
            log_w = torch.cat(parts, 0).double()
            per_image.append(-(torch.logsumexp(log_w, 0) - math.log(args.k)).item())
    nll = np.array(per_image)
    if args.per_image:
        args.per_image.write_text("".join(f"{v:.5f}\n" for v in nll))
    sem = nll.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
    print(f"checkpoint {args.checkpoint}: {len(state)} tensors loaded by name")
    print(f"PyTorch: test negative log-likelihood (k = {args.k}, {n} images) {nll.mean():.4f} ± {sem:.4f}")
    summary = args.checkpoint.parent / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        if "test_iwae_nll" in s:
            print(f"the run's summary.json (k = {s['iwae_k']}, all test images, binarized as mnist_vae does): "
                  f"{s['test_iwae_nll']:.4f}")


if __name__ == "__main__":
    main()
