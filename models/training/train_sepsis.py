#!/usr/bin/env python3
"""Train the `sepsis` reference model: hourly sepsis risk on PhysioNet 2019 training set B.

LightGBM binary model on per-hour features computed within each ICU stay (forward-filled last
values, 6-hour vital-sign trends, hours since each lab was last measured). Writes
models/sepsis/{model.txt, manifest.json, policy.json, test_cohort.csv, MODEL_CARD.md}.

Run from the repository root:  python3 models/training/train_sepsis.py
Options: --write-validation PATH  also keep the validation CSV whose SHA-256 is in policy.json
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.dont_write_bytecode = True   # keep models/training free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402
import sepsis_pipeline  # noqa: E402

NAME = "sepsis"
VERSION = "1.0.0"
OUT = C.MODELS_DIR / NAME
SRC = C.DATA_DIR / "sepsis2019" / "training_setB_p100001-p109271.tar.gz"
COHORT_STAYS = 80
COHORT_SEED = 7
TARGET_SENSITIVITY = 0.80
SEED = 42

VITALS = [  # (column, unit, description)
    ("HR", "beats/min", "heart rate"),
    ("O2Sat", "%", "pulse oximetry"),
    ("Temp", "deg C", "temperature"),
    ("SBP", "mm Hg", "systolic blood pressure"),
    ("MAP", "mm Hg", "mean arterial pressure"),
    ("DBP", "mm Hg", "diastolic blood pressure"),
    ("Resp", "breaths/min", "respiration rate"),
]
LABS = [
    ("Lactate", "mmol/L", "lactic acid (challenge documents mg/dL; values are consistent with mmol/L)"),
    ("WBC", "10^3/uL", "leukocyte count"),
    ("Creatinine", "mg/dL", "creatinine"),
    ("BUN", "mg/dL", "blood urea nitrogen"),
    ("Platelets", "10^3/uL", "platelet count"),
    ("Bilirubin_total", "mg/dL", "total bilirubin"),
    ("Glucose", "mg/dL", "serum glucose"),
    ("Hgb", "g/dL", "hemoglobin"),
    ("Hct", "%", "hematocrit"),
    ("Potassium", "mmol/L", "potassium"),
    ("Calcium", "mg/dL", "calcium"),
    ("Magnesium", "mmol/dL", "magnesium (unit as documented by the challenge)"),
    ("Phosphate", "mg/dL", "phosphate"),
    ("FiO2", "fraction", "fraction of inspired oxygen (challenge documents %; values are mostly 0.21-1)"),
    ("pH", "pH", "arterial pH"),
    ("PaCO2", "mm Hg", "arterial partial pressure of CO2"),
    ("AST", "IU/L", "aspartate transaminase"),
    ("PTT", "s", "partial thromboplastin time"),
]

FEATURES: list[tuple[str, str, str, str, bool]] = []   # name, type, unit, description, missing_allowed
for col, unit, desc in VITALS:
    FEATURES.append((col, "numeric", unit,
                     f"{desc}: last value observed in this stay up to this hour (forward fill); "
                     "missing if never observed", True))
for col, unit, desc in VITALS:
    FEATURES.append((f"{col}_d6", "numeric", unit,
                     f"{desc}: forward-filled value now minus forward-filled value 6 hours (rows) "
                     "earlier; missing in the first 6 hours or if either is missing", True))
for col, unit, desc in LABS:
    FEATURES.append((col, "numeric", unit,
                     f"{desc}: last value observed in this stay up to this hour (forward fill); "
                     "missing if never measured", True))
    FEATURES.append((f"{col}_hsince", "integer", "hours",
                     f"hours since {col} was last measured (0 = measured this hour); missing if "
                     "never measured in this stay", True))
FEATURES += [
    ("ICULOS", "integer", "hours", "ICU length of stay: hours since ICU admission", False),
    ("HospAdmTime", "numeric", "hours", "hours between hospital admission and ICU admission "
     "(negative = admitted to hospital before the ICU)", False),
    ("Age", "numeric", "years", "age in years (100 for patients aged 90 or above)", False),
    ("Gender", "binary", "indicator", "sex: 0 = female, 1 = male", False),
]
FEATURE_NAMES = [f[0] for f in FEATURES]
INT_FEATURES = [f[0] for f in FEATURES if f[1] in ("integer", "binary")]

GROUPS = [
    {"name": "sex", "source": "feature", "field": "Gender",
     "map": {"0": "Female", "1": "Male"}, "other": "Unknown", "missing": "Unknown"},
    {"name": "age_band", "source": "feature", "field": "Age",
     "bins": {"edges": [40, 60, 80], "labels": ["<40", "40-59", "60-79", "80+"]},
     "missing": "Unknown"},
]

PARAMS = {
    "objective": "binary", "learning_rate": 0.02, "num_leaves": 31, "min_data_in_leaf": 1000,
    "feature_fraction": 0.5, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 10.0,
    "seed": SEED, "deterministic": True, "force_col_wise": True, "num_threads": 2,
    "verbose": -1,
}
NUM_TREES = 250


def load() -> pd.DataFrame:
    """All hourly rows of set B, one text parse (patient id prepended to every line)."""
    parts, header = [], None
    with tarfile.open(SRC) as tf:
        for m in tf:
            if not m.isfile() or not m.name.endswith(".psv"):
                continue
            pid = m.name.rsplit("/", 1)[-1][:-4]
            lines = tf.extractfile(m).read().decode("ascii").splitlines()
            if header is None:
                header = "patient_id|" + lines[0]
            elif "patient_id|" + lines[0] != header:
                raise ValueError(f"{m.name}: unexpected header")
            parts.extend(f"{pid}|{ln}" for ln in lines[1:] if ln)
    text = header + "\n" + "\n".join(parts) + "\n"
    d = pd.read_csv(io.StringIO(text), sep="|", na_values=["NaN"], keep_default_na=False,
                    dtype={"patient_id": str})
    d = d.sort_values(["patient_id", "ICULOS"], kind="mergesort").reset_index(drop=True)
    return d


def features(d: pd.DataFrame) -> pd.DataFrame:
    g = d.groupby("patient_id", sort=False)
    X = pd.DataFrame(index=d.index)
    ffill = {}
    for col, _, _ in VITALS:
        ffill[col] = g[col].ffill()
        X[col] = ffill[col]
    for col, _, _ in VITALS:
        prev = ffill[col].groupby(d["patient_id"], sort=False).shift(6)
        X[f"{col}_d6"] = ffill[col] - prev
    for col, _, _ in LABS:
        X[col] = g[col].ffill()
        t_meas = d["ICULOS"].where(d[col].notna()).astype(float)
        last_t = t_meas.groupby(d["patient_id"], sort=False).ffill()
        X[f"{col}_hsince"] = d["ICULOS"] - last_t
    X["ICULOS"] = d["ICULOS"].astype(float)
    X["HospAdmTime"] = d["HospAdmTime"].astype(float)
    X["Age"] = d["Age"].astype(float)
    X["Gender"] = d["Gender"].astype(float)
    assert list(X.columns) == FEATURE_NAMES
    return X.astype(np.float64)


COHORT_COLUMNS = ["row_id", "patient_id"] + FEATURE_NAMES + ["label", "reference_risk"]


def cohort_csv(d: pd.DataFrame, X: pd.DataFrame, y: np.ndarray, risk: np.ndarray) -> bytes:
    f = pd.DataFrame({
        "row_id": (d["patient_id"] + ":h" + d["ICULOS"].astype(int).astype(str)).to_numpy(),
        "patient_id": d["patient_id"].to_numpy()})
    for c in FEATURE_NAMES:
        f[c] = X[c].to_numpy()
    f["label"] = y.astype(np.int64)
    f["reference_risk"] = risk
    return C.csv_bytes(COHORT_COLUMNS, C.frame_rows(f, COHORT_COLUMNS,
                                                    int_columns=INT_FEATURES + ["label"]))


# MARK: - PhysioNet 2019 utility (re-implemented from the challenge's evaluate_sepsis_score.py)

DT_EARLY, DT_OPTIMAL, DT_LATE = -12, -6, 3
MAX_U_TP, MIN_U_FN, U_FP, U_TN = 1.0, -2.0, -0.05, 0.0


def _utility(labels: np.ndarray, pred: np.ndarray) -> float:
    n = len(labels)
    septic = bool(labels.any())
    t_sepsis = int(np.argmax(labels)) - DT_OPTIMAL if septic else np.inf
    m1 = MAX_U_TP / (DT_OPTIMAL - DT_EARLY); b1 = -m1 * DT_EARLY
    m2 = -MAX_U_TP / (DT_LATE - DT_OPTIMAL); b2 = -m2 * DT_LATE
    m3 = MIN_U_FN / (DT_LATE - DT_OPTIMAL); b3 = -m3 * DT_OPTIMAL
    u = 0.0
    for t in range(n):
        if t > t_sepsis + DT_LATE:
            continue
        if septic and pred[t]:
            if t <= t_sepsis + DT_OPTIMAL:
                u += max(m1 * (t - t_sepsis) + b1, U_FP)
            else:
                u += m2 * (t - t_sepsis) + b2
        elif not septic and pred[t]:
            u += U_FP
        elif septic and not pred[t]:
            if t > t_sepsis + DT_OPTIMAL:
                u += m3 * (t - t_sepsis) + b3
        else:
            u += U_TN
    return u


def normalized_utility(pids: np.ndarray, y: np.ndarray, decision: np.ndarray) -> float:
    obs = best = inaction = 0.0
    starts = np.r_[0, np.flatnonzero(pids[1:] != pids[:-1]) + 1, len(pids)]
    for a, b in zip(starts[:-1], starts[1:]):
        lab = y[a:b]
        n = b - a
        best_pred = np.zeros(n, dtype=bool)
        if lab.any():
            ts = int(np.argmax(lab)) - DT_OPTIMAL
            best_pred[max(0, ts + DT_EARLY):min(ts + DT_LATE + 1, n)] = True
        obs += _utility(lab, decision[a:b])
        best += _utility(lab, best_pred)
        inaction += _utility(lab, np.zeros(n, dtype=bool))
    return (obs - inaction) / (best - inaction)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--write-validation", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.time()
    import lightgbm as lgb

    d = load()
    print(f"loaded {len(d)} hourly rows, {d['patient_id'].nunique()} stays in {time.time() - t0:.0f} s")
    X = features(d)
    y = d["SepsisLabel"].to_numpy().astype(np.int64)
    pid = d["patient_id"].to_numpy()
    split = C.patient_split(pid)
    tr, va, te = (split == "train"), (split == "val"), (split == "test")
    stats = {}
    for s, m in [("train", tr), ("val", va), ("test", te)]:
        pos_pat = d.loc[m].groupby("patient_id")["SepsisLabel"].max()
        stats[s] = (int(m.sum()), len(pos_pat), int(pos_pat.sum()), float(y[m].mean()))
        print(f"{s}: {m.sum()} hours, {len(pos_pat)} stays, {pos_pat.sum()} septic stays, "
              f"hourly prevalence {y[m].mean():.4f}")

    dtrain = lgb.Dataset(X[tr].to_numpy(), label=y[tr], feature_name=FEATURE_NAMES,
                         free_raw_data=False)
    booster = lgb.train(PARAMS, dtrain, num_boost_round=NUM_TREES)
    OUT.mkdir(parents=True, exist_ok=True)
    model_path = OUT / "model.txt"
    booster.save_model(str(model_path))
    # score with the saved file, as a consumer would
    booster = lgb.Booster(model_file=str(model_path))
    p_all = booster.predict(X.to_numpy(), num_threads=2)
    print(f"trained {booster.num_trees()} trees in {time.time() - t0:.0f} s")

    # policy: lowest-alarm threshold with hourly sensitivity >= 0.80 on validation
    val_bytes = cohort_csv(d[va], X[va], y[va], p_all[va])
    if args.write_validation:
        args.write_validation.write_bytes(val_bytes)
    else:
        with tempfile.NamedTemporaryFile(suffix=".csv", delete=True) as tmp:
            tmp.write(val_bytes)
    thr = C.sensitivity_threshold(y[va], p_all[va], TARGET_SENSITIVITY)
    rule = (f"one global threshold: the largest validation risk t such that the hourly "
            f"sensitivity of risk >= t on the validation split (20% of stays, every ICU hour one "
            f"row) is at least {TARGET_SENSITIVITY:.2f}. fitted_on.sha256 is the SHA-256 of the "
            "validation cohort CSV that train_sepsis.py writes (test_cohort.csv layout, all "
            "validation hours; --write-validation PATH keeps it).")
    # FORMATS.md has no objective kind for "reach a target sensitivity"; see README/report.
    pol = C.policy(rule, {"kind": "min_sensitivity", "target": TARGET_SENSITIVITY}, thr,
                   int(va.sum()), C.sha256_bytes(val_bytes), C.model_binding(NAME, VERSION, model_path))
    C.write_json(OUT / "policy.json", pol)
    print(f"threshold {thr!r}")

    feats = [C.feature_entry(n, t, u, desc, X.loc[tr, n].to_numpy(), miss)
             for n, t, u, desc, miss in FEATURES]
    man = C.manifest(NAME, VERSION,
                     "SepsisLabel == 1 for this ICU hour (Sepsis-3 onset within the next 6 hours, "
                     "or later)", model_path, "lightgbm", "row_id", feats, GROUPS,
                     {n: X.loc[tr, n].to_numpy() for n in FEATURE_NAMES}, p_all[tr])
    man["pipeline"] = sepsis_pipeline.pipeline()   # after `reference`, as sepsis_pipeline.py writes it
    C.write_json(OUT / "manifest.json", man)

    # committed sample: all hours of COHORT_STAYS random test stays
    test_pids = np.unique(pid[te])
    pick = np.random.default_rng(COHORT_SEED).choice(test_pids, COHORT_STAYS, replace=False)
    rows = np.flatnonzero(np.isin(pid, pick))
    (OUT / "test_cohort.csv").write_bytes(cohort_csv(d.iloc[rows], X.iloc[rows], y[rows], p_all[rows]))

    # evaluation on the full test split: hourly (patients resampled) and per stay
    ph, yh, pidh = p_all[te], y[te], pid[te]
    orders = {g["name"]: C.group_order(g) for g in GROUPS}
    groups_h = {g["name"]: C.apply_group(g, X.loc[te, g["field"]].tolist()) for g in GROUPS}
    perf_h = C.group_performance(yh, ph, thr, groups_h, clusters=pidh, orders=orders)
    st = pd.DataFrame({"pid": pidh, "p": ph, "y": yh,
                       "Gender": X.loc[te, "Gender"].to_numpy(), "Age": X.loc[te, "Age"].to_numpy()})
    st = st.groupby("pid", sort=True).agg(p=("p", "max"), y=("y", "max"), Gender=("Gender", "first"),
                                          Age=("Age", "first"))
    groups_s = {g["name"]: C.apply_group(g, st[g["field"]].tolist()) for g in GROUPS}
    perf_s = C.group_performance(st["y"].to_numpy(), st["p"].to_numpy(), thr, groups_s,
                                 orders=orders)
    # challenge utility at the policy threshold and at the validation-utility-optimal threshold
    util_policy = normalized_utility(pidh, yh, ph >= thr)
    cand = np.quantile(p_all[va], np.linspace(0.5, 0.999, 60))
    util_val = [normalized_utility(pid[va], y[va], p_all[va] >= c) for c in cand]
    thr_u = float(cand[int(np.argmax(util_val))])
    util_best = normalized_utility(pidh, yh, ph >= thr_u)
    val_perf = C.all_metrics(y[va], p_all[va], thr)
    importance = sorted(zip(FEATURE_NAMES, booster.feature_importance("gain")),
                        key=lambda t: -t[1])[:15]
    write_card(stats, thr, perf_h, perf_s, val_perf, util_policy, thr_u, util_best, importance,
               booster.num_trees(), len(rows))
    print(C.performance_table(perf_h))
    print(C.performance_table(perf_s))
    print(f"utility at policy threshold {util_policy:.3f}; at validation-utility-optimal "
          f"threshold {thr_u:.4f}: {util_best:.3f}")
    print(f"done in {time.time() - t0:.0f} s")


def write_card(stats, thr, perf_h, perf_s, val_perf, util_policy, thr_u, util_best, importance,
               n_trees, cohort_rows) -> None:
    lab_list = ", ".join(f"`{c}`" for c, _, _ in LABS)
    vit_list = ", ".join(f"`{c}`" for c, _, _ in VITALS)
    imp = "\n".join(f"| `{n}` | {g:,.0f} |" for n, g in importance)
    ovh, ovs = perf_h[0][3], perf_s[0][3]
    tr, va, te = stats["train"], stats["val"], stats["test"]
    params = ", ".join(f"{k}={v}" for k, v in PARAMS.items())
    card = f"""# Model card: `sepsis` {VERSION}

