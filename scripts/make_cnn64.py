#!/usr/bin/env python3
"""The issue's benchmark shape: the shipped retinopathy CNN (3 convolutions, batch norm, ReLU,
max pooling, global average pooling, one dense unit) on 3x64x64 inputs instead of 3x28x28.

The network ends in a global average pool, so the same weights take any image size: this copies
models/retinopathy to OUT, sets the ONNX input and the manifest to 3x64x64 (and the model's
sha256), and writes the test images resized to 64x64 (bilinear). The risks mean nothing
clinically; the package exists to time the 64x64 shape side by side:

    python3 scripts/make_cnn64.py /tmp/retinopathy64
    python3 scripts/compare_cnn.py --model /tmp/retinopathy64
"""
import hashlib
import json
import shutil
import sys
from pathlib import Path

import onnx
from PIL import Image

src = Path(__file__).resolve().parent.parent / "models" / "retinopathy"
out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/retinopathy64")
if out.exists():
    shutil.rmtree(out)
shutil.copytree(src, out)
model = onnx.load(str(src / "model.onnx"))
dims = model.graph.input[0].type.tensor_type.shape.dim
dims[2].dim_value = 64
dims[3].dim_value = 64
onnx.checker.check_model(model)
onnx.save(model, str(out / "model.onnx"))
manifest = json.loads((src / "manifest.json").read_text())
manifest["input"]["shape"] = [3, 64, 64]
for f in manifest["features"]:
    if f["name"] == "image":
        f["shape"] = [3, 64, 64]
manifest["model"]["sha256"] = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
(out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
for p in sorted((out / "test_images").iterdir()):
    if p.suffix.lower() == ".png":
        Image.open(p).convert("RGB").resize((64, 64), Image.BILINEAR).save(p)
print(f"wrote {out}")
