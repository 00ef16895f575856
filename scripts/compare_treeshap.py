#!/usr/bin/env python3
"""TreeSHAP timing: Vigil (release build, in-process via `vigil bench --explain`) against
LightGBM `predict(pred_contrib=True)` and shap's TreeExplainer, on one model and the same rows,
in one run. Also checks that Vigil's contributions equal LightGBM's on those rows.

Usage (repository root; Python 3.11 with lightgbm 4.6.0 and shap 0.51.0, e.g. the venv of
Tests/Fixtures/attribution/README.md):

    swift build -c release --product vigil
    /tmp/attr-shap/bin/python scripts/compare_treeshap.py                # trains the 500-tree model
    /tmp/attr-shap/bin/python scripts/compare_treeshap.py --model Tests/Fixtures/lightgbm/diabetes130_binary/model.txt \
        --input Tests/Fixtures/lightgbm/diabetes130_binary/input.csv

Without --model it trains a LightGBM binary model (500 trees, num_leaves 31, 20 numeric features,
5% missing, 20,000 synthetic rows, seed 0) into --workdir. Rows: --rows rows (default 1,000),
from --input cycled, or fresh synthetic rows. Each timing is the best of --repeats runs; single-row
figures are the median over --single rows. shap's TreeExplainer hands a LightGBM model to LightGBM's
pred_contrib; the "shap C++" line switches the parsed model to shap's own TreeSHAP (single-threaded;
skipped when shap cannot parse the model, e.g. categorical splits).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def synthetic(n, f, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    logit = X[:, 0] + 0.8 * X[:, 1] * X[:, 2] - 0.5 * np.abs(X[:, 3]) + 0.3 * np.sin(3 * X[:, 4]) + 0.2 * X[:, 5:10].sum(1)
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X, y


def read_input(path):
    with open(path) as fh:
        lines = fh.read().splitlines()
    header = lines[0].split(",")
    rows = [[float("nan") if c in ("", "NaN", "NA", "?") else float(c) for c in line.split(",")[1:]] for line in lines[1:]]
    return header[1:], np.array(rows, dtype=np.float64)


def write_input(path, names, X):
    with open(path, "w") as fh:
        fh.write(",".join(["id"] + names) + "\n")
        for i, row in enumerate(X):
            fh.write(",".join([str(i)] + ["" if np.isnan(v) else repr(float(v)) for v in row]) + "\n")


def best_of(repeats, fn):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def single_row_us(fn, X, count):
    fn(X[:1])  # warm-up
    times = []
    for i in range(count):
        row = X[i % len(X):i % len(X) + 1]
        t0 = time.perf_counter()
        fn(row)
        times.append((time.perf_counter() - t0) * 1e6)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="LightGBM model.txt (default: train the 500-tree model)")
    ap.add_argument("--input", help="CSV with id + the model's features (default: synthetic rows)")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for the batch runs")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--single", type=int, default=300, help="single-row calls for the latency medians")
    ap.add_argument("--vigil", default=str(REPO / ".build" / "release" / "vigil"))
    ap.add_argument("--workdir", default=tempfile.mkdtemp(prefix="vigil-treeshap-"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    import warnings
    warnings.filterwarnings("ignore")   # shap's notes on LightGBM binary output shapes, per call
    import lightgbm as lgb
    import shap

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if a.model:
        model_path = Path(a.model)
        booster = lgb.Booster(model_file=str(model_path))
    else:
        X_train, y_train = synthetic(20000, 20, seed=0)
        params = dict(objective="binary", num_leaves=31, learning_rate=0.05, min_data_in_leaf=20, seed=0,
                      deterministic=True, num_threads=1, verbose=-1, force_col_wise=True)
        booster = lgb.train(params, lgb.Dataset(X_train, y_train, feature_name=["f%d" % j for j in range(20)]), 500)
        model_path = work / "model.txt"
        booster.save_model(str(model_path))
    names = booster.feature_name()
    if a.input:
        header, source = read_input(a.input)
        assert header == names, "input columns must be the model's features in order"
        X = source[np.arange(a.rows) % len(source)]
    else:
        X, _ = synthetic(a.rows, len(names), seed=1)
    rows_csv = work / "rows.csv"
    write_input(rows_csv, names, X)
    dump = booster.dump_model()
    trees = len(dump["tree_info"])
    leaves = sum(t["num_leaves"] for t in dump["tree_info"])

    # Vigil: release binary, timing in-process (vigil bench --explain).
    bench = subprocess.run(
        [a.vigil, "bench", "--model", str(model_path), "--input", str(rows_csv), "--rows", str(a.rows),
         "--batch", str(a.rows), "--threads", str(a.threads), "--single-calls", str(a.single), "--explain", "--json"],
        check=True, capture_output=True, text=True)
    vb = json.loads(bench.stdout)
    bench1 = subprocess.run(
        [a.vigil, "bench", "--model", str(model_path), "--input", str(rows_csv), "--rows", str(a.rows),
         "--batch", str(a.rows), "--threads", "1", "--single-calls", "10", "--explain", "--json"],
        check=True, capture_output=True, text=True)
    vb1 = json.loads(bench1.stdout)
    # Correctness on the same rows: Vigil's --explain all against pred_contrib.
    scored = subprocess.run([a.vigil, "score", "--model", str(model_path), "--input", str(rows_csv), "--explain", "all", "--quiet"],
                            check=True, capture_output=True, text=True)
    lines = scored.stdout.splitlines()
    head = lines[0].split(",")
    cols = [i for i, h in enumerate(head) if h.startswith("contrib_")]
    vigil_phi = np.array([[float(line.split(",")[i]) for i in cols] for line in lines[1:]])
    lgb_phi = booster.predict(X, pred_contrib=True)
    max_diff = float(np.max(np.abs(vigil_phi - lgb_phi)))

    results = {"model": str(model_path), "trees": trees, "leaves": leaves, "features": len(names), "rows": a.rows,
               "threads": a.threads, "cpu_count": os.cpu_count(), "max_abs_vigil_minus_lightgbm": max_diff,
               "lightgbm": lgb.__version__, "shap": shap.__version__}
    res = {}
    res["vigil"] = {"batch_s": a.rows / vb["batchExplainRowsPerSecond"], "batch_1thread_s": a.rows / vb1["batchExplainRowsPerSecond"],
                    "single_us": vb["singleExplain"]["p50"]}
    res["lightgbm pred_contrib"] = {
        "batch_s": best_of(a.repeats, lambda: booster.predict(X, pred_contrib=True, num_threads=a.threads)),
        "batch_1thread_s": best_of(a.repeats, lambda: booster.predict(X, pred_contrib=True, num_threads=1)),
        "single_us": single_row_us(lambda r: booster.predict(r, pred_contrib=True, num_threads=1), X, a.single)}
    explainer = shap.TreeExplainer(booster)
    res["shap TreeExplainer (-> LightGBM)"] = {
        "batch_s": best_of(a.repeats, lambda: explainer.shap_values(X)),
        "single_us": single_row_us(lambda r: explainer.shap_values(r), X, a.single)}
    try:
        internal = shap.TreeExplainer(booster)
        internal.model.model_type = "internal"
        phi = np.asarray(internal.shap_values(X, check_additivity=False))
        res["shap TreeExplainer (shap C++)"] = {
            "batch_s": best_of(a.repeats, lambda: internal.shap_values(X, check_additivity=False)),
            "single_us": single_row_us(lambda r: internal.shap_values(r, check_additivity=False), X, a.single)}
        results["max_abs_shap_cpp_minus_lightgbm"] = float(np.max(np.abs(phi - lgb_phi[:, :-1])))
    except Exception as e:  # noqa: BLE001 - report and go on
        results["shap_cpp_skipped"] = "%s: %s" % (type(e).__name__, e)
    results["timings"] = res

    if a.json:
        print(json.dumps(results, indent=1))
        return
    print("model %s: %d trees, %d leaves, %d features; %d rows; batch threads %d of %d cores"
          % (results["model"], trees, leaves, len(names), a.rows, a.threads, results["cpu_count"]))
    print("max |Vigil - LightGBM pred_contrib| = %.3g" % max_diff)
    if "max_abs_shap_cpp_minus_lightgbm" in results:
        d = results["max_abs_shap_cpp_minus_lightgbm"]
        print("max |shap C++ - LightGBM pred_contrib| = %.3g%s" % (d, "" if d <= 1e-6 else
              "  (shap's own parser does not route this model like LightGBM, e.g. categorical splits:"
              " its timing is of a different computation)"))
    elif "shap_cpp_skipped" in results:
        print("shap C++ skipped: " + results["shap_cpp_skipped"])
    print("%-34s %14s %14s %14s %16s" % ("", "batch ms", "1-thread ms", "rows/s", "single row µs"))
    for name, r in res.items():
        one = r.get("batch_1thread_s")
        print("%-34s %14.1f %14s %14.0f %16.1f" % (name, r["batch_s"] * 1e3, "%.1f" % (one * 1e3) if one else "-",
                                                  a.rows / r["batch_s"], r["single_us"]))


if __name__ == "__main__":
    sys.exit(main())
