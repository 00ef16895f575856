#!/usr/bin/env python3
"""Train the `readmission-xgb` reference model: the readmission task with XGBoost.

Same cohort, features, patient-level split, groups and policy rule as train_readmission.py, but
an XGBoost tree ensemble (binary:logistic, hist, depth 5, 200 trees) saved as XGBoost JSON. Writes
models/readmission-xgb/{model.json, manifest.json, policy.json, test_cohort.csv, MODEL_CARD.md}.

Run from the repository root:  python3 models/training/train_readmission_xgb.py
Options: --write-validation PATH  also keep the validation CSV whose SHA-256 is in policy.json
         --name N --version V --out DIR  package the same training as another model name and
           version in DIR (the README's change-control example retrains `readmission` as
           XGBoost: --name readmission --version 1.1.0 --out /tmp/readmission-1.1.0)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True   # keep models/training free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
import train_readmission as R  # noqa: E402

NAME = "readmission-xgb"
VERSION = "1.0.0"
OUT = C.MODELS_DIR / NAME
PARAMS = {
    "objective": "binary:logistic", "tree_method": "hist", "max_depth": 5, "eta": 0.05,
    "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 5, "lambda": 1.0,
    "eval_metric": "logloss", "seed": 42, "nthread": 2,
}
NUM_TREES = 200


def main() -> None:
    global NAME, VERSION, OUT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--write-validation", type=Path, default=None)
    ap.add_argument("--name", default=NAME)
    ap.add_argument("--version", default=VERSION)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    NAME, VERSION = args.name, args.version
    OUT = args.out if args.out is not None else C.MODELS_DIR / NAME
    t0 = time.time()
    import xgboost as xgb

    d = R.load()
    X = R.features(d)
    y = (d["readmitted"] == "<30").to_numpy().astype(np.int64)
    split = C.patient_split(d["patient_nbr"].to_numpy())
    tr, va, te = (split == "train"), (split == "val"), (split == "test")

    names = R.FEATURE_NAMES
    dtrain = xgb.DMatrix(X[tr].to_numpy(dtype=np.float64), label=y[tr], feature_names=names)
    booster = xgb.train(PARAMS, dtrain, num_boost_round=NUM_TREES)
    OUT.mkdir(parents=True, exist_ok=True)
    model_path = OUT / "model.json"
    booster.save_model(str(model_path))
    booster = xgb.Booster(model_file=str(model_path))        # score with the saved file
    p_all = booster.predict(xgb.DMatrix(X.to_numpy(dtype=np.float64), feature_names=names))
    p_all = p_all.astype(np.float64)                         # XGBoost predicts float32
    learner = json.loads(model_path.read_text())["learner"]
    base_score = learner["learner_model_param"]["base_score"]
    print(f"{booster.num_boosted_rounds()} trees; base_score {base_score}")

    val_bytes = R.cohort_csv(R.cohort_frame(d[va], X[va], y[va], p_all[va]))
    if args.write_validation:
        args.write_validation.write_bytes(val_bytes)
    else:
        with tempfile.NamedTemporaryFile(suffix=".csv", delete=True) as tmp:
            tmp.write(val_bytes)
    thr = C.youden_threshold(y[va], p_all[va])
    rule = ("one global threshold maximising Youden's J (sensitivity + specificity - 1) on the "
            "validation split (20% of patients); candidates are the validation risks, decision "
            "risk >= threshold. fitted_on.sha256 is the SHA-256 of the validation cohort CSV that "
            "train_readmission_xgb.py writes (test_cohort.csv layout, all validation encounters; "
            "--write-validation PATH keeps it).")
    C.write_json(OUT / "policy.json",
                 C.policy(rule, {"kind": "youden_j"}, thr, int(va.sum()), C.sha256_bytes(val_bytes),
                          C.model_binding(NAME, VERSION, model_path)))
    print(f"threshold {thr!r}")

    feats = [C.feature_entry(n, t, u, desc, X.loc[tr, n].to_numpy(dtype=float), False)
             for n, t, u, desc in R.FEATURES]
    man = C.manifest(NAME, VERSION, "readmitted within 30 days (readmitted == '<30')",
                     model_path, "xgboost", "encounter_id", feats, R.GROUPS,
                     {n: X.loc[tr, n].to_numpy(dtype=float) for n in names}, p_all[tr])
    C.write_json(OUT / "manifest.json", man)

    te_idx = np.flatnonzero(te)
    pick = np.sort(np.random.default_rng(R.COHORT_SEED).choice(te_idx, R.COHORT_SAMPLE, replace=False))
    (OUT / "test_cohort.csv").write_bytes(R.cohort_csv(R.cohort_frame(d.iloc[pick], X.iloc[pick],
                                                                      y[pick], p_all[pick])))

    groups = {g["name"]: C.apply_group(g, (d[g["field"]] if g["source"] == "field"
                                           else X[g["field"]])[te].tolist())
              for g in R.GROUPS}
    perf = C.group_performance(y[te], p_all[te], thr, groups,
                               clusters=d.loc[te, "patient_nbr"].to_numpy(),
                               orders={g["name"]: C.group_order(g) for g in R.GROUPS})
    val_perf = C.all_metrics(y[va], p_all[va], thr)
    gain = booster.get_score(importance_type="total_gain")
    importance = sorted(gain.items(), key=lambda t: -t[1])[:12]
    write_card(d, y, tr, va, te, thr, perf, val_perf, base_score, importance)
    print(C.performance_table(perf))
    print(f"done in {time.time() - t0:.0f} s")


def write_card(d, y, tr, va, te, thr, perf, val_perf, base_score, importance) -> None:
    ov = perf[0][3]
    params = ", ".join(f"{k}={v}" for k, v in PARAMS.items())
    imp = "\n".join(f"| `{n}` | {g:,.1f} |" for n, g in importance)
    card = f"""# Model card: `{NAME}` {VERSION}

