#!/usr/bin/env python3
"""Loads a checkpoint written by `mnist_vae` into PyTorch and prints PyTorch's test negative
ELBO, beside the one the run reported.

It rebuilds the model from the configuration stored in the checkpoint's metadata (hidden
layers, activation, latent size, likelihood), loads every weight by its name with
`load_state_dict(strict=True)` (so a name or shape that PyTorch's model of the same shape
would not have is an error), and evaluates the negative ELBO per test image with one sample
of z, as the run does.

    python3 bench/load_in_pytorch.py runs/mnist_vae/checkpoint.safetensors [--data data/mnist]

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


def default_config(arch):
    """The configuration `mnist_vae` stores for its default recipe with `--arch arch` (mlp:
    pytorch/examples' 784-400-20; conv: 1→32→64 channels of 4×4 stride-2 convolutions and
    a dense layer to the latent)."""
    conv = {"side": 28, "channels": [32, 64]} if arch == "conv" else None
    return {"model": {"input": 784, "hidden": [] if conv else [400], "decoder_hidden": None, "latent": 20,
                      "activation": "relu", "likelihood": "bernoulli", "conv": conv}}


def build_model(cfg):
    """The PyTorch model with the names `mnist_vae` gives this shape's parameters."""
    import torch
    from torch import nn

    m = cfg["model"]
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}[m["activation"]]
    enc_sizes = m["hidden"]
    dec_sizes = m["decoder_hidden"] if m["decoder_hidden"] is not None else enc_sizes[::-1]
    learned = m["likelihood"] == "gaussian-learned"
    conv = m.get("conv")
    example = len(enc_sizes) == 1 and dec_sizes == enc_sizes and m["activation"] == "relu" and not conv
    # A convolutional model: 4x4 stride-2 convolutions halving the side, then the dense layers.
    chans = conv["channels"] if conv else []
    side = conv["side"] >> len(chans) if conv else 0
    flat = chans[-1] * side * side if conv else m["input"]

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            if example:
                # pytorch/examples' vae/main.py, plus fc5 for a learned variance.
                h = enc_sizes[0]
                self.fc1 = nn.Linear(m["input"], h)
                self.fc21 = nn.Linear(h, m["latent"])
                self.fc22 = nn.Linear(h, m["latent"])
                self.fc3 = nn.Linear(m["latent"], h)
                self.fc4 = nn.Linear(h, m["input"])
                if learned:
                    self.fc5 = nn.Linear(h, m["input"])
            else:
                layers, c = [], 1
                for o in chans:
                    layers += [nn.Conv2d(c, o, 4, 2, 1), act()]
                    c = o
                if conv:
                    layers.append(nn.Flatten())
                width = flat
                for h in enc_sizes:
                    layers += [nn.Linear(width, h), act()]
                    width = h
                self.encoder = nn.Sequential(*layers)
                self.mu = nn.Linear(width, m["latent"])
                self.logvar = nn.Linear(width, m["latent"])
                layers, width = [], m["latent"]
                for h in dec_sizes + ([flat] if conv else []):
                    layers += [nn.Linear(width, h), act()]
                    width = h
                if conv:
                    layers.append(nn.Unflatten(1, (chans[-1], side, side)))
                    for o, c in zip(chans[::-1], chans[::-1][1:]):
                        layers += [nn.ConvTranspose2d(o, c, 4, 2, 1), act()]
                self.decoder = nn.Sequential(*layers)
                head = (lambda: nn.ConvTranspose2d(chans[0], 1, 4, 2, 1)) if conv else (lambda: nn.Linear(width, m["input"]))
                self.out = head()
                if learned:
                    self.out_logvar = head()

        def encode(self, x):
            if example:
                h = torch.relu(self.fc1(x))
                return self.fc21(h), self.fc22(h)
            if conv:
                x = x.reshape(-1, 1, conv["side"], conv["side"])
            h = self.encoder(x)
            return self.mu(h), self.logvar(h)

        def decode(self, z):
            if example:
                h = torch.relu(self.fc3(z))
                return self.fc4(h), (self.fc5(h) if learned else None)
            h = self.decoder(z)
            flat_out = lambda t: t.flatten(1) if conv else t
            return flat_out(self.out(h)), (flat_out(self.out_logvar(h)) if learned else None)

    return VAE()


def neg_elbo_sum(model, x, likelihood):
    import torch
    import torch.nn.functional as F

    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    out, out_logvar = model.decode(z)
    d = x.shape[1]
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(out, x, reduction="sum")
    elif likelihood == "gaussian":
        recon = 0.5 * ((x - out) ** 2).sum() + 0.5 * d * math.log(2 * math.pi) * x.shape[0]
    else:
        recon = (0.5 * out_logvar + (x - out) ** 2 / (2 * out_logvar.exp())).sum()
        recon = recon + 0.5 * d * math.log(2 * math.pi) * x.shape[0]
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (recon + kl).item()


def main():
    ensure_venv()
    import numpy as np
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "mnist")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with safe_open(str(args.checkpoint), framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    history = json.loads(meta["history"])
    m = cfg["model"]
    if m.get("upper") or m.get("sigma", "logvar") != "logvar":
        sys.exit("error: this script rebuilds one-stochastic-layer models with a log-variance head only")
    state = {k: v for k, v in load_file(str(args.checkpoint)).items() if not k.startswith("optimizer.")}
    model = build_model(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()

    torch.manual_seed(args.seed)
    images = mnist_idx.images(args.data, "test").astype(np.float32) / 255.0
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(images), 1000):
            x = torch.from_numpy(images[start : start + 1000])
            if cfg["binarize"]:
                x = torch.bernoulli(x)
            total += neg_elbo_sum(model, x, cfg["model"]["likelihood"])
    ours = history[-1][2] if history else float("nan")
    names = ", ".join(list(state)[:4]) + (", …" if len(state) > 4 else "")
    print(f"checkpoint {args.checkpoint}: {len(state)} tensors loaded by name ({names})")
    print(f"test negative ELBO after epoch {len(history)}: ours {ours:.4f}, PyTorch {total / len(images):.4f}")


if __name__ == "__main__":
    main()
