#!/usr/bin/env python3
"""Logistic batch scoring against the machine's memory bandwidth (issue 8's logistic target).

    python3 Benchmarks/bandwidth.py [--vigil PATH] [--rows 2000000] [--rounds 5]

A logistic model reads each row's features once (40 float64 = 320 bytes) and does 40 multiply-adds,
so scoring a cohort larger than the caches is bound by memory bandwidth. This script measures,
alternating rounds, on the same machine:

  copy       numpy: copy a --rows x 40 float64 array (bytes copied per second, the usual "copy
             bandwidth" figure; the traffic is twice that: a read and a write)
  read       numpy: sum the same array (bytes read per second)
  numpy      X @ w + b then the sigmoid, on the same array (input bytes per second)
  vigil      `vigil bench` on Benchmarks/models/logistic40/model.linear.json with --rows rows
             cycled from rows.csv into one array of --rows x 40 float64 (640 MB for 2M rows), scored
             in batches of 10,000 on one thread: input bytes per second = rows/s x 320

and prints each as GB/s and Vigil's share of the copy and read figures (best of --rounds). The
logistic model comes from make_models.py (run it first, or this script makes logistic40 itself).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES = 40


def best_rate(fn, nbytes: int, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = max(best, nbytes / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vigil", default=str(HERE.parent / ".build" / "release" / "vigil"))
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    model = HERE / "models" / "logistic40" / "model.linear.json"
    if not model.exists():
        sys.path.insert(0, str(HERE))
        import make_models  # noqa: E402

        make_models.make_logistic40()
    rows = args.rows
    nbytes = rows * FEATURES * 8
    rng = np.random.default_rng(7)
    X = rng.standard_normal((rows, FEATURES))
    Y = np.empty_like(X)
    w = rng.standard_normal(FEATURES)

    def numpy_score():
        z = X @ w + 0.1
        return 1 / (1 + np.exp(-z))

    figures: dict[str, list[float]] = {"copy": [], "read": [], "numpy": [], "vigil": []}
    for _ in range(args.rounds):
        figures["copy"].append(best_rate(lambda: np.copyto(Y, X), nbytes, 1))
        figures["read"].append(best_rate(lambda: X.sum(), nbytes, 1))
        figures["numpy"].append(best_rate(numpy_score, nbytes, 1))
        out = subprocess.run(
            [args.vigil, "bench", "--model", str(model), "--input", str(model.parent / "rows.csv"), "--rows", str(rows),
             "--batch", "10000", "--threads", "1", "--single-calls", "100", "--json"],
            check=True, capture_output=True, text=True).stdout
        figures["vigil"].append(json.loads(out)["batchRawRowsPerSecond"] * FEATURES * 8)
    best = {k: max(v) for k, v in figures.items()}
    print(f"logistic, {FEATURES} float64 features, {rows:,} rows ({nbytes / 1e6:.0f} MB), 1 thread, best of {args.rounds} rounds")
    print(f"  {'copy (numpy)':<22}{best['copy'] / 1e9:7.2f} GB/s")
    print(f"  {'read (numpy sum)':<22}{best['read'] / 1e9:7.2f} GB/s")
    print(f"  {'numpy X @ w, sigmoid':<22}{best['numpy'] / 1e9:7.2f} GB/s of input")
    v = best["vigil"]
    print(f"  {'vigil':<22}{v / 1e9:7.2f} GB/s of input = {v / (FEATURES * 8) / 1e6:.1f}M rows/s: "
          f"{100 * v / best['copy']:.0f}% of copy, {100 * v / best['read']:.0f}% of read bandwidth")


if __name__ == "__main__":
    main()
