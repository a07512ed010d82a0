"""Writes the page's digits: the first 5,000 training and 2,000 test images (and labels) of
data/mnist, as gzipped IDX files with a fixed header, so the output is the same bytes on
every run. Run from the repository's root: python3 web/data/subset.py"""

import gzip
import struct

SETS = [("train", 5000), ("t10k", 2000)]


def subset(src, dst, n):
    raw = gzip.open(src).read()
    rank = raw[3]
    dims = list(struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank]))
    item = 1
    for d in dims[1:]:
        item *= d
    data = raw[4 + 4 * rank :][: n * item]
    dims[0] = n
    with open(dst, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
        g.write(raw[:4] + struct.pack(">" + "I" * rank, *dims) + data)


for name, n in SETS:
    for kind in ("images-idx3", "labels-idx1"):
        subset(f"data/mnist/{name}-{kind}-ubyte.gz", f"web/data/{name}-{n}-{kind}-ubyte.gz", n)
