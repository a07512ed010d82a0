#!/usr/bin/env python3
"""Times every preset and architecture's training step (and the k-sample evaluation) at 1
and at 2 threads, interleaved in one run, and flags any configuration where the second
thread slows the step down.

Each run of `step_timer` is pinned with `taskset` to as many CPUs as it has threads, so a
thread count is a core count. The median over rounds of each configuration's median step
is compared: `2t/1t` above 1 + `--tolerance` is a slowdown, and the script then exits 1.

    python3 bench/thread_scaling.py [--rounds 3] [--tolerance 0.03] [--only burda]
    python3 bench/thread_scaling.py --baseline /tmp/build-COMMIT/target/release/examples/step_timer
    python3 bench/thread_scaling.py --vector-path avx2 --exe DIR/release/examples/step_timer

With `--baseline`, another build's `step_timer` (a worktree of another commit, say) is timed
interleaved with this one on every configuration, and the table shows both; the slowdowns
flagged are this build's.

With `--vector-path avx2`, both builds run their AVX2 + FMA kernels on a CPU that also has
AVX-512, as on a host without it; matrixmultiply chooses its kernel when it is built, so
for the whole step to run as there, build the `step_timer` given to `--exe` (and the
baseline) with `MMTEST_FEATURE=avx,avx2,fma,sse2` and a `CARGO_TARGET_DIR` of its own.

It needs nothing beyond Python's standard library and a release build of `step_timer`
(which it makes). CI does not run it: its numbers belong to the host it runs on.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = ROOT / "target" / "release" / "examples" / "step_timer"

# name, step_timer flags, timed steps (fewer for the slow steps, so a round takes seconds).
CONFIGS = [
    ("default (batch 128)", [], 150),
    ("conv (batch 128)", ["--arch", "conv"], 40),
    ("burda 1L VAE (batch 20)", ["--preset", "burda"], 400),
    ("burda 1L IWAE k=5", ["--preset", "burda", "--objective", "iwae", "--k", "5"], 300),
    ("burda 1L VAE k=5", ["--preset", "burda", "--k", "5"], 300),
    ("burda 1L analytic-KL ELBO k=5", ["--preset", "burda", "--objective", "elbo", "--k", "5"], 300),
    ("burda 1L IWAE k=50", ["--preset", "burda", "--objective", "iwae", "--k", "50"], 60),
    ("burda 2L VAE", ["--preset", "burda", "--stochastic-layers", "2", "--objective", "elbo-mc"], 300),
    ("burda 2L IWAE k=5", ["--preset", "burda", "--stochastic-layers", "2", "--objective", "iwae", "--k", "5"], 200),
    ("burda 1L eval k=5000 (per image)", ["--preset", "burda", "--eval-k", "5000", "--warmup", "1"], 6),
]


def cpus(threads):
    """The first `threads` CPUs this process may run on, as taskset's list."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < threads:
        sys.exit(f"thread_scaling: {threads} threads need {threads} CPUs, this process may use {len(allowed)}")
    return ",".join(str(c) for c in allowed[:threads])


def step_ms(exe, flags, steps, threads):
    """The median milliseconds of one run of the step_timer `exe` (`flags` last)."""
    cmd = ["taskset", "-c", cpus(threads), str(exe), "--threads", str(threads), "--steps", str(steps)] + flags
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"thread_scaling: {' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])["median_ms"]


def cpu_kind():
    """`cpu family`, model name and the widest vector extension, from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown host"
    field = lambda key: next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith(key)), "?")
    flags = field("flags").split()
    width = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return f"cpu family {field('cpu family')}, {field('model name')}, {width}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tolerance", type=float, default=0.03, help="a 2t/1t ratio above 1 + this is a slowdown")
    ap.add_argument("--only", help="only the configurations whose name contains this")
    ap.add_argument("--baseline", type=Path, help="another build's step_timer, timed interleaved with this one")
    ap.add_argument("--exe", type=Path, help="the step_timer to time (default: this tree's release build, made first)")
    ap.add_argument("--vector-path", choices=["portable", "avx2", "avx512"], help="the widest kernels both builds use")
    args = ap.parse_args()
    exe = args.exe or EXE
    if args.exe is None:
        subprocess.check_call(["cargo", "build", "--release", "--quiet", "--example", "step_timer"], cwd=ROOT)
    for given in (args.baseline, args.exe):
        if given is not None and not given.is_file():
            sys.exit(f"thread_scaling: {given}: no such file")
    path_flags = ["--vector-path", args.vector_path] if args.vector_path else []
    builds = ([args.baseline] if args.baseline else []) + [exe]
    configs = [c for c in CONFIGS if args.only is None or args.only in c[0]]
    times = {(b, name, t): [] for b in builds for name, _, _ in configs for t in (1, 2)}
    for r in range(args.rounds):
        for name, flags, steps in configs:
            for t in (1, 2):
                for b in builds:
                    times[(b, name, t)].append(step_ms(b, flags + path_flags, steps, t))
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)
    path = f"; vector path {args.vector_path}" if args.vector_path else ""
    print(f"host: {cpu_kind()}{path}; {args.rounds} rounds, interleaved, median ms per step")
    print()
    heads = "".join(f" {'baseline ' if b != exe else ''}1 thread | 2 threads | 2t / 1t |" for b in builds)
    print(f"| configuration |{heads} |")
    print("|---|" + "---|---|---|" * len(builds) + "---|")
    slow = []
    for name, _, _ in configs:
        cells = ""
        for b in builds:
            one, two = (statistics.median(times[(b, name, t)]) for t in (1, 2))
            ratio = two / one
            cells += f" {one:.3f} | {two:.3f} | {ratio:.2f} |"
        flag = "**slower**" if ratio > 1 + args.tolerance else ""
        if flag:
            slow.append(name)
        print(f"| {name} |{cells} {flag} |")
    if slow:
        print(f"\nthe second thread slows down: {', '.join(slow)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
