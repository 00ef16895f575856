"""Write the full held-out test split of a shipped package as a cohort CSV (test_cohort.csv layout).

The packages commit a sample of their test split (test_cohort.csv); `vigil validate` and `vigil
compare` are meant to be run on all of it. This script rebuilds the split exactly as the training
scripts do (same data, same features, `common.patient_split`) without retraining: the
`reference_risk` column is the shipped model file's own prediction (LightGBM for sepsis,
onnxruntime for readmission), so the file matches the package it sits beside.

    python3 models/training/write_test_split.py sepsis /tmp/sepsis_test.csv
    python3 models/training/write_test_split.py readmission /tmp/readmission_test.csv

readmission-xgb has the same split and features as readmission: use the readmission file for both.
Deterministic; the files are large (sepsis ~70k rows, ~25 MB; readmission ~20k rows, ~4 MB), so
they are written outside the repository, not committed. Prints the file's SHA-256.
"""
import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common as C  # noqa: E402


def sepsis(out: Path) -> bytes:
    import lightgbm as lgb
    import train_sepsis as S

    d = S.load()
    X = S.features(d)
    y = d["SepsisLabel"].to_numpy().astype(np.int64)
    te = C.patient_split(d["patient_id"].to_numpy()) == "test"
    booster = lgb.Booster(model_file=str(HERE.parent / "sepsis" / "model.txt"))
    p = booster.predict(X[te].to_numpy(), num_threads=2)
    return S.cohort_csv(d[te], X[te], y[te], p)


def readmission(out: Path) -> bytes:
    import onnxruntime as ort
    import train_readmission as R

    d = R.load()
    X = R.features(d)
    y = (d["readmitted"] == "<30").to_numpy().astype(np.int64)
    te = C.patient_split(d["patient_nbr"].to_numpy()) == "test"
    sess = ort.InferenceSession(str(HERE.parent / "readmission" / "model.onnx"), providers=["CPUExecutionProvider"])
    p = sess.run(["probabilities"], {"input": X[te].to_numpy(dtype=np.float64)})[0][:, 1]
    return R.cohort_csv(R.cohort_frame(d[te], X[te], y[te], p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("package", choices=["sepsis", "readmission"])
    ap.add_argument("output", type=Path)
    args = ap.parse_args()
    data = {"sepsis": sepsis, "readmission": readmission}[args.package](args.output)
    args.output.write_bytes(data)
    rows = data.count(b"\n") - 1
    print(f"{args.output}: {rows} rows, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
