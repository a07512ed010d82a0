#!/usr/bin/env python3
"""Compares two builds' `step_timer` on one configuration, or with `--products` their
`product_timer` on the layers' matrix products: the two run in turn, round after round.

On a host whose speed drifts from one minute to the next, a ratio taken within a round
holds where milliseconds from separate runs do not. Each run is pinned with `taskset` to as
many CPUs as it has threads. Swapping the two builds (`--base` and `--new`) shows whether the
order within a round biases the ratio. For steps the comparison is the median of the
per-round ratios (new / base); for products, each product's fastest call over all rounds
in each build, which other work on the host can only slow down, and their ratio.

    python3 bench/alternate.py --base /tmp/build-COMMIT/target/release/examples/step_timer \\
        --rounds 21 --threads 2 -- --preset burda --steps 1000
    python3 bench/alternate.py --products \\
        --base /tmp/build-COMMIT/target/release/examples/product_timer --rounds 6 --threads 1

Everything after `--` goes to both timers (`--threads` is added). `--new` defaults to this
tree's release build. It needs nothing beyond Python's standard library. CI does not run
it: its numbers belong to the host it runs on.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "target" / "release" / "examples"


def run(exe, threads, flags):
    """One run of `exe`: its JSON lines."""
    cpus = f"0-{threads - 1}"
    cmd = ["taskset", "-c", cpus, str(exe), "--threads", str(threads), *flags]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited with {out.returncode}: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.strip().splitlines()]


def median_ms(exe, threads, flags):
    """One run of a `step_timer`: its median step in ms."""
    return run(exe, threads, flags)[-1]["median_ms"]


def compare_products(args, flags):
    """Each product's fastest call in each build over `args.rounds` alternating rounds."""
    fastest = {}
    for r in range(args.rounds):
        for build, exe in (("base", args.base), ("new", args.new)):
            for line in run(exe, args.threads, flags):
                key = (line["product"], build)
                fastest[key] = min(fastest.get(key, float("inf")), line["fastest_us"])
        print(f"round {r + 1} of {args.rounds} done", flush=True)
    for name in dict.fromkeys(p for p, _ in fastest):
        base, new = fastest.get((name, "base")), fastest.get((name, "new"))
        if base is None or new is None:
            print(f"{name}: timed by one build only")
        else:
            print(f"{name}: base {base:.1f} us, new {new:.1f} us, ratio {new / base:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--products", action="store_true", help="compare product_timer builds")
    ap.add_argument("--base", type=Path, required=True, help="the baseline build's timer")
    ap.add_argument("--new", type=Path, help="the build compared (default: this tree's)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("flags", nargs=argparse.REMAINDER, help="-- then the timers' flags")
    args = ap.parse_args()
    if args.rounds < 1 or args.threads < 1:
        sys.exit("error: --rounds and --threads must be at least 1")
    if args.new is None:
        args.new = EXAMPLES / ("product_timer" if args.products else "step_timer")
    for exe in (args.base, args.new):
        if not exe.is_file():
            sys.exit(f"error: no timer at {exe}")
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    if args.products:
        return compare_products(args, flags)
    rows = []
    for r in range(args.rounds):
        base = median_ms(args.base, args.threads, flags)
        new = median_ms(args.new, args.threads, flags)
        rows.append((base, new))
        print(f"round {r + 1}: base {base:.3f} ms, new {new:.3f} ms, ratio {new / base:.3f}", flush=True)
    ratios = [n / b for b, n in rows]
    print(
        f"median: base {statistics.median(b for b, _ in rows):.3f} ms, "
        f"new {statistics.median(n for _, n in rows):.3f} ms, "
        f"ratio {statistics.median(ratios):.3f} (rounds {min(ratios):.2f} to {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