Hourly risk that an ICU patient is septic or will meet Sepsis-3 criteria within 6 hours.
A LightGBM gradient-boosted tree ensemble ({n_trees} trees, `model.txt`) scoring one row per ICU
hour. Generated by `models/training/train_sepsis.py`; do not edit by hand.

## Intended use
- A **reference model for Vigil**: to exercise LightGBM text loading with missing-value routing,
  exact TreeSHAP, group thresholds and subgroup monitoring on real, openly licensed ICU data.
- Research and education on early-warning scores and their fairness auditing.

## Not intended use
- **Not for clinical decisions** or bedside alerting. It is trained on one hospital system's
  retrospective data (challenge set B), was never prospectively validated, and alarm burden at the
  policy threshold is high (hourly specificity about {ovh['specificity'][0]:.2f}).
- Not for paediatric patients, non-ICU wards, or data whose hourly binning or units differ from the
  challenge's.
- Vigil scores the row it is given: the per-stay features (forward fill, trends, hours since a lab)
  must be computed by the caller exactly as described below.

## Data
- **PhysioNet/Computing in Cardiology Challenge 2019, training set B** (patients p100001-p109271,
  one hospital system), licence **CC BY 4.0** (PhysioNet open access).
  Citation: Reyna MA, Josef CS, Jeter R, Shashikumar SP, Westover MB, Nemati S, Clifford GD,
  Sharma A. *Early Prediction of Sepsis From Clinical Data: The PhysioNet/Computing in Cardiology
  Challenge 2019.* Critical Care Medicine 2020;48(2):210-217. doi:10.1097/CCM.0000000000004145.
  Dataset: Reyna M, et al. PhysioNet (2019), doi:10.13026/v64v-d857; Goldberger AL, et al.
  PhysioBank, PhysioToolkit, and PhysioNet. Circulation 2000;101(23):e215-e220.
