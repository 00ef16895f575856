#!/usr/bin/env python3
"""Writes the benchmark models and rows under Benchmarks/models/ (run by hand, deterministic).

    python3 Benchmarks/make_models.py            # from the repository root, or from Benchmarks/

models/lgb500/
    model.txt    LightGBM 4.6 binary model: 500 trees, num_leaves 31, 40 numeric features f0..f39,
                 trained on 50,000 synthetic rows (about 5% of values missing)
    model.onnx   the same model converted with onnxmltools (float32 input, zipmap off), for
                 ONNX Runtime in compare.py
    rows.csv     10,000 held-out rows: id, f0..f39 (an empty cell is a missing value)
models/xgb500/
    model.json   XGBoost 3.1 binary:logistic model: 500 trees of depth 6 (hist), on the same kind of
                 synthetic rows as lgb500 (40 features, about 5% missing), saved as JSON
    rows.csv     10,000 held-out rows: id, f0..f39 (an empty cell is a missing value)
models/logistic40/
    model.linear.json  scikit-learn LogisticRegression on 40 synthetic features, as Vigil linear JSON
                       (coefficients as float64)
    model.onnx         the same model via skl2onnx (FloatTensorType, zipmap off)
    rows.csv           10,000 held-out rows: id, f0..f39 (no missing values)

Values are rounded to 3 decimals before training, so the CSV text is exactly the data the models
saw and every reader parses the same doubles. Seeds are fixed and LightGBM trains on one thread
with deterministic=True; versions are pinned in requirements.txt.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "models"
F = 40
NAMES = [f"f{j}" for j in range(F)]
TRAIN_ROWS = 50_000
BENCH_ROWS = 10_000


def write_rows(path: Path, X: np.ndarray, prefix: str) -> None:
    """id first, then f0..f39; NaN is written as an empty cell. Values are already 3-decimal."""
    with path.open("w", newline="\n") as fh:
        fh.write("id," + ",".join(NAMES) + "\n")
        for i, row in enumerate(X):
            cells = ["" if np.isnan(v) else repr(float(v)) for v in row]
            fh.write(f"{prefix}{i:05d}," + ",".join(cells) + "\n")


def synthetic_features(rng: np.random.Generator, n: int) -> np.ndarray:
    """40 numeric features of mixed shape: gaussian, skewed, bounded, a few correlated pairs."""
    X = np.empty((n, F))
    for j in range(F):
        kind = j % 4
        if kind == 0:
            X[:, j] = rng.normal(0.0, 1.0 + j / 20, n)
        elif kind == 1:
            X[:, j] = rng.lognormal(0.0, 0.6, n) * (1 + j % 7)
        elif kind == 2:
            X[:, j] = rng.uniform(-5.0, 5.0, n)
        else:
            X[:, j] = 0.7 * X[:, j - 3] + 0.3 * rng.normal(0.0, 1.0, n)
    return np.round(X, 3)


def make_lgb500() -> None:
    import lightgbm as lgb
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    rng = np.random.default_rng(20240501)
    n = TRAIN_ROWS + BENCH_ROWS
    X = synthetic_features(rng, n)
    # A nonlinear signal with interactions and thresholds, so 500 trees have something to fit.
    z = (0.8 * X[:, 0] - 0.5 * np.abs(X[:, 2]) + 0.3 * np.log1p(X[:, 1])
         + 0.6 * np.sin(X[:, 6]) * X[:, 4] + 0.4 * (X[:, 10] > 1.0) - 0.4 * (X[:, 13] > 3.0)
         + 0.25 * X[:, 8] * X[:, 12] / 3 + 0.2 * np.tanh(X[:, 20]) + 0.15 * X[:, 33]
         + 0.5 * rng.normal(0.0, 1.0, n) - 0.3)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int32)
    # About 5% missing, more in a few columns, none in f0.
    miss = rng.random((n, F)) < np.where(np.arange(F) % 5 == 1, 0.15, 0.03)
    miss[:, 0] = False
    X[miss] = np.nan

    Xtr, ytr = X[:TRAIN_ROWS], y[:TRAIN_ROWS]
    Xb = X[TRAIN_ROWS:]
    params = dict(objective="binary", num_leaves=31, learning_rate=0.05, min_data_in_leaf=20,
                  feature_fraction=0.9, bagging_fraction=0.8, bagging_freq=1, seed=7,
                  deterministic=True, force_row_wise=True, num_threads=1, verbose=-1)
    ds = lgb.Dataset(Xtr, label=ytr, feature_name=NAMES, free_raw_data=False)
    booster = lgb.train(params, ds, num_boost_round=500)
    assert booster.num_trees() == 500, booster.num_trees()

    d = OUT / "lgb500"
    d.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(d / "model.txt"))
    write_rows(d / "rows.csv", Xb, "L")

    onx = onnxmltools.convert_lightgbm(
        booster, initial_types=[("input", FloatTensorType([None, F]))],
        zipmap=False, target_opset=15)
    onx.graph.name = "lgb500"
    # onnxmltools declares the label output as shape [1]; make the batch dimension symbolic so
    # ORT does not warn on every batch call.
    for o in onx.graph.output:
        dims = o.type.tensor_type.shape.dim
        if len(dims) >= 1:
            dims[0].Clear()
            dims[0].dim_param = "N"
    (d / "model.onnx").write_bytes(onx.SerializeToString())

    # Sanity: reload, check the saved model predicts as trained and ORT agrees to float32 precision.
    import onnxruntime as ort
    p = lgb.Booster(model_file=str(d / "model.txt")).predict(Xb, num_threads=1)
    assert np.array_equal(p, booster.predict(Xb, num_threads=1))
    s = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    outs = s.run(None, {"input": Xb.astype(np.float32)})
    prob = outs[1][:, 1]
    print(f"lgb500: {booster.num_trees()} trees, {np.isnan(Xb).mean():.3f} missing in rows.csv, "
          f"mean risk {p.mean():.4f}, max |ORT - LightGBM| {np.abs(prob - p).max():.2e} (float32)")


def make_xgb500() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(20240503)
    n = TRAIN_ROWS + BENCH_ROWS
    X = synthetic_features(rng, n)
    z = (0.8 * X[:, 0] - 0.5 * np.abs(X[:, 2]) + 0.3 * np.log1p(X[:, 1])
         + 0.6 * np.sin(X[:, 6]) * X[:, 4] + 0.4 * (X[:, 10] > 1.0) - 0.4 * (X[:, 13] > 3.0)
         + 0.2 * np.tanh(X[:, 20]) + 0.15 * X[:, 33] + 0.5 * rng.normal(0.0, 1.0, n) - 0.3)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int32)
    miss = rng.random((n, F)) < np.where(np.arange(F) % 5 == 1, 0.15, 0.03)
    miss[:, 0] = False
    X[miss] = np.nan
    Xtr, ytr, Xb = X[:TRAIN_ROWS], y[:TRAIN_ROWS], X[TRAIN_ROWS:]
    params = dict(objective="binary:logistic", max_depth=6, eta=0.05, subsample=0.8,
                  colsample_bytree=0.9, tree_method="hist", seed=7, nthread=1)
    dtrain = xgb.DMatrix(Xtr, label=ytr, feature_names=NAMES)
    booster = xgb.train(params, dtrain, num_boost_round=500)

    d = OUT / "xgb500"
    d.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(d / "model.json"))
    write_rows(d / "rows.csv", Xb, "X")
    again = xgb.Booster(model_file=str(d / "model.json"))
    again.set_param({"nthread": 1})
    p = again.inplace_predict(Xb)
    assert np.array_equal(p, booster.inplace_predict(Xb))
    print(f"xgb500: {booster.num_boosted_rounds()} trees of depth <= 6, {np.isnan(Xb).mean():.3f} missing "
          f"in rows.csv, mean risk {p.mean():.4f}")


def make_logistic40() -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(20240502)
    n = TRAIN_ROWS + BENCH_ROWS
    X = np.round(rng.normal(0.0, 1.0, (n, F)) * rng.uniform(0.5, 3.0, F) + rng.uniform(-2, 2, F), 3)
    w_true = rng.normal(0.0, 0.4, F) * (rng.random(F) < 0.7)
    z = ((X - X[:TRAIN_ROWS].mean(axis=0)) / X[:TRAIN_ROWS].std(axis=0)) @ w_true * 0.6 - 0.5
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int32)
    Xtr, ytr, Xb = X[:TRAIN_ROWS], y[:TRAIN_ROWS], X[TRAIN_ROWS:]

    model = LogisticRegression(max_iter=10_000, C=1.0)
    model.fit(Xtr, ytr)

    d = OUT / "logistic40"
    d.mkdir(parents=True, exist_ok=True)
    doc = {"format": "vigil-linear", "version": 1, "link": "logistic", "features": NAMES,
           "coefficients": [float(c) for c in model.coef_[0]], "intercept": float(model.intercept_[0])}
    (d / "model.linear.json").write_text(json.dumps(doc, indent=2) + "\n")
    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, F]))],
                          options={id(model): {"zipmap": False}},
                          target_opset={"": 17, "ai.onnx.ml": 3})
    onx.graph.name = "logistic40"          # skl2onnx names the graph with a random uuid
    (d / "model.onnx").write_bytes(onx.SerializeToString())
    write_rows(d / "rows.csv", Xb, "R")

    import onnxruntime as ort
    p = model.predict_proba(Xb)[:, 1]
    s = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    outs = s.run(None, {"X": Xb.astype(np.float32)})
    print(f"logistic40: {F} features, mean risk {p.mean():.4f}, "
          f"max |ORT - sklearn| {np.abs(outs[1][:, 1] - p).max():.2e} (float32)")


if __name__ == "__main__":
    make_lgb500()
    make_xgb500()
    make_logistic40()
    for f in sorted(OUT.rglob("*")):
        if f.is_file():
            print(f"  {f.relative_to(HERE)}  {f.stat().st_size / 1e6:.2f} MB")
