#!/usr/bin/env python3
"""Train the `retinopathy` reference model: referable diabetic retinopathy on RetinaMNIST 28x28.

A small PyTorch CNN (3 conv blocks with BatchNorm, ReLU and pooling; one logit; Sigmoid), trained
on CPU, exported with torch.onnx.export (opset 17, dynamic batch). Writes
models/retinopathy/{model.onnx, manifest.json, policy.json, test_cohort.csv, test_images/,
MODEL_CARD.md}.

Run from the repository root:  python3 models/training/train_retinopathy.py
Options: --write-validation PATH  also keep the validation CSV whose SHA-256 is in policy.json
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True   # keep models/training free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

NAME = "retinopathy"
VERSION = "1.0.0"
OUT = C.MODELS_DIR / NAME
SRC = C.DATA_DIR / "retinamnist" / "retinamnist.npz"
SEED = 20240601
EPOCHS = 40
BATCH = 64
COHORT_IMAGES = 100
COHORT_SEED = 7

# Preprocessing contract (outside the ONNX graph), all in float32, per channel c (RGB order):
#   x[c] = (float32(pixel[c]) * float32(SCALE) - float32(MEAN[c])) / float32(STD[c])
# MEAN/STD: per-channel mean and standard deviation of the training images scaled to [0, 1],
# rounded to 4 decimals.
SCALE = 1.0 / 255.0
MEAN = [0.3984, 0.2447, 0.1558]
STD = [0.2983, 0.2005, 0.1507]

GROUPS = [{"name": "site", "source": "field", "field": "site", "missing": "Unknown"}]


def preprocess(images_nhwc_uint8: np.ndarray) -> np.ndarray:
    """uint8 [N,28,28,3] -> float32 [N,3,28,28] exactly as the manifest's `input` describes."""
    x = images_nhwc_uint8.astype(np.float32).transpose(0, 3, 1, 2)
    scale = np.float32(SCALE)
    mean = np.asarray(MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return ((x * scale - mean) / std).astype(np.float32)


def build_model():
    import torch.nn as nn

    def block(cin, cout, pool):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=False), pool]

    return nn.Sequential(
        *block(3, 16, nn.MaxPool2d(2)),         # 28 -> 14
        *block(16, 32, nn.MaxPool2d(2)),        # 14 -> 7
        *block(32, 64, nn.AdaptiveAvgPool2d(1)),  # 7 -> 1 (GlobalAveragePool)
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(64, 1),
        nn.Sigmoid(),
    )