30-day all-cause readmission risk for adult inpatient encounters of patients with diabetes.
An XGBoost gradient-boosted tree ensemble ({NUM_TREES} trees of depth <= 5) on the same 35 features,
cohort and split as the `readmission` logistic model, shipped as XGBoost JSON (`model.json`).
Generated by `models/training/train_readmission_xgb.py`; do not edit by hand.

## Intended use
- A **reference model for Vigil**: to exercise XGBoost JSON loading, exact TreeSHAP, group
  thresholds and subgroup monitoring, and to compare a tree model with the logistic one on the same
  cohort and groups.
- Research and education on readmission modelling and fairness auditing.

## Not intended use
- **Not for clinical decisions** about any patient (not prospectively validated; 1999-2008 data;
  modest discrimination, AUROC about {ov['auroc'][0]:.2f}). It must not drive discharge planning,
  resource allocation or coverage.
- Not for populations outside the source data.

{R.data_and_features_md(d, y, tr, va, te)}## Training
XGBoost 3.1.2, `xgb.train` with {params}, {NUM_TREES} rounds, no early stopping, no class weights.
The JSON's `base_score` is `{base_score}` (estimated by XGBoost from the training labels; a
probability, so the margin starts at logit(base_score)). Predictions are XGBoost's float32
`Booster.predict` of the saved `model.json`; split conditions in the JSON are float32 and the
features here are small integers, so comparisons are exact in float32 or float64.

Top features by total gain:

| feature | total gain |
|---|---:|
{imp}

## Guardrail policy
One global threshold **{thr:.6f}** (exact value in `policy.json`) maximising Youden's J on the
validation split; no group thresholds yet. On validation: sensitivity {val_perf['sensitivity']:.3f},
specificity {val_perf['specificity']:.3f}.

## Performance on the held-out test split
All {te.sum():,} test encounters. 95% CIs: percentile bootstrap, {C.N_BOOTSTRAP} resamples of
patients (seed {C.BOOTSTRAP_SEED}), separately per group. Sensitivity/specificity at the policy
threshold. ECE: 10 equal-width bins. Calibration slope and intercept: unpenalised logistic fit of
the label on logit(risk).

{C.performance_table(perf)}
## Comparison with published results
As for `readmission`: Strack et al. (2014) report associations, not discrimination, and we have not
verified a published AUROC on a comparable patient-level split, so we make no numerical
comparison. The like-for-like comparison is the logistic `readmission` model on the same test
split (see its card).

## Caveats and known gaps
- Modest discrimination; gains over the logistic model are small, while the tree model is harder
  to explain and its risks move in steps.
- Race is recorded by the hospitals (`?` = unknown); small groups have wide CIs.
- Features reflect 1999-2008 ICD-9 coding and US practice; expect drift on current data.
- `test_cohort.csv` holds the same {R.COHORT_SAMPLE:,} test encounters as the `readmission` package
  (numpy `default_rng({R.COHORT_SEED})`); `reference_risk` is XGBoost's float32 `Booster.predict`
  written as the exact double of that float32.
"""
    (OUT / "MODEL_CARD.md").write_text(card, encoding="utf-8")


if __name__ == "__main__":
    main()
