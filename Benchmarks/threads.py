#!/usr/bin/env python3
"""Quick side-by-side of lgb500 batch throughput on 1 and 2 threads: lleaves vs Vigil, alternating.

    python3 Benchmarks/threads.py [--vigil PATH] [--rounds 2]

For a moment when the machine's cores are idle (compare.py's 2-thread pass takes minutes and
shared machines rarely stay idle that long). lleaves: predict(n_jobs=T), best of 3 passes over
the 10,000 rows of models/lgb500/rows.csv; Vigil: `vigil bench --threads T` on the same file.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess

import compare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vigil")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    vigil = compare.find_vigil(args.vigil)
    lgb = compare.MODELS / "lgb500"
    _, _, X = compare.read_rows(lgb / "rows.csv")
    rt = compare.Runtimes.__new__(compare.Runtimes)  # only its lleaves loader
    rt.lgb_dir = lgb
    model = rt.compile_lleaves()
    print(f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for _ in range(args.rounds):
        for t in (1, 2):
            ll = compare.batch_rows_per_s(lambda A: model.predict(A, n_jobs=t), X, len(X))
            out = subprocess.run([str(vigil), "bench", "--json", "--model", str(lgb / "model.txt"), "--input",
                                  str(lgb / "rows.csv"), "--rows", "10000", "--batch", "10000", "--threads", str(t),
                                  "--single-calls", "100"], capture_output=True, text=True, check=True).stdout
            v = json.loads(out)["batchRawRowsPerSecond"]
            print(f"threads {t}: lleaves {ll:,.0f} rows/s, Vigil {v:,.0f} rows/s, Vigil/lleaves {v / ll:.2f}x", flush=True)


if __name__ == "__main__":
    main()