def train(xtr, ytr, xva, yva):
    import torch
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    model = build_model()
    body = model[:-1]                      # logits, for a numerically stable loss
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    steps = EPOCHS * int(np.ceil(len(xtr) / BATCH))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xt = torch.from_numpy(xtr)
    yt = torch.from_numpy(ytr.astype(np.float32)).reshape(-1, 1)
    g = torch.Generator().manual_seed(SEED)
    log = []
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            xb = xt[idx]
            # augmentation: random horizontal / vertical flips (fundus images have no canonical side)
            fh = torch.rand(len(idx), generator=g) < 0.5
            fv = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(fh.view(-1, 1, 1, 1), xb.flip(3), xb)
            xb = torch.where(fv.view(-1, 1, 1, 1), xb.flip(2), xb)
            opt.zero_grad()
            loss = loss_fn(body(xb), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        model.eval()
        with torch.no_grad():
            pv = model(torch.from_numpy(xva)).numpy().ravel()
        log.append((epoch + 1, total / len(xt), C.auroc(yva, pv)))
        print(f"epoch {epoch + 1:2d} train loss {total / len(xt):.4f} val AUROC {log[-1][2]:.4f}")
    model.eval()
    return model, log


def export(model, path: Path) -> list[str]:
    import onnx
    import torch
    dummy = torch.zeros(1, 3, 28, 28)
    torch.onnx.export(model, (dummy,), str(path), input_names=["image"], output_names=["risk"],
                      dynamic_axes={"image": {0: "N"}, "risk": {0: "N"}}, opset_version=17,
                      do_constant_folding=False, dynamo=False)
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    m.doc_string = f"Vigil reference model {NAME} {VERSION}"
    m.producer_name = m.producer_name or "pytorch"
    path.write_bytes(m.SerializeToString())
    return [n.op_type for n in m.graph.node]


def write_png(path: Path, img_hwc: np.ndarray) -> None:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(img_hwc, mode="RGB").save(buf, format="PNG", optimize=False)
    path.write_bytes(buf.getvalue())


def read_png(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--write-validation", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.time()
    import onnxruntime as ort
    import torch

    z = np.load(SRC)
    imgs = {s: z[f"{s}_images"] for s in ("train", "val", "test")}
    grade = {s: z[f"{s}_labels"].ravel().astype(np.int64) for s in ("train", "val", "test")}
    y = {s: (grade[s] >= 2).astype(np.int64) for s in grade}
    x = {s: preprocess(imgs[s]) for s in imgs}
    for s in imgs:
        print(f"{s}: {len(y[s])} images, referable {y[s].mean():.3f}")
    train_mean = (imgs["train"].astype(np.float64) / 255.0).mean(axis=(0, 1, 2))
    train_std = (imgs["train"].astype(np.float64) / 255.0).std(axis=(0, 1, 2))
    assert np.allclose(train_mean, MEAN, atol=1e-4) and np.allclose(train_std, STD, atol=1e-4)

    model, log = train(x["train"], y["train"], x["val"], y["val"])
    OUT.mkdir(parents=True, exist_ok=True)
    model_path = OUT / "model.onnx"
    ops = export(model, model_path)
    print("ONNX op types:", ops)

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    risk = {s: sess.run(["risk"], {"image": x[s]})[0].ravel().astype(np.float64) for s in x}
    with torch.no_grad():
        pt = model(torch.from_numpy(x["test"])).numpy().ravel()
    max_diff = float(np.max(np.abs(pt - risk["test"])))
    print(f"max |torch - onnxruntime| on test = {max_diff:.2e}")

    # policy: Youden's J on the validation images
    val_bytes = C.csv_bytes(["id", "label", "reference_risk"],
                            [[i, int(y["val"][i]), float(risk["val"][i])] for i in range(len(y["val"]))])
    if args.write_validation:
        args.write_validation.write_bytes(val_bytes)
    else:
        with tempfile.NamedTemporaryFile(suffix=".csv", delete=True) as tmp:
            tmp.write(val_bytes)
    thr = C.youden_threshold(y["val"], risk["val"])
    rule = ("one global threshold maximising Youden's J (sensitivity + specificity - 1) on the "
            "MedMNIST validation split (120 images); candidates are the validation risks, decision "
            "risk >= threshold. fitted_on.sha256 is the SHA-256 of the CSV `id,label,reference_risk` "
            "(id = index in val_images, risk = onnxruntime output) that train_retinopathy.py writes "
            "(--write-validation PATH keeps it).")
    pol = C.policy(rule, {"kind": "youden_j"}, thr, len(y["val"]), C.sha256_bytes(val_bytes),
                   C.model_binding(NAME, VERSION, model_path))
    C.write_json(OUT / "policy.json", pol)
    print(f"threshold {thr!r}")

    # manifest: one image feature + the preprocessing contract
    tr_raw = imgs["train"].astype(np.float64)
    feat = {"name": "image", "type": "image", "shape": [3, 28, 28], "unit": "8-bit RGB pixel",
            "description": "colour fundus photograph, 28x28 RGB, resized by MedMNIST; preprocessed "
                           "as in `input` and fed as float32 NCHW",
            "range": [int(tr_raw.min()), int(tr_raw.max())], "missing_allowed": False,
            "mean": float(tr_raw.mean())}
    input_spec = {"kind": "image", "shape": [3, 28, 28], "channel_order": "RGB", "scale": SCALE,
                  "mean": MEAN, "std": STD, "layout": "NCHW"}
    man = C.manifest(NAME, VERSION, "referable diabetic retinopathy (DR grade >= 2 of 0-4)",
                     model_path, "onnx", "id", [feat], GROUPS,
                     {"image": tr_raw.mean(axis=(1, 2, 3))}, risk["train"],
                     extra={"input": input_spec})
    # keep `input` next to `features` and `reference` last, for readability
    man = {k: man[k] for k in ["schema", "name", "version", "outcome", "task", "model", "id_field",
                               "input", "features", "groups", "reference"]}
    C.write_json(OUT / "manifest.json", man)

    # committed sample: COHORT_IMAGES random test images as PNG; risk from the PNG pixels
    img_dir = OUT / "test_images"
    if img_dir.exists():
        shutil.rmtree(img_dir)
    img_dir.mkdir()
    pick = np.sort(np.random.default_rng(COHORT_SEED).choice(len(y["test"]), COHORT_IMAGES,
                                                             replace=False))
    rows = []
    for i in pick:
        p = img_dir / f"{i}.png"
        write_png(p, imgs["test"][i])
        back = read_png(p)
        assert np.array_equal(back, imgs["test"][i])
        r = float(sess.run(["risk"], {"image": preprocess(back[None])})[0].ravel()[0])
        rows.append([int(i), f"test_images/{i}.png", int(y["test"][i]), r])
    (OUT / "test_cohort.csv").write_bytes(C.csv_bytes(["id", "image", "label", "reference_risk"], rows))

    perf = C.group_performance(y["test"], risk["test"], thr, {})
    by_grade = []
    d_test = risk["test"] >= thr
    for gr in range(5):
        m = grade["test"] == gr
        by_grade.append((gr, int(m.sum()), float(d_test[m].mean())))
    val_perf = C.all_metrics(y["val"], risk["val"], thr)
    n_params = sum(p.numel() for p in model.parameters())
    write_card(y, perf, val_perf, thr, ops, max_diff, log, by_grade, n_params, time.time() - t0)
    print(C.performance_table(perf))
    print(f"done in {time.time() - t0:.0f} s")


def write_card(y, perf, val_perf, thr, ops, max_diff, log, by_grade, n_params, secs) -> None:
    ov = perf[0][3]
    grade_rows = "\n".join(f"| {g} | {n} | {r:.3f} |" for g, n, r in by_grade)
    last = log[-1]
    card = f"""# Model card: `retinopathy` {VERSION}

Probability of referable diabetic retinopathy (DR grade >= 2 on the 0-4 scale) from a 28x28
colour fundus image. A small convolutional network ({n_params:,} parameters) trained with PyTorch
and shipped as ONNX (`model.onnx`). Generated by `models/training/train_retinopathy.py`; do not
edit by hand.

## Intended use
- A **reference model for Vigil**: to exercise ONNX CNN loading (Conv, BatchNormalization, pooling,
  Gemm, Sigmoid), image preprocessing, attributions with a completeness check and monitoring.
- Teaching and benchmarking only.

## Not intended use
- **Not for screening or diagnosis.** 28x28 images discard the lesions (microaneurysms, exudates)
  that graders look for; the model is trained on 1,080 images and its discrimination is far
  below clinical screening systems. It must not be used on patients.
- Not for images from other cameras, resolutions or preprocessing pipelines.

## Data
- **MedMNIST v2 RetinaMNIST** (28x28), licence **CC BY 4.0**. Images derive from the DeepDRiD
  challenge dataset. Citation: Yang J, Shi R, Wei D, Liu Z, Zhao L, Ke B, Pfister H, Ni B.
  *MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image
  classification.* Scientific Data 2023;10:41. doi:10.1038/s41597-022-01721-8.
- The official splits are used as given: train {len(y['train']):,} (referable
  {y['train'].mean():.3f}), validation {len(y['val'])} ({y['val'].mean():.3f}), test
  {len(y['test'])} ({y['test'].mean():.3f}). No patient identifiers are provided, so we cannot check
  whether one patient's images cross splits (DeepDRiD has several images per patient).
- Label: referable DR = grade 2, 3 or 4; grades 0-1 are negatives. No demographics; the group
  field `site` must come from the request (missing -> `Unknown`).

## Input and preprocessing
`manifest.json` has an `input` object: RGB, NCHW, `scale` 1/255, per-channel `mean`
{MEAN} and `std` {STD} (mean and standard deviation of the training images in [0, 1], rounded to
4 decimals). The ONNX input `image` is float32 [N, 3, 28, 28] with, per channel c,
`x = (float32(pixel) * float32(1/255) - float32(mean[c])) / float32(std[c])`, computed in float32
in that order; the output `risk` is float32 [N, 1] (already through the Sigmoid).

## Model and training
Conv3x3(3->16) - BN - ReLU - MaxPool2 - Conv3x3(16->32) - BN - ReLU - MaxPool2 -
Conv3x3(32->64) - BN - ReLU - global average pool - Flatten - Dropout(0.3) - Linear(64->1) -
Sigmoid. Convolutions have no bias (BatchNorm follows). PyTorch {__import__('torch').__version__} on CPU, seed {SEED},
deterministic algorithms, 2 threads; AdamW (weight decay 1e-3), one-cycle learning rate (max 3e-3),
batch {BATCH}, {EPOCHS} epochs, binary cross-entropy on the logit; augmentation: random horizontal
and vertical flips. The last epoch is kept (no checkpoint selection); final training loss
{last[1]:.3f}, validation AUROC {last[2]:.3f}.
Exported with `torch.onnx.export` (TorchScript exporter, opset 17, dynamic batch axis `N`,
`do_constant_folding=False`, so BatchNormalization nodes are kept). Op types:
{", ".join(f"`{o}`" for o in ops)}. Max |PyTorch - onnxruntime| on the test images: {max_diff:.1e}.

## Guardrail policy
One global threshold **{thr:.6f}** (exact value in `policy.json`) maximising Youden's J on the
120 validation images: validation sensitivity {val_perf['sensitivity']:.3f}, specificity
{val_perf['specificity']:.3f}. With 120 images this threshold is itself uncertain.

## Performance on the held-out test split
All {len(y['test'])} test images. 95% CIs: percentile bootstrap, {C.N_BOOTSTRAP} resamples of
images (seed {C.BOOTSTRAP_SEED}). Sensitivity/specificity at the policy threshold. ECE: 10
equal-width bins. Calibration slope and intercept: unpenalised logistic fit of the label on
logit(risk). There are no group fields in the data, so only the overall row exists; per-site
results need site-labelled data.

{C.performance_table(perf)}
Fraction flagged (risk >= threshold) by original DR grade on test:

| grade | images | flagged |
|---:|---:|---:|
{grade_rows}

## Comparison with published results
The MedMNIST v2 benchmark reports RetinaMNIST as a **5-class ordinal** task (AUC averaged over
classes, and accuracy): e.g. ResNet-18 at 28x28 AUC 0.717, ACC 0.524 (Yang et al. 2023, Table
of benchmark results), with the other baselines in a similar range. Our task is the **binary**
referable-DR split of the same images, so the AUROC of {ov['auroc'][0]:.3f} here is **not like for
like** with those numbers; it only shows the same data support a modest signal at this
resolution. Full-resolution referable-DR systems report AUROCs above 0.9 on other datasets.

## Caveats and known gaps
- Tiny data (1,080 training images) and tiny images; wide CIs; threshold fitted on 120 images.
- Possible patient overlap between splits (no identifiers), which would inflate test figures.
- No demographic or site information, so subgroup performance cannot be assessed from this data.
- Calibration on {len(y['test'])} images is imprecise; see the CIs.
- `test_cohort.csv` lists {COHORT_IMAGES} test images drawn uniformly at random without
  replacement (numpy `default_rng({COHORT_SEED})`), written as lossless PNG to `test_images/<index>.png`
  (index into `test_images` of the npz). `reference_risk` is onnxruntime's output on the pixels read
  back from that PNG with Pillow and preprocessed as above.
"""
    (OUT / "MODEL_CARD.md").write_text(card, encoding="utf-8")


if __name__ == "__main__":
    main()