- 9,271 ICU stays, 351,816 hourly rows; no exclusions. Each `.psv` file is one stay (no patient
  identifier links stays, so a stay is treated as a patient).
- **Label**: the challenge's `SepsisLabel` per hour (1 from 6 hours before the Sepsis-3 onset
  time onwards, for septic stays).
- **Splits** by stay (seed {C.SPLIT_SEED}, 60/20/20): train {tr[0]:,} hours / {tr[1]:,} stays
  ({tr[2]:,} septic; hourly prevalence {tr[3]:.4f}), validation {va[0]:,} / {va[1]:,}
  ({va[2]:,}; {va[3]:.4f}), test {te[0]:,} / {te[1]:,} ({te[2]:,}; {te[3]:.4f}).

## Features and encoding
Computed per stay, in time order (rows are consecutive ICU hours, `ICULOS` = 1, 2, ...), using
only the current and earlier hours (causal):
- vital signs {vit_list}: the last observed value (forward fill within the stay), and `<vital>_d6`
  = forward-filled value now minus forward-filled value 6 rows earlier;
- labs {lab_list}: the last observed value (forward fill) and `<lab>_hsince` = `ICULOS` now minus
  `ICULOS` of the last measurement (0 when measured this hour);
- `ICULOS`, `HospAdmTime`, `Age`, `Gender` (0 female, 1 male) as given.
Never-observed values stay **missing** (NaN; an empty CSV field) and LightGBM routes them by each
split's learned default direction; nothing is imputed. Units and ranges are in `manifest.json`.
`Unit1`/`Unit2`, `EtCO2` and the rarest labs (>99% missing in set B) are not used.

