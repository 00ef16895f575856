#!/usr/bin/env python3
"""Copies ONNX's backend node tests for the operators Vigil's graph loader supports into this
folder, and writes cases.txt (what ONNXConformanceTests runs) and README.md (what was taken,
what was left out and why).

    pip install onnx==1.19.1   # the version the committed cases come from
    python3 Tests/Fixtures/onnx_node/collect.py

Each case is `<case>/model.onnx` + `<case>/test_data_set_0/{input_i,output_0}.pb`, unchanged.
`cases.txt` names the runtime input of each case (`input:x`, tract's convention): the test
turns the other inputs (weights, shapes, clip bounds) into initializers, since Vigil takes one
input tensor and constant weights, as a deployed model has them.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import onnx
from onnx import TensorProto

HERE = Path(__file__).resolve().parent
SOURCE = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"

SUPPORTED = {
    "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Softmax", "MaxPool",
    "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Mul", "Concat",
    "Dropout", "Identity", "Constant",
}
# Case-name prefixes of the operators above (the cases "relevant" to them).
PREFIXES = [
    "test_conv", "test_basic_conv", "test_batchnorm", "test_relu", "test_leakyrelu", "test_clip", "test_sigmoid",
    "test_tanh", "test_softmax", "test_maxpool", "test_averagepool", "test_globalaveragepool", "test_flatten",
    "test_reshape", "test_gemm", "test_matmul", "test_add", "test_mul", "test_concat", "test_dropout", "test_identity",
]
# Inputs that must stay runtime inputs although they come second (none so far).
RUNTIME_INPUT: dict[str, str] = {}
TYPE_NAMES = {v: k for k, v in TensorProto.DataType.items()}


def reason_to_skip(name: str, model: onnx.ModelProto) -> str | None:
    """Why Vigil's loader refuses the case (mirrors ONNXGraphLoader's rules), or None."""
    g = model.graph
    ops = sorted({n.op_type for n in g.node})
    unsupported = [o for o in ops if o not in SUPPORTED]
    if unsupported:
        return "uses " + ", ".join(unsupported)
    if len(g.output) > 1:
        return f"{len(g.output)} outputs ({', '.join(o.name for o in g.output[1:])} not computed; Vigil computes the first)"
    inits = {t.name for t in g.initializer}
    runtime = [i for i in g.input if i.name not in inits][:1]
    # The runtime input and the output must be float32 tensors; other inputs become
    # initializers (int64 shapes, bool training_mode are fine there).
    for vi in runtime + list(g.output):
        t = vi.type
        if not t.HasField("tensor_type"):
            return f"'{vi.name}' is a {t.WhichOneof('value')} (tensors only)"
        if t.tensor_type.elem_type != TensorProto.FLOAT:
            return f"element type {TYPE_NAMES.get(t.tensor_type.elem_type, t.tensor_type.elem_type)} (float32 only)"
    for n in g.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type in ("Conv", "MaxPool", "AveragePool"):
            x = g.input[0].type.tensor_type.shape.dim
            if len(x) > 4:
                return f"{len(x) - 2}-D {n.op_type} (1-D and 2-D are supported)"
        if n.op_type == "BatchNormalization" and attrs.get("training_mode", 0):
            return "training_mode = 1 (inference only)"
        if n.op_type == "Reshape" and attrs.get("allowzero", 0):
            # allowzero only matters with a 0 in the shape; the case keeps one (an empty tensor).
            return "allowzero with a zero-size axis (empty tensors are not supported)"
        if n.op_type == "Dropout" and len(n.input) > 2 and n.input[2]:
            return "training_mode input (inference only)"
    return None


def main() -> int:
    if not SOURCE.is_dir():
        print(f"no node tests at {SOURCE}", file=sys.stderr)
        return 1
    for child in HERE.iterdir():
        if child.is_dir() and child.name.startswith("test_"):
            shutil.rmtree(child)
    taken: list[tuple[str, str, list[str]]] = []
    skipped: list[tuple[str, str]] = []
    expanded = 0
    for case in sorted(os.listdir(SOURCE)):
        if not any(case == p or case.startswith(p + "_") for p in PREFIXES):
            continue
        if case.endswith("_expanded") or "_expanded_" in case:
            expanded += 1  # the same test rewritten into primitive operators (ReduceMax, Exp, ...)
            continue
        model = onnx.load(SOURCE / case / "model.onnx")
        why = reason_to_skip(case, model)
        if why:
            skipped.append((case, why))
            continue
        inits = {t.name for t in model.graph.initializer}
        inputs = [i.name for i in model.graph.input if i.name not in inits]
        runtime = RUNTIME_INPUT.get(case, inputs[0])
        dst = HERE / case
        (dst / "test_data_set_0").mkdir(parents=True)
        shutil.copy(SOURCE / case / "model.onnx", dst / "model.onnx")
        for f in sorted((SOURCE / case / "test_data_set_0").iterdir()):
            shutil.copy(f, dst / "test_data_set_0" / f.name)
        ops = sorted({n.op_type for n in model.graph.node})
        taken.append((case, runtime, ops))

    with open(HERE / "cases.txt", "w") as f:
        f.write(f"# ONNX {onnx.__version__} backend node tests run by Tests/ONNXConformanceTests (made by collect.py)\n")
        for case, runtime, _ in taken:
            f.write(f"{case} input:{runtime}\n")

    lines = [
        "# ONNX backend node tests",
        "",
        f"Copied by `collect.py` from the `onnx` {onnx.__version__} package "
        "(`onnx/backend/test/data/node/<case>/`), unchanged. `swift test` runs every case below in",
        "`Tests/ONNXConformanceTests/ONNXNodeTests.swift` on the OpenBLAS kernels and on the reference kernels,",
        "with onnxruntime's test tolerance: |got - want| <= 1e-7 + 1e-3 |want|. Inputs other than the runtime",
        "input (`cases.txt`, e.g. a Conv's `W`) are given to the loader as initializers.",
        "",
        f"## Run and passing: {len(taken)} cases",
        "",
        "| case | operators | runtime input |",
        "|---|---|---|",
    ]
    lines += [f"| `{c}` | {', '.join(ops)} | `{r}` |" for c, r, ops in taken]
    lines += [
        "",
        f"## Left out: {len(skipped)} cases (plus {expanded} `_expanded` variants, which rewrite the same test into "
        "operators Vigil does not load: ReduceMax, Exp, Sub, ...)",
        "",
        "| case | why |",
        "|---|---|",
    ]
    lines += [f"| `{c}` | {w} |" for c, w in skipped]
    (HERE / "README.md").write_text("\n".join(lines) + "\n")
    print(f"{len(taken)} cases copied, {len(skipped)} skipped, {expanded} expanded variants ignored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
