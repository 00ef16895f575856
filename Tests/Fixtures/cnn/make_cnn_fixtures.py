#!/usr/bin/env python3
"""Builds the CNN test fixtures with onnx.helper and records onnxruntime's outputs on real
RetinaMNIST images (MedMNIST v2, CC BY 4.0; /work/shared/data/retinamnist/retinamnist.npz).

    python3 Tests/Fixtures/cnn/make_cnn_fixtures.py [--npz PATH]
    (onnx 1.19.1, onnxruntime 1.23.2, numpy, Pillow; see Tests/Fixtures/requirements.txt)

Writes
- cnn/deep_resnet/: a residual CNN with batch norm everywhere (folded and standalone), a
  projection shortcut, depthwise / grouped / dilated / strided convolutions, LeakyRelu, Clip,
  MaxPool (ceil_mode), AveragePool, Concat, a squeeze-excitation gate (GlobalAveragePool, Conv,
  Sigmoid, Mul), Reshape, MatMul + Add, Tanh, Dropout, Gemm and a final Sigmoid. Weights are
  seeded random (He initialisation, random batch-norm statistics), not trained: the fixture
  tests arithmetic, not medicine. A model package (manifest.json with the retinopathy
  preprocessing), images/ (32 test PNGs and 8 JPEGs) and expected.csv (id, image,
  reference_risk = onnxruntime on the pixels Pillow decodes).
- cnn/mlp_softmax/: a tabular MLP (Gemm, Relu, Gemm, Softmax over 3 classes) with input.csv and
  expected.csv, for the tabular path of the graph loader.
- malformed/cnn_*.onnx: an unsupported operator (LRN), a tensor stored as external data, an
  unsupported attribute value (auto_pad), a BatchNormalization in training mode.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent
SEED = 20240611
MEAN = [0.3984, 0.2447, 0.1558]
STD = [0.2983, 0.2005, 0.1507]
SCALE = 1.0 / 255.0


def preprocess(nhwc: np.ndarray) -> np.ndarray:
    """uint8 [N,H,W,3] -> float32 [N,3,H,W] as the manifest's `input` says (float32, in order)."""
    x = nhwc.astype(np.float32).transpose(0, 3, 1, 2)
    mean = np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, np.float32).reshape(1, 3, 1, 1)
    return ((x * np.float32(SCALE) - mean) / std).astype(np.float32)