## Training
LightGBM 4.6.0, `lgb.train` with {params}, {NUM_TREES} boosting rounds, no early stopping and no
class weighting (so the risks stay calibrated). The regularisation (learning rate, `min_data_in_leaf`,
`lambda_l2`, `feature_fraction`) was picked by hand from seven configurations by validation
AUROC and calibration slope (the first try, learning rate 0.05 and `min_data_in_leaf` 100, had
validation AUROC 0.840 and calibration slope 0.74; this one 0.858 and 0.95); the test split was not
used for any choice. `reference_risk` and all metrics use
`Booster.predict` of the saved `model.txt`.

Top features by total gain:

| feature | gain |
|---|---:|
{imp}

## Guardrail policy
One global threshold **{thr:.6f}** (exact value in `policy.json`): the largest validation risk
whose hourly sensitivity on the validation split is at least {TARGET_SENSITIVITY:.2f}. On validation:
hourly sensitivity {val_perf['sensitivity']:.3f}, specificity {val_perf['specificity']:.3f}.
No group thresholds yet.

## Performance on the held-out test split
All test stays (not only the committed sample). 95% CIs: percentile bootstrap with
{C.N_BOOTSTRAP} resamples (seed {C.BOOTSTRAP_SEED}) **of stays** (all hours of a drawn stay),
separately per group. Sensitivity/specificity at the policy threshold. ECE: 10 equal-width bins.
Calibration slope and intercept: unpenalised logistic fit of the label on logit(risk).

