#!/usr/bin/env python3
"""PyTorch autograd references for Vigil's CNN backward pass and integrated gradients.

    pip install -r Tests/Fixtures/attribution/requirements-gradients.txt
    python3 Tests/Fixtures/attribution/make_gradient_fixtures.py

Writes Tests/Fixtures/attribution/retinopathy_gradients/:
- inputs.csv     id, then the 2,352 float32 values (C, H, W order) of each input tensor: 3 test
                 images of models/retinopathy preprocessed as its manifest says (x * scale - mean)
                 / std in float32, and for each the point halfway along the path from the black
                 image baseline (so the backward pass is also checked off the image itself).
- gradients.csv  id, then d(margin)/d(input) for each row of inputs.csv, by torch.autograd on the
                 shipped model.onnx converted with onnx2torch, its final Sigmoid removed (the
                 margin is the logit, the space Vigil attributes in).
- ig.csv         id, then the integrated gradients of each test image from the black-image
                 baseline with a fixed 256-interval midpoint rule (float32 gradients, float64 sum),
                 the rule Vigil's IntegratedGradients runs when it is not allowed to refine.
Deterministic: no randomness; the images are the package's own PNG files.
"""
from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx2torch import convert
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "models" / "retinopathy"
OUT = Path(__file__).resolve().parent / "retinopathy_gradients"
IMAGES = ["1", "4", "12"]
STEPS = 256


def margin_model() -> torch.nn.Module:
    model = onnx.load(PACKAGE / "model.onnx")
    graph = model.graph
    last = graph.node[-1]
    assert last.op_type == "Sigmoid", last.op_type
    logit = last.input[0]
    graph.node.remove(last)
    out = copy.deepcopy(graph.output[0])
    out.name = logit
    del graph.output[:]
    graph.output.append(out)
    return convert(model).eval()


def preprocess(path: Path, spec: dict) -> np.ndarray:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)  # H, W, C
    scale = np.float32(spec["scale"])
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    x = (pixels * scale - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def gradient(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x[None].copy()).requires_grad_(True)
    net(t)[0, 0].backward()
    return t.grad[0].numpy().astype(np.float32)


def main() -> None:
    torch.set_num_threads(1)
    spec = json.loads((PACKAGE / "manifest.json").read_text())["input"]
    net = margin_model()
    black = ((np.zeros(3, dtype=np.float32) - np.asarray(spec["mean"], dtype=np.float32))
             / np.asarray(spec["std"], dtype=np.float32)).astype(np.float32)
    baseline = np.broadcast_to(black[:, None, None], (3, 28, 28)).astype(np.float32)
    inputs, grads, igs = [], [], []
    for image in IMAGES:
        x = preprocess(PACKAGE / "test_images" / f"{image}.png", spec)
        half = (baseline + np.float32(0.5) * (x - baseline)).astype(np.float32)
        for name, point in [(image, x), (f"{image}_half", half)]:
            inputs.append((name, point))
            grads.append((name, gradient(net, point)))
        total = np.zeros(x.shape, dtype=np.float64)
        for k in range(STEPS):
            alpha = np.float32((k + 0.5) / STEPS)
            point = (baseline + alpha * (x - baseline)).astype(np.float32)
            total += gradient(net, point).astype(np.float64) / STEPS
        igs.append((image, (x.astype(np.float64) - baseline.astype(np.float64)) * total))
    OUT.mkdir(exist_ok=True)
    for fname, rows in [("inputs.csv", inputs), ("gradients.csv", grads), ("ig.csv", igs)]:
        with (OUT / fname).open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["id"] + [f"v{i}" for i in range(3 * 28 * 28)])
            for name, values in rows:
                w.writerow([name] + [repr(float(v)) for v in values.reshape(-1)])
    print(f"wrote {OUT} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
