#!/usr/bin/env python3
"""Give a shipped tabular package its out-of-distribution reference (manifest `reference.ood`).

For each package named (default: sepsis, readmission and retinopathy), this rebuilds the
package's TRAINING split exactly as its training script does (the script's own load(), features()
and patient split; for retinopathy the npz's train_images, written as lossless PNGs), runs
`vigil reference` on it (for the CNN: on its penultimate layer's activations) (means, spreads, a
Ledoit-Wolf shrunk covariance and its LAPACKE Cholesky factor, the training scores' 99.5%
quantile; docs/FORMATS.md "Out-of-distribution reference") and puts the block into the
package's manifest.json as reference.ood (nothing else in the manifest changes). Deterministic.
Run by hand after training (like bind_policies.py), from the repository root:

    python3 models/training/add_ood.py --vigil .build/release/vigil [sepsis] [readmission] [retinopathy]

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


def png(path: Path, rgb) -> None:
    """A lossless 8-bit RGB PNG (zlib + CRC; no imaging library needed)."""
    import struct
    import zlib
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def retinopathy_images(folder: Path) -> int:
    import numpy as np
    d = np.load(C.DATA_DIR / "retinamnist" / "retinamnist.npz")
    images = d["train_images"]
    for i, im in enumerate(images):
        png(folder / f"{i}.png", np.ascontiguousarray(im, dtype=np.uint8))
    return len(images)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", default=str(ROOT / ".build" / "release" / "vigil"))
    # The CNN's 1,080 training images are few for a 99.5% quantile; at 98% it flags 3.25% of the
    # 400 test images and every noise and grayscale image (OODGuardTests).
    ap.add_argument("--quantile", default=None, help="default: 0.98 for retinopathy, 0.995 for the others")
    ap.add_argument("packages", nargs="*", default=["sepsis", "readmission", "retinopathy"])
    args = ap.parse_args()
    for name in args.packages:
        with tempfile.TemporaryDirectory() as tmp:
            if name == "retinopathy":
                source = Path(tmp) / "train_images"
                source.mkdir()
                count = retinopathy_images(source)
            else:
                X = training_features(name)
                count = len(X)
                source = Path(tmp) / "train.csv"
                X.to_csv(source, index=False, float_format=None, na_rep="")
            out = Path(tmp) / "ood.json"
            subprocess.run([args.vigil, "reference", "--model", str(ROOT / "models" / name), "--input", str(source),
                            "--quantile", args.quantile or ("0.98" if name == "retinopathy" else "0.995"),
                            "--output", str(out)], check=True)
            ood = json.loads(out.read_text())
        path = ROOT / "models" / name / "manifest.json"
        man = json.loads(path.read_text())
        man["reference"]["ood"] = ood
        C.write_json(path, man)
        print(f"{name}: reference.ood from {count} training rows, {len(ood['features'])} features, threshold {ood['threshold']:.4g}")


if __name__ == "__main__":
    main()