### Per hour (every ICU hour is one prediction)

{C.performance_table(perf_h)}
### Per stay (stay risk = max hourly risk; stay label = any `SepsisLabel`; positive if any hour >= threshold)

{C.performance_table(perf_s)}
Calibration figures for the per-stay table describe the maximum of hourly risks, which is not a
probability of the stay label; read them as descriptive only.

## Comparison with published results
The challenge ranked entries by a normalised **utility score** that rewards alarms from 12 hours
before to 3 hours after onset and penalises late, missed and false alarms, on hidden test sets
(Reyna et al. 2020); the best entries scored about 0.36 on the full hidden test set, and lower on
the hidden third hospital system. Our re-implementation of that utility (from the challenge's published scoring
code) on **our** internal test split of set B gives **{util_policy:.3f}** at the policy threshold
(chosen for sensitivity, not utility) and **{util_best:.3f}** at the threshold maximising utility on
our validation split ({thr_u:.4f}). This is **not like for like**: an internal split of one hospital
system, a stay-level random split rather than the organisers' held-out sets, and no tuning for
utility. Hourly AUROC was not the challenge's ranking metric and published AUROCs use other data
(sets A and B together, other splits or feature windows), so we do not put a number beside our
hourly AUROC of {ovh['auroc'][0]:.3f}.

## Caveats and known gaps
- Hourly rows of one stay are strongly correlated; CIs resample stays. Septic stays are few
  ({te[2]} in test), so per-group CIs are wide, especially for `age_band = <40` and `80+`.
- Hourly sensitivity at a fixed threshold counts all labelled hours, including hours after onset;
  it is not the same as timely detection.
- `SepsisLabel` comes from a retrospective Sepsis-3 definition (suspicion of infection plus a SOFA
  increase); label noise and label timing shape what the model learns.
- Missingness is informative (labs are drawn when clinicians are worried); a change in ordering
  practice will shift the model's behaviour. Monitor the `_hsince` features for drift.
- Set B only; expect worse performance in other hospital systems (the challenge's set C results).
- `test_cohort.csv` holds all {cohort_rows:,} hours of {COHORT_STAYS} test stays drawn uniformly
  at random without replacement (numpy `default_rng({COHORT_SEED})`). `row_id` = `<stay>:h<ICULOS>`;
  `reference_risk` is LightGBM's `Booster.predict`.
"""
    (OUT / "MODEL_CARD.md").write_text(card, encoding="utf-8")


if __name__ == "__main__":
    main()
