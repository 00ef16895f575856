#!/usr/bin/env python3
"""Check the shipped model packages against docs/FORMATS.md and their own test cohorts.

For every models/<name>/ with a manifest.json: the package holds exactly the expected files; the
manifest and policy have the documented keys (plus the additions listed in EXTRA_KEYS); the
model's SHA-256 matches; the feature order matches the model file; test_cohort.csv has the right
columns; and re-scoring the CSV *as parsed from text* with the training library reproduces
`reference_risk` exactly. Needs no training data.

Run from the repository root:  python3 models/training/verify_packages.py [name ...]
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

MANIFEST_KEYS = {"schema", "name", "version", "outcome", "task", "model", "id_field", "features",
                 "groups", "reference"}
FEATURE_KEYS = {"name", "type", "unit", "description", "range", "missing_allowed", "mean"}
GROUP_KEYS = {"name", "source", "field", "map", "other", "missing", "bins"}
POLICY_KEYS = {"schema", "version", "model", "constraint", "objective", "rule", "group_fields",
               "min_group_size", "groups", "fallback", "fitted_on"}
# Optional policy keys (vigil fit-thresholds writes `randomized`; `created` is free text).
POLICY_OPTIONAL_KEYS = {"randomized", "created"}
# Keys not (yet) in docs/FORMATS.md, used by the image model only.
EXTRA_KEYS = {"manifest": {"input"}, "feature": {"shape"}}
FEATURE_TYPES = {"numeric", "integer", "binary", "categorical", "image"}


def fail(msg: str) -> None:
    raise SystemExit(f"FAIL: {msg}")


def check_hist(h: dict, where: str) -> None:
    if set(h) != {"edges", "counts", "missing"}:
        fail(f"{where}: histogram keys {sorted(h)}")
    e = h["edges"]
    if any(b <= a for a, b in zip(e, e[1:])):
        fail(f"{where}: edges not strictly increasing")
    if len(h["counts"]) != len(e) + 1:
        fail(f"{where}: {len(h['counts'])} counts for {len(e)} edges")


def read_cohort(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        return header, list(r)


def parse(v: str) -> float:
    return math.nan if v == "" else float(v)


def verify(pkg: Path) -> None:
    man = json.loads((pkg / "manifest.json").read_text())
    pol = json.loads((pkg / "policy.json").read_text())
    name = man["name"]
    extra_m = set(man) - MANIFEST_KEYS
    if not MANIFEST_KEYS <= set(man) or not extra_m <= EXTRA_KEYS["manifest"]:
        fail(f"{name}: manifest keys {sorted(man)}")
    if man["schema"] != "vigil.manifest/1" or man["task"] != "binary":
        fail(f"{name}: schema/task")
    model_file = pkg / man["model"]["file"]
    if C.sha256_file(model_file) != man["model"]["sha256"]:
        fail(f"{name}: model sha256 mismatch")
    expected = {"manifest.json", "policy.json", "MODEL_CARD.md", "test_cohort.csv", model_file.name}
    if man["model"]["format"] == "onnx" and (pkg / "test_images").is_dir():
        expected.add("test_images")
    present = {p.name for p in pkg.iterdir()}
    if present != expected:
        fail(f"{name}: files {sorted(present)} != {sorted(expected)}")
    feats = man["features"]
    for f in feats:
        if not (set(f) - EXTRA_KEYS["feature"]) == FEATURE_KEYS or f["type"] not in FEATURE_TYPES:
            fail(f"{name}: feature {f.get('name')} keys/type")
        if not f["range"][0] <= f["mean"] <= f["range"][1]:
            fail(f"{name}: feature {f['name']} mean outside range")
    for g in man["groups"]:
        if not set(g) <= GROUP_KEYS or g["source"] not in ("field", "feature"):
            fail(f"{name}: group {g.get('name')} keys")
        if "bins" in g and len(g["bins"]["labels"]) != len(g["bins"]["edges"]) + 1:
            fail(f"{name}: group {g['name']} bins")
        if g["source"] == "feature" and g["field"] not in {f["name"] for f in feats}:
            fail(f"{name}: group {g['name']} names a missing feature")
    ref = man["reference"]
    for fname, h in ref["features"].items():
        check_hist(h, f"{name}.reference.{fname}")
    check_hist(ref["score"], f"{name}.reference.score")
    if set(ref["features"]) != {f["name"] for f in feats}:
        fail(f"{name}: reference features != features")
    if sum(ref["score"]["counts"]) + ref["score"]["missing"] != ref["rows"]:
        fail(f"{name}: score histogram rows")
    if not POLICY_KEYS <= set(pol) <= POLICY_KEYS | POLICY_OPTIONAL_KEYS or pol["schema"] != "vigil.policy/1":
        fail(f"{name}: policy keys {sorted(pol)}")
    if pol["model"].get("sha256") != man["model"]["sha256"]:
        fail(f"{name}: policy.json is bound to model sha256 {pol['model'].get('sha256')}, the package's "
             f"model file is {man['model']['sha256']} (models/training/bind_policies.py)")
    if not 0 < pol["fallback"]["threshold"] < 1 or len(pol["fitted_on"]["sha256"]) != 64:
        fail(f"{name}: policy threshold / fitted_on")

    header, rows = read_cohort(pkg / "test_cohort.csv")
    col = {c: i for i, c in enumerate(header)}
    ids = [r[col[man["id_field"]]] for r in rows]
    if len(set(ids)) != len(ids):
        fail(f"{name}: duplicate ids in test_cohort.csv")
    ref_risk = np.array([float(r[col["reference_risk"]]) for r in rows])
    fmt = man["model"]["format"]
    if fmt == "onnx" and feats[0]["type"] == "image":
        import onnxruntime as ort
        from PIL import Image
        spec = man["input"]
        sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
        xs = []
        for r in rows:
            with Image.open(pkg / r[col["image"]]) as im:
                px = np.asarray(im.convert("RGB"), dtype=np.uint8)
            x = px.astype(np.float32).transpose(2, 0, 1)[None]
            x = (x * np.float32(spec["scale"]) - np.asarray(spec["mean"], np.float32).reshape(1, 3, 1, 1)) \
                / np.asarray(spec["std"], np.float32).reshape(1, 3, 1, 1)
            xs.append(x.astype(np.float32))
        got = sess.run(None, {sess.get_inputs()[0].name: np.concatenate(xs)})[0].ravel().astype(np.float64)
        tol = 0.0
    else:
        names = [f["name"] for f in feats]
        missing_cols = [n for n in names + ["label", "reference_risk"] if n not in col]
        for g in man["groups"]:
            if g["source"] == "field" and g["field"] not in col:
                missing_cols.append(g["field"])
        if missing_cols:
            fail(f"{name}: test_cohort.csv lacks {missing_cols}")
        X = np.array([[parse(r[col[n]]) for n in names] for r in rows], dtype=np.float64)
        if fmt == "onnx":
            import onnxruntime as ort
            sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
            if sess.get_inputs()[0].shape[1] != len(names):
                fail(f"{name}: ONNX input width")
            got = sess.run(["probabilities"], {sess.get_inputs()[0].name: X})[0][:, 1]
            tol = 1e-15
        elif fmt == "lightgbm":
            import lightgbm as lgb
            b = lgb.Booster(model_file=str(model_file))
            if b.feature_name() != names:
                fail(f"{name}: LightGBM feature names differ from the manifest order")
            got = b.predict(X, num_threads=1)
            tol = 0.0
        elif fmt == "xgboost":
            import xgboost as xgb
            b = xgb.Booster(model_file=str(model_file))
            if b.feature_names != names:
                fail(f"{name}: XGBoost feature names differ from the manifest order")
            got = b.predict(xgb.DMatrix(X, feature_names=names, missing=np.nan)).astype(np.float64)
            tol = 0.0
        else:
            fail(f"{name}: unknown format {fmt}")
    diff = float(np.max(np.abs(got - ref_risk)))
    if diff > tol:
        fail(f"{name}: re-scored test_cohort.csv differs from reference_risk by {diff:.3e}")
    size = sum(p.stat().st_size for p in pkg.rglob("*") if p.is_file())
    # The package digest (docs/FORMATS.md): sha256sum lines of the four files, sorted by name.
    lines = "".join(f"{C.sha256_file(pkg / f)}  {f}\n"
                    for f in sorted(["manifest.json", model_file.name, "policy.json", "MODEL_CARD.md"],
                                    key=lambda n: n.encode()))
    digest = C.sha256_bytes(lines.encode())
    print(f"ok  {name:20s} {fmt:9s} {len(feats):3d} features  {len(rows):5d} cohort rows  "
          f"max |diff| {diff:.1e}  threshold {pol['fallback']['threshold']:.6f}  {size / 1e6:.2f} MB  "
          f"package digest {digest}")


def main() -> None:
    names = sys.argv[1:]
    pkgs = sorted(p for p in C.MODELS_DIR.iterdir() if (p / "manifest.json").exists())
    if names:
        pkgs = [p for p in pkgs if p.name in names]
    for p in pkgs:
        verify(p)


if __name__ == "__main__":
    main()
