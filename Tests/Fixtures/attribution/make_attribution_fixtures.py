#!/usr/bin/env python3
"""Reference attributions from shap for Vigil's attribution tests (Tests/VigilGuardrailsTests).

Run from the repository root (Python 3.11, in a venv with requirements.txt of this folder):

    python3 -m venv --system-site-packages /tmp/attr-shap
    /tmp/attr-shap/bin/pip install -r Tests/Fixtures/attribution/requirements.txt
    /tmp/attr-shap/bin/python Tests/Fixtures/attribution/make_attribution_fixtures.py

Writes, under Tests/Fixtures/attribution/:

- readmission_linear/shap_linear.csv: shap LinearExplainer (interventional) values for the first
  200 rows of models/readmission/test_cohort.csv, from the coefficients the ONNX file stores, on
  a 100-row background (cohort rows shifted so that its column means are the manifest `mean`s).
- heart_multiclass_linear/: a 3-class multinomial LogisticRegression on UCI heart (num 0 / 1 /
  >= 2, NaN imputed with the training median), exported by skl2onnx (float64 graph), as a model
  package (model.onnx, manifest.json with the training means, no policy) with input.csv and
  shap_linear.csv (c<k>_<feature>, c<k>_bias) from LinearExplainer on the same kind of background.
- treeshap_lightgbm/<case>/shap_tree.csv: shap TreeExplainer (tree_path_dependent) run with
  shap's own C++ TreeSHAP (not LightGBM's pred_contrib, which TreeExplainer calls by default for
  a LightGBM model) on Tests/Fixtures/lightgbm/<case>, for the real (not edge) input rows without
  missing values (shap routes NaN by default_left where LightGBM reads NaN as 0 on
  missing-type-None splits, and its parser routes some edge values differently).

Data (UCI Diabetes 130-US hospitals, UCI Heart Disease) come from a local data folder (no download); everything is seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent            # Tests/Fixtures/attribution
FIXTURES = HERE.parent
REPO = FIXTURES.parent.parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(FIXTURES))
import make_fixtures as MF  # noqa: E402  (heart loading, number formatting)

BACKGROUND_ROWS = 100   # shap's Independent masker keeps at most 100 rows unsampled


def read_csv_table(path):
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    return header, [line.split(",") for line in lines[1:]]


def shifted_background(X, means, rows=BACKGROUND_ROWS):
    """`rows` rows of X moved so that each column's mean is `means` (up to rounding)."""
    B = X[:rows].astype(np.float64)
    return B - B.mean(axis=0) + means


def linear_shap(coef, intercept, background, X):
    import shap
    masker = shap.maskers.Independent(background, max_samples=len(background))
    e = shap.LinearExplainer((coef, intercept), masker)
    phi = np.asarray(e.shap_values(X))
    base = np.atleast_1d(np.asarray(e.expected_value, dtype=np.float64))
    return phi, base, np.asarray(e.mean, dtype=np.float64)