class Graph:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out + "_node", **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, *, group: int = 1, bias: bool = False, gain: float = 2.0, **attrs) -> str:
        fan_in = cin // group * k * k
        w = self.rng.normal(0, np.sqrt(gain / fan_in), (cout, cin // group, k, k)).astype(np.float32)
        inputs = [x, self.const("w", w)]
        if bias:
            inputs.append(self.const("b", self.rng.normal(0, 0.1, cout).astype(np.float32)))
        return self.node("Conv", inputs, kernel_shape=[k, k], group=group, **attrs)

    def bn(self, x: str, c: int) -> str:
        r = self.rng
        return self.node(
            "BatchNormalization",
            [x, self.const("gamma", r.uniform(0.7, 1.3, c).astype(np.float32)),
             self.const("beta", r.normal(0, 0.1, c).astype(np.float32)),
             self.const("mean", r.normal(0, 0.2, c).astype(np.float32)),
             self.const("var", r.uniform(0.5, 1.5, c).astype(np.float32))],
            epsilon=1e-5)


def deep_resnet(seed: int, final_bias: float) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    g = Graph(rng)
    x = "image"
    # Stem.
    s = g.node("Relu", [g.bn(g.conv(x, 3, 16, 3, pads=[1, 1, 1, 1]), 16)])
    # Residual block, identity shortcut.
    h = g.node("Relu", [g.bn(g.conv(s, 16, 16, 3, pads=[1, 1, 1, 1]), 16)])
    h = g.bn(g.conv(h, 16, 16, 3, pads=[1, 1, 1, 1], gain=1.0), 16)
    y = g.node("Relu", [g.node("Add", [h, s])])
    y = g.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)  # 28 -> 14
    # Residual block with a projection shortcut: LeakyRelu, depthwise + Clip (ReLU6), pointwise.
    a = g.node("LeakyRelu", [g.bn(g.conv(y, 16, 32, 3, pads=[1, 1, 1, 1]), 32)], alpha=0.1)
    a = g.node("Clip", [g.bn(g.conv(a, 32, 32, 3, group=32, pads=[1, 1, 1, 1]), 32),
                        g.const("lo", np.array(0, np.float32)), g.const("hi", np.array(6, np.float32))])
    a = g.bn(g.conv(a, 32, 32, 1, gain=1.0), 32)
    sc = g.bn(g.conv(y, 16, 32, 1, gain=1.0), 32)
    y = g.node("Relu", [g.node("Add", [a, sc])])
    # Two branches joined on the channel axis: grouped dilated conv; average pool + 1x1 conv.
    b1 = g.node("Relu", [g.bn(g.conv(y, 32, 16, 3, group=4, pads=[2, 2, 2, 2], dilations=[2, 2]), 16)])
    b2 = g.node("AveragePool", [y], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0)
    b2 = g.node("Relu", [g.bn(g.conv(b2, 32, 16, 1), 16)])
    y = g.bn(g.node("Concat", [b1, b2], axis=1), 32)  # a standalone batch norm (after Concat)
    # Downsample with SAME_UPPER padding and a bias: 14 -> 7.
    y = g.node("Relu", [g.conv(y, 32, 64, 3, bias=True, strides=[2, 2], auto_pad="SAME_UPPER")])
    # Squeeze-excitation gate.
    e = g.node("GlobalAveragePool", [y])
    e = g.node("Relu", [g.conv(e, 64, 16, 1, bias=True)])
    e = g.node("Sigmoid", [g.conv(e, 16, 64, 1, bias=True, gain=1.0)])
    y = g.node("Mul", [y, e])
    # Head.
    f = g.node("GlobalAveragePool", [y])
    f = g.node("Reshape", [f, g.const("shape", np.array([0, -1], np.int64))])
    f = g.node("MatMul", [f, g.const("w", rng.normal(0, np.sqrt(1 / 64), (64, 32)).astype(np.float32))])
    f = g.node("Tanh", [g.node("Add", [f, g.const("b", rng.normal(0, 0.1, 32).astype(np.float32))])])
    f = g.node("Dropout", [f], )
    logit = g.node("Gemm", [f, g.const("w", rng.normal(0, 3.0, (1, 32)).astype(np.float32)),
                           g.const("b", np.array([final_bias], np.float32))], transB=1)
    g.nodes.append(helper.make_node("Sigmoid", [logit], ["risk"], name="risk_node"))
    graph = helper.make_graph(
        g.nodes, "deep_resnet",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 28, 28])],
        [helper.make_tensor_value_info("risk", TensorProto.FLOAT, ["N", 1])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vigil-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def mlp_softmax(rng: np.random.Generator) -> onnx.ModelProto:
    g = Graph(rng)
    h = g.node("Gemm", ["x", g.const("w", rng.normal(0, 0.5, (6, 16)).astype(np.float32)),
                        g.const("b", rng.normal(0, 0.1, 16).astype(np.float32))])
    h = g.node("Relu", [h])
    z = g.node("Gemm", [h, g.const("w", rng.normal(0, 0.5, (3, 16)).astype(np.float32)),
                        g.const("b", rng.normal(0, 0.1, 3).astype(np.float32))], transB=1)
    g.nodes.append(helper.make_node("Softmax", [z], ["probabilities"], name="softmax", axis=1))
    graph = helper.make_graph(
        g.nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vigil-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def tiny_cnn(extra: list[onnx.NodeProto], last: str, inits: list[onnx.TensorProto], conv_attrs=None) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], **(conv_attrs or {}))] + extra
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)], [w] + inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def write_malformed() -> None:
    out = FIXTURES / "malformed"
    m = tiny_cnn([helper.make_node("LRN", ["c"], ["y"], name="lrn1", size=3)], "y", [])
    onnx.save(m, out / "cnn_unsupported_op.onnx")
    m = tiny_cnn([helper.make_node("Relu", ["c"], ["y"], name="relu")], "y", [])
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="weights.bin")
    onnx.save(m, out / "cnn_external_data.onnx")
    m = tiny_cnn([helper.make_node("Relu", ["c"], ["y"], name="relu")], "y", [], {"auto_pad": "SAME_SIDEWAYS"})
    onnx.save(m, out / "cnn_bad_auto_pad.onnx")
    bn = [numpy_helper.from_array(np.ones(2, np.float32), n) for n in ("s", "b", "m", "v")]
    m = tiny_cnn([helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn1", training_mode=1)], "y", bn)
    onnx.save(m, out / "cnn_batchnorm_training.onnx")


def png16(path: Path, rgb16: np.ndarray) -> None:
    """Writes a 16-bit RGB PNG by hand (Pillow does not write 16-bit colour)."""
    import struct
    import zlib

    h, w, _ = rgb16.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_images(test: np.ndarray) -> None:
    """cnn/images/: unusual files for the decoder and preprocessing tests, and pixels.csv with
    the SHA-256 of the 8-bit pixels Pillow decodes from each (RGB, or L for grayscale)."""
    d = HERE / "images"
    d.mkdir(exist_ok=True)
    img = Image.fromarray(test[0], mode="RGB")
    img.resize((56, 56), Image.BILINEAR).save(d / "large_56x56.jpg", quality=90)
    img.convert("L").save(d / "gray_28x28.png")
    rgba = np.dstack([test[1], np.full((28, 28), 128, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(d / "rgba_28x28.png")
    img.convert("P", palette=Image.ADAPTIVE, colors=16).save(d / "palette_28x28.png")
    png16(d / "rgb16_28x28.png", test[2].astype(np.uint16) * 257 + 3)
    rows = []
    for name in sorted(p.name for p in d.iterdir() if p.suffix in (".png", ".jpg")):
        if name.startswith("rgb16"):
            mode = "RGB"
            pixels = ((test[2].astype(np.uint16) * 257 + 3) >> 8).astype(np.uint8)  # the high byte of each sample
        else:
            with Image.open(d / name) as im:
                mode = "L" if im.mode == "L" else "RGB"
                pixels = np.asarray(im.convert(mode))
        rows.append([name, mode, hashlib.sha256(np.ascontiguousarray(pixels, np.uint8).tobytes()).hexdigest()])
    with open(d / "pixels.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "mode", "sha256"])
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--npz", default="/work/shared/data/retinamnist/retinamnist.npz")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    z = np.load(args.npz)
    test = z["test_images"]

    # Deep residual CNN package.
    d = HERE / "deep_resnet"
    (d / "images").mkdir(parents=True, exist_ok=True)
    for f in (d / "images").iterdir():
        f.unlink()
    pick = np.sort(rng.choice(len(test), 40, replace=False))
    # Centre the logits on the chosen images (risks spread around 0.5, where differences show).
    probe = deep_resnet(SEED + 1, 0.0).SerializeToString()
    r0 = ort.InferenceSession(probe, providers=["CPUExecutionProvider"]).run(["risk"], {"image": preprocess(test[pick])})[0]
    logits = np.log(r0 / (1 - r0))
    model = deep_resnet(SEED + 1, float(-np.median(logits)))
    model_bytes = model.SerializeToString()
    (d / "model.onnx").write_bytes(model_bytes)
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    rows = []
    for n, i in enumerate(pick):
        jpeg = n >= 32
        name = f"{i}.jpg" if jpeg else f"{i}.png"
        buf = io.BytesIO()
        Image.fromarray(test[i], mode="RGB").save(buf, format="JPEG" if jpeg else "PNG", **({"quality": 90} if jpeg else {}))
        (d / "images" / name).write_bytes(buf.getvalue())
        with Image.open(d / "images" / name) as im:
            pixels = np.asarray(im.convert("RGB"))
        risk = float(sess.run(["risk"], {"image": preprocess(pixels[None])})[0].ravel()[0])
        rows.append([str(i), f"images/{name}", repr(risk)])
    with open(d / "expected.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "image", "reference_risk"])
        w.writerows(rows)
    manifest = {
        "schema": "vigil.manifest/1", "name": "deep-resnet-fixture", "version": "0.0.1",
        "outcome": "none (random weights: a numerical fixture)", "task": "binary",
        "model": {"file": "model.onnx", "format": "onnx", "sha256": hashlib.sha256(model_bytes).hexdigest()},
        "id_field": "id",
        "input": {"kind": "image", "shape": [3, 28, 28], "channel_order": "RGB", "scale": SCALE,
                  "mean": MEAN, "std": STD, "layout": "NCHW"},
        "features": [{"name": "image", "type": "image", "shape": [3, 28, 28], "unit": "8-bit RGB pixel",
                      "range": [0, 255], "missing_allowed": False}],
        "groups": [{"name": "site", "source": "field", "field": "site", "missing": "Unknown"}],
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    risks = np.array([float(r[2]) for r in rows])
    # A batch through onnxruntime at once equals the per-image runs (the fixture's own check).
    batch = sess.run(["risk"], {"image": preprocess(test[pick[:32]])})[0].ravel()
    assert np.max(np.abs(batch - risks[:32])) < 1e-6

    # MLP with a softmax.
    m = HERE / "mlp_softmax"
    m.mkdir(exist_ok=True)
    mlp = mlp_softmax(rng)
    (m / "model.onnx").write_bytes(mlp.SerializeToString())
    x = rng.normal(0, 1.5, (50, 6)).astype(np.float32)
    p = ort.InferenceSession(mlp.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with open(m / "input.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id"] + [f"f{j}" for j in range(6)])
        w.writerows([[r] + [repr(float(v)) for v in x[r]] for r in range(len(x))])
    with open(m / "expected.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "p0", "p1", "p2"])
        w.writerows([[r] + [repr(float(v)) for v in p[r]] for r in range(len(x))])

    write_malformed()
    write_images(test)
    print(f"deep_resnet: {len(model.graph.node)} nodes, {sum(t.ByteSize() for t in model.graph.initializer)} initializer bytes, "
          f"risk range {risks.min():.3f}..{risks.max():.3f}, std {risks.std():.3f}")


if __name__ == "__main__":
    main()
