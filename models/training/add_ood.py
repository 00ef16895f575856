#!/usr/bin/env python3
"""Give a shipped tabular package its out-of-distribution reference (manifest `reference.ood`).

For each package named (default: sepsis and readmission), this rebuilds the package's TRAINING
split features exactly as its training script does (the script's own load(), features() and
patient split), writes them to a temporary CSV, runs `vigil reference` on it (means, spreads, a
Ledoit-Wolf shrunk covariance and its LAPACKE Cholesky factor, the training scores' 99.5%
quantile; docs/FORMATS.md "Out-of-distribution reference") and puts the block into the
package's manifest.json as reference.ood (nothing else in the manifest changes). Deterministic.
Run by hand after training (like bind_policies.py), from the repository root:

    python3 models/training/add_ood.py --vigil .build/release/vigil [sepsis] [readmission]

Needs models/training/requirements.txt (numpy, pandas) and the data in ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def training_features(name: str):
    if name == "sepsis":
        import train_sepsis as T
        d = T.load()
        X = T.features(d)
        split = C.patient_split(d["patient_id"].to_numpy())
    elif name == "readmission":
        import train_readmission as T
        d = T.load()
        X = T.features(d)
        split = C.patient_split(d["patient_nbr"].to_numpy())
    else:
        raise SystemExit(f"{name}: no training split known here (sepsis, readmission)")
    return X[split == "train"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", default=str(ROOT / ".build" / "release" / "vigil"))
    ap.add_argument("--quantile", default="0.995")
    ap.add_argument("packages", nargs="*", default=["sepsis", "readmission"])
    args = ap.parse_args()
    for name in args.packages:
        X = training_features(name)
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "train.csv"
            X.to_csv(csv, index=False, float_format=None, na_rep="")
            out = Path(tmp) / "ood.json"
            subprocess.run([args.vigil, "reference", "--model", str(ROOT / "models" / name), "--input", str(csv),
                            "--quantile", args.quantile, "--output", str(out)], check=True)
            ood = json.loads(out.read_text())
        path = ROOT / "models" / name / "manifest.json"
        man = json.loads(path.read_text())
        man["reference"]["ood"] = ood
        C.write_json(path, man)
        print(f"{name}: reference.ood from {len(X)} training rows, {len(ood['features'])} features, threshold {ood['threshold']:.4g}")


if __name__ == "__main__":
    main()
