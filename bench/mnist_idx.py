"""MNIST's IDX files for the Python scripts: found raw or gzip-compressed (`.gz`), as
`mnist_vae` finds them, read as unsigned bytes, and written."""

import gzip
import sys

FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def find(data_dir, split, kind="images"):
    """The path of `split`'s (`train` or `test`) images or labels in `data_dir`, `.gz` first;
    exits with one error line when neither form is there."""
    name = FILES[(split, kind)]
    for path in (data_dir / f"{name}.gz", data_dir / name):
        if path.exists():
            return path
    sys.exit(f"error: {data_dir}: no {name}(.gz)")


def read(path):
    """An IDX file of unsigned bytes as (dims, a flat uint8 array)."""
    import numpy as np

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return dims, np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8)


def write(path, dims, data):
    """Writes unsigned bytes as an IDX file (type code 0x08)."""
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(header + data.tobytes())


def images(data_dir, split):
    """`split`'s images as a uint8 array of one row per image."""
    dims, data = read(find(data_dir, split))
    return data.reshape(dims[0], -1)