def onnx_double_affine(path):
    """(coef [k, f], intercept [k]) of a skl2onnx float64 graph: MatMul(X, coef) + intercept."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    return init["coef"].T.astype(np.float64), init["intercept"].reshape(-1).astype(np.float64)


def case_readmission(report):
    pkg = REPO / "models" / "readmission"
    manifest = json.loads((pkg / "manifest.json").read_text())
    names = [f["name"] for f in manifest["features"]]
    means = np.array([f["mean"] for f in manifest["features"]], dtype=np.float64)
    coef2, icpt2 = onnx_double_affine(pkg / "model.onnx")
    # skl2onnx's binary form: columns (-w, +w); Vigil reads p = sigmoid(x.w + b) from column 1.
    assert np.array_equal(coef2[0], -coef2[1]) and icpt2[0] == -icpt2[1]
    coef, icpt = coef2[1], float(icpt2[1])
    header, rows = read_csv_table(pkg / "test_cohort.csv")
    col = {h: i for i, h in enumerate(header)}
    X = np.array([[float(r[col[n]]) for n in names] for r in rows], dtype=np.float64)
    ids = [r[col[manifest["id_field"]]] for r in rows]
    bg = shifted_background(X[200:], means)
    phi, base, used_mean = linear_shap(coef, icpt, bg, X[:200])
    out = HERE / "readmission_linear"
    out.mkdir(parents=True, exist_ok=True)
    cols = np.hstack([phi, np.full((200, 1), base[0])])
    MF.write_table(out / "shap_linear.csv", ids[:200], names + ["bias"], cols)
    report["readmission_linear"] = {
        "rows": 200, "max_abs_background_mean_minus_manifest_mean": float(np.max(np.abs(used_mean - means))),
        "expected_value": float(base[0]),
        "max_abs_base_plus_sum_minus_margin": float(np.max(np.abs(cols.sum(1) - (X[:200] @ coef + icpt)))),
    }


def case_heart_multiclass(report):
    from sklearn.linear_model import LogisticRegression
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType
    X, num, ids, tr, real = MF.heart_split(MF.DEFAULT_DATA, seed=0)
    y = np.where(num >= 2, 2, num).astype(int)
    med = np.nanmedian(X[tr], axis=0)
    Xi = np.where(np.isnan(X), med, X)
    model = LogisticRegression(C=1.0, max_iter=100000).fit(Xi[tr], y[tr])
    onx = convert_sklearn(model, initial_types=[("input", DoubleTensorType([None, 13]))],
                          options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    onx.graph.name = "heart_multiclass_linear"
    out = HERE / "heart_multiclass_linear"
    out.mkdir(parents=True, exist_ok=True)
    data = onx.SerializeToString()
    (out / "model.onnx").write_bytes(data)
    coef, icpt = onnx_double_affine(out / "model.onnx")
    assert np.array_equal(coef, model.coef_) and np.array_equal(icpt, model.intercept_)
    means = Xi[tr].mean(axis=0)
    lo, hi = Xi[tr].min(axis=0), Xi[tr].max(axis=0)
    features = [{"name": n, "type": "numeric", "range": [float(a), float(b)], "missing_allowed": False,
                 "mean": float(m)} for n, a, b, m in zip(MF.HEART_COLS, lo, hi, means)]
    manifest = {
        "schema": "vigil.manifest/1", "name": "heart_multiclass_linear", "version": "1",
        "outcome": "heart disease severity: num 0 / 1 / >= 2", "task": "multiclass",
        "model": {"file": "model.onnx", "format": "onnx", "sha256": hashlib.sha256(data).hexdigest()},
        "id_field": "id", "features": features,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    rows = real[:60]
    MF.write_input(out / "input.csv", ids[rows], MF.HEART_COLS, Xi[rows])
    bg = shifted_background(Xi[tr], means)
    phi, base, used_mean = linear_shap(coef, icpt, bg, Xi[rows])
    # shap returns (rows, features, classes) for several outputs.
    assert phi.shape == (len(rows), 13, 3), phi.shape
    cols = np.hstack([np.hstack([phi[:, :, k], np.full((len(rows), 1), base[k])]) for k in range(3)])
    MF.write_table(out / "shap_linear.csv", ids[rows], MF.contrib_header(MF.HEART_COLS, 3), cols)
    margins = Xi[rows] @ coef.T + icpt
    report["heart_multiclass_linear"] = {
        "rows": len(rows), "classes": 3, "train_rows": int(len(tr)),
        "max_abs_background_mean_minus_manifest_mean": float(np.max(np.abs(used_mean - means))),
        "expected_value": [float(b) for b in base],
        "max_abs_base_plus_sum_minus_margin": float(max(
            np.max(np.abs(cols[:, k * 14:(k + 1) * 14].sum(1) - margins[:, k])) for k in range(3))),
    }


def case_treeshap(case, report):
    import lightgbm as lgb
    import shap
    src = FIXTURES / "lightgbm" / case
    ids, names, X = MF.read_input(src / "input.csv")
    # Real rows only: shap's own parser of the model routes some of the edge rows differently from
    # LightGBM (values on a threshold, |x| <= 1e-35 that LightGBM reads as 0), so they are not a
    # reference for TreeSHAP itself.
    keep = ~np.isnan(X).any(axis=1) & np.array([not i.startswith("e") for i in ids])
    ids = [i for i, k in zip(ids, keep) if k]
    X = X[keep]
    booster = lgb.Booster(model_file=str(src / "model.txt"))
    e = shap.TreeExplainer(booster)
    assert e.feature_perturbation == "tree_path_dependent"
    e.model.model_type = "internal"   # shap's own TreeSHAP instead of LightGBM's pred_contrib
    phi = np.asarray(e.shap_values(X, check_additivity=False))
    base = float(np.atleast_1d(e.expected_value)[0])
    cols = np.hstack([phi, np.full((len(ids), 1), base)])
    out = HERE / "treeshap_lightgbm" / case
    out.mkdir(parents=True, exist_ok=True)
    MF.write_table(out / "shap_tree.csv", ids, names + ["bias"], cols)
    lib = booster.predict(X, pred_contrib=True)
    report["treeshap_lightgbm/" + case] = {
        "rows": len(ids), "max_abs_shap_minus_lightgbm_pred_contrib": float(np.max(np.abs(cols - lib))),
    }


def main():
    import shap
    import sklearn
    import lightgbm
    import skl2onnx
    report = {"shap": shap.__version__, "scikit-learn": sklearn.__version__,
              "lightgbm": lightgbm.__version__, "skl2onnx": skl2onnx.__version__}
    case_readmission(report)
    case_heart_multiclass(report)
    for case in ("heart_binary", "deep"):
        case_treeshap(case, report)
    (HERE / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
