#!/usr/bin/env python3
"""Vigil vs onnxruntime on a CNN package: same model file, same images, same preprocessing.

    swift build -c release --product vigil
    python3 scripts/compare_cnn.py [--model models/retinopathy] [--images models/retinopathy/test_images]
                                   [--vigil .build/release/vigil] [--json out.json]

Measures, for each runtime, batch-1 latency (one preprocessed image -> risk, p50/p90/p99 in
microseconds, in-process) and batch-64 throughput (images per second, best of 4 passes).
onnxruntime runs with intra_op_num_threads 1 and 2 (sequential execution, all graph
optimisations: it fuses Conv+BatchNormalization+Relu too). Vigil runs `vigil bench` with
OpenBLAS at 1 and 2 threads (one batch partition), and with 2 batch partitions (OpenBLAS at
1 thread, Vigil's default for throughput). The images are decoded with Pillow for onnxruntime
and with libpng/libjpeg-turbo for Vigil (decoding is not timed in either). It also checks that
both give the same risks. Timings vary with load on the machine: run it on an idle one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def load_images(model_dir: Path, folder: Path) -> tuple[np.ndarray, list[str]]:
    spec = json.loads((model_dir / "manifest.json").read_text())["input"]
    names = sorted((p.name for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")),
                   key=lambda s: [int(t) if t.isdigit() else t for t in __import__("re").split(r"(\d+)", s)])
    order = {"RGB": [0, 1, 2], "BGR": [2, 1, 0]}[spec["channel_order"]]
    mean = np.asarray(spec["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(spec["std"], np.float32).reshape(1, 3, 1, 1)
    pixels = np.stack([np.asarray(Image.open(folder / n).convert("RGB"))[:, :, order] for n in names])
    x = pixels.astype(np.float32).transpose(0, 3, 1, 2)
    return ((x * np.float32(spec["scale"]) - mean) / std).astype(np.float32), names


def percentiles(samples: list[float]) -> dict[str, float]:
    s = np.sort(np.asarray(samples))
    q = lambda p: float(s[min(len(s) - 1, int(p * len(s)))])
    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": float(s[-1])}


def bench_ort(model: Path, x: np.ndarray, threads: int, calls: int, batch: int, images: int) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    lat = []
    for p in range(2):
        for r in range(calls):
            one = x[r % len(x)][None]
            t0 = time.perf_counter_ns()
            sess.run(None, {name: one})
            if p == 1:
                lat.append((time.perf_counter_ns() - t0) / 1000)
    xb = np.stack([x[i % len(x)] for i in range(batch)])
    batches = (images + batch - 1) // batch
    best = 0.0
    for _ in range(4):
        t0 = time.perf_counter()
        for _ in range(batches):
            sess.run(None, {name: xb})
        best = max(best, batches * batch / (time.perf_counter() - t0))
    risks = sess.run(None, {name: x})[0].ravel()
    return {"batch1": percentiles(lat), "imagesPerSecond": best, "risks": risks}


def bench_vigil(vigil: str, model: Path, folder: Path, threads: int, blas: int, calls: int, batch: int, images: int) -> dict:
    out = subprocess.run(
        [vigil, "bench", "--model", str(model), "--input", str(folder), "--json", "--single-calls", str(calls),
         "--image-batch", str(batch), "--images", str(images), "--threads", str(threads), "--blas-threads", str(blas)],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def vigil_risks(vigil: str, model: Path, folder: Path) -> dict[str, float]:
    out = subprocess.run([vigil, "score", "--model", str(model), "--input", str(folder), "--quiet"],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    header = out[0].split(",")
    i, r = header.index("id"), header.index("risk")
    return {row.split(",")[i]: float(row.split(",")[r]) for row in out[1:]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/retinopathy")
    ap.add_argument("--images", default=None)
    ap.add_argument("--vigil", default=".build/release/vigil")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--throughput-images", type=int, default=4096)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    model_dir = Path(a.model)
    folder = Path(a.images) if a.images else model_dir / "test_images"
    onnx_file = model_dir / json.loads((model_dir / "manifest.json").read_text())["model"]["file"]
    x, names = load_images(model_dir, folder)

    rows = []
    results: dict = {"model": str(model_dir), "images": len(names), "batch": a.batch, "cpu": platform.processor() or platform.machine(),
                     "cores": os.cpu_count(), "onnxruntime": ort.__version__}
    ort_risks = None
    for t in (1, 2):
        r = bench_ort(onnx_file, x, t, a.calls, a.batch, a.throughput_images)
        ort_risks = r.pop("risks")
        results[f"onnxruntime_{t}thread"] = r
        rows.append((f"onnxruntime {ort.__version__}, {t} intra-op thread(s)", r["batch1"], r["imagesPerSecond"]))
    for threads, blas in ((1, 1), (1, 2), (2, 1)):
        r = bench_vigil(a.vigil, model_dir, folder, threads, blas, a.calls, a.batch, a.throughput_images)
        results[f"vigil_{threads}partition_{blas}blas"] = r
        rows.append((f"Vigil, {threads} partition(s), OpenBLAS {blas} thread(s)", r["batch1"], r["imagesPerSecond"]))
    v = vigil_risks(a.vigil, model_dir, folder)
    diff = max(abs(v[n] - float(o)) for n, o in zip(names, ort_risks))
    results["max_abs_risk_difference"] = diff

    print(f"{model_dir} on {len(names)} images ({results['cpu']}, {results['cores']} cores); "
          f"max |Vigil - onnxruntime| risk = {diff:.2e}")
    print(f"| runtime | batch 1 p50 µs | p90 µs | p99 µs | batch {a.batch} images/s |")
    print("|---|---|---|---|---|")
    for name, lat, ips in rows:
        print(f"| {name} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {ips:.0f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
