#!/usr/bin/env python3
"""Train the `readmission` reference model: 30-day readmission on UCI Diabetes-130.

scikit-learn LogisticRegression on raw (unscaled) encounter features, exported to a float64
ONNX graph with skl2onnx. Writes models/readmission/{model.onnx, manifest.json, policy.json,
test_cohort.csv, MODEL_CARD.md}.

Run from the repository root:  python3 models/training/train_readmission.py
Options: --write-validation PATH  also keep the validation CSV whose SHA-256 is in policy.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.dont_write_bytecode = True   # keep models/training free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402

NAME = "readmission"
VERSION = "1.0.0"
OUT = C.MODELS_DIR / NAME
SRC = C.DATA_DIR / "diabetes130" / "diabetic_data.csv"
EXCLUDED_DISPOSITIONS = {11, 13, 14, 19, 20, 21}   # death or hospice
COHORT_SAMPLE = 2000
COHORT_SEED = 7

# ICD-9 chapter groups of the primary diagnosis (Strack et al. 2014, Table 2); "other" is the
# reference level (V/E codes, missing, and everything not listed).
DIAG_GROUPS = ["circulatory", "respiratory", "digestive", "diabetes", "injury",
               "musculoskeletal", "genitourinary", "neoplasms"]


def diag_group(code: str) -> str:
    if code in ("?", "") or code[0] in "VE":
        return "other"
    f = float(code)
    i = int(f)
    if 390 <= i <= 459 or i == 785:
        return "circulatory"
    if 460 <= i <= 519 or i == 786:
        return "respiratory"
    if 520 <= i <= 579 or i == 787:
        return "digestive"
    if i == 250:
        return "diabetes"
    if 800 <= i <= 999:
        return "injury"
    if 710 <= i <= 739:
        return "musculoskeletal"
    if 580 <= i <= 629 or i == 788:
        return "genitourinary"
    if 140 <= i <= 239:
        return "neoplasms"
    return "other"


# (name, type, unit, description). Order = the model's input columns.
FEATURES: list[tuple[str, str, str, str]] = [
    ("age_years", "numeric", "years", "age: midpoint of the 10-year age bin ([70-80) -> 75)"),
    ("time_in_hospital", "integer", "days", "length of stay"),
    ("num_lab_procedures", "integer", "count", "lab tests performed during the encounter"),
    ("num_procedures", "integer", "count", "procedures (other than lab tests) during the encounter"),
    ("num_medications", "integer", "count", "distinct generic medications administered"),
    ("number_outpatient", "integer", "count", "outpatient visits in the year before the encounter"),
    ("number_emergency", "integer", "count", "emergency visits in the year before the encounter"),
    ("number_inpatient", "integer", "count", "inpatient admissions in the year before the encounter"),
    ("number_diagnoses", "integer", "count", "diagnoses entered for the encounter"),
] + [
    (f"diag1_{g}", "binary", "indicator",
     f"primary diagnosis (diag_1) in the ICD-9 {g} group (reference: other)")
    for g in DIAG_GROUPS
] + [
    ("a1c_norm", "binary", "indicator", "HbA1c measured, normal (reference: not measured)"),
    ("a1c_gt7", "binary", "indicator", "HbA1c measured, >7% and <=8%"),
    ("a1c_gt8", "binary", "indicator", "HbA1c measured, >8%"),
    ("glu_norm", "binary", "indicator", "max glucose serum measured, normal (reference: not measured)"),
    ("glu_gt200", "binary", "indicator", "max glucose serum >200 and <=300 mg/dL"),
    ("glu_gt300", "binary", "indicator", "max glucose serum >300 mg/dL"),
    ("med_change", "binary", "indicator", "any change in diabetes medication (change == 'Ch')"),
    ("diabetes_med", "binary", "indicator", "any diabetes medication prescribed (diabetesMed == 'Yes')"),
    ("insulin_up", "binary", "indicator", "insulin dose increased (reference: no insulin)"),
    ("insulin_down", "binary", "indicator", "insulin dose decreased"),
    ("insulin_steady", "binary", "indicator", "insulin dose unchanged"),
    ("adm_type_emergency", "binary", "indicator",
     "admission type Emergency or Trauma Center (ids 1, 7; reference: other/unknown 4, 5, 6, 8)"),
    ("adm_type_urgent", "binary", "indicator", "admission type Urgent (id 2)"),
    ("adm_type_elective", "binary", "indicator", "admission type Elective (id 3)"),
    ("adm_src_emergency_room", "binary", "indicator",
     "admission source Emergency Room (id 7; reference: other/unknown)"),
    ("adm_src_referral", "binary", "indicator", "admission source physician/clinic/HMO referral (ids 1-3)"),
    ("adm_src_transfer", "binary", "indicator",
     "admission source transfer from a hospital, SNF or other facility (ids 4, 5, 6, 10, 18, 22, 25, 26)"),
    ("discharged_home", "binary", "indicator", "discharged to home (discharge_disposition_id 1)"),
]
FEATURE_NAMES = [f[0] for f in FEATURES]
INT_FEATURES = [f[0] for f in FEATURES if f[1] in ("integer", "binary")]

GROUPS = [
    {"name": "race", "source": "field", "field": "race",
     "map": {"AfricanAmerican": "Black", "Caucasian": "White", "Hispanic": "Hispanic",
             "Asian": "Asian", "Other": "Other", "?": "Unknown"},
     "other": "Other", "missing": "Unknown"},
    {"name": "sex", "source": "field", "field": "gender",
     "map": {"Female": "Female", "Male": "Male", "Unknown/Invalid": "Unknown"},
     "other": "Unknown", "missing": "Unknown"},
    {"name": "age_band", "source": "feature", "field": "age_years",
     "bins": {"edges": [40, 60, 80], "labels": ["<40", "40-59", "60-79", "80+"]},
     "missing": "Unknown"},
]


def load() -> pd.DataFrame:
    d = pd.read_csv(SRC, keep_default_na=False, na_values=[], dtype=str)
    for c in ["encounter_id", "patient_nbr", "admission_type_id", "discharge_disposition_id",
              "admission_source_id", "time_in_hospital", "num_lab_procedures", "num_procedures",
              "num_medications", "number_outpatient", "number_emergency", "number_inpatient",
              "number_diagnoses"]:
        d[c] = d[c].astype(np.int64)
    n0 = len(d)
    d = d[~d["discharge_disposition_id"].isin(EXCLUDED_DISPOSITIONS)].reset_index(drop=True)
    print(f"rows {n0} -> {len(d)} after excluding death/hospice dispositions")
    return d


def features(d: pd.DataFrame) -> pd.DataFrame:
    X = pd.DataFrame(index=d.index)
    lo = d["age"].str.extract(r"\[(\d+)-(\d+)\)").astype(float)
    X["age_years"] = (lo[0] + lo[1]) / 2.0
    for c in ["time_in_hospital", "num_lab_procedures", "num_procedures", "num_medications",
              "number_outpatient", "number_emergency", "number_inpatient", "number_diagnoses"]:
        X[c] = d[c].astype(np.int64)
    g = d["diag_1"].map(diag_group)
    for name in DIAG_GROUPS:
        X[f"diag1_{name}"] = (g == name).astype(np.int64)
    X["a1c_norm"] = (d["A1Cresult"] == "Norm").astype(np.int64)
    X["a1c_gt7"] = (d["A1Cresult"] == ">7").astype(np.int64)
    X["a1c_gt8"] = (d["A1Cresult"] == ">8").astype(np.int64)
    X["glu_norm"] = (d["max_glu_serum"] == "Norm").astype(np.int64)
    X["glu_gt200"] = (d["max_glu_serum"] == ">200").astype(np.int64)
    X["glu_gt300"] = (d["max_glu_serum"] == ">300").astype(np.int64)
    X["med_change"] = (d["change"] == "Ch").astype(np.int64)
    X["diabetes_med"] = (d["diabetesMed"] == "Yes").astype(np.int64)
    X["insulin_up"] = (d["insulin"] == "Up").astype(np.int64)
    X["insulin_down"] = (d["insulin"] == "Down").astype(np.int64)
    X["insulin_steady"] = (d["insulin"] == "Steady").astype(np.int64)
    at = d["admission_type_id"]
    X["adm_type_emergency"] = at.isin([1, 7]).astype(np.int64)
    X["adm_type_urgent"] = (at == 2).astype(np.int64)
    X["adm_type_elective"] = (at == 3).astype(np.int64)
    src = d["admission_source_id"]
    X["adm_src_emergency_room"] = (src == 7).astype(np.int64)
    X["adm_src_referral"] = src.isin([1, 2, 3]).astype(np.int64)
    X["adm_src_transfer"] = src.isin([4, 5, 6, 10, 18, 22, 25, 26]).astype(np.int64)
    X["discharged_home"] = (d["discharge_disposition_id"] == 1).astype(np.int64)
    assert list(X.columns) == FEATURE_NAMES
    return X


def cohort_frame(d: pd.DataFrame, X: pd.DataFrame, y: np.ndarray, risk: np.ndarray) -> pd.DataFrame:
    f = pd.DataFrame({"encounter_id": d["encounter_id"].to_numpy()})
    for c in FEATURE_NAMES:
        f[c] = X[c].to_numpy()
    f["race"] = d["race"].replace("?", "").to_numpy()   # `?` -> missing (empty field)
    f["gender"] = d["gender"].to_numpy()
    f["label"] = y.astype(np.int64)
    f["reference_risk"] = risk
    return f


COHORT_COLUMNS = ["encounter_id"] + FEATURE_NAMES + ["race", "gender", "label", "reference_risk"]


def cohort_csv(f: pd.DataFrame) -> bytes:
    return C.csv_bytes(COHORT_COLUMNS, C.frame_rows(
        f, COHORT_COLUMNS, int_columns=["encounter_id", "label"] + INT_FEATURES))


def export_onnx(model, n_features: int, path: Path) -> list[str]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType
    onx = convert_sklearn(model, initial_types=[("input", DoubleTensorType([None, n_features]))],
                          options={id(model): {"zipmap": False}}, target_opset=17)
    onx.doc_string = f"Vigil reference model {NAME} {VERSION}"
    onx.graph.name = NAME          # skl2onnx names the graph with a random UUID; keep bytes stable
    path.write_bytes(onx.SerializeToString())
    return [n.op_type for n in onx.graph.node]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--write-validation", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.time()
    from sklearn.linear_model import LogisticRegression
    import onnxruntime as ort

    d = load()
    X = features(d)
    y = (d["readmitted"] == "<30").to_numpy().astype(np.int64)
    split = C.patient_split(d["patient_nbr"].to_numpy())
    tr, va, te = (split == "train"), (split == "val"), (split == "test")
    for s, m in [("train", tr), ("val", va), ("test", te)]:
        print(f"{s}: {m.sum()} encounters, {d.loc[m, 'patient_nbr'].nunique()} patients, "
              f"prevalence {y[m].mean():.4f}")

    Xtr = X[tr].to_numpy(dtype=np.float64)
    model = LogisticRegression(C=1.0, solver="lbfgs", max_iter=20000, tol=1e-10)
    model.fit(Xtr, y[tr])
    print(f"lbfgs iterations: {model.n_iter_[0]}")
    p_all = model.predict_proba(X.to_numpy(dtype=np.float64))[:, 1]

    OUT.mkdir(parents=True, exist_ok=True)
    model_path = OUT / "model.onnx"
    ops = export_onnx(model, len(FEATURE_NAMES), model_path)
    print("ONNX op types:", ops)
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    p_onnx = sess.run(["probabilities"], {"input": X.to_numpy(dtype=np.float64)})[0][:, 1]
    max_diff = float(np.max(np.abs(p_onnx - p_all)))
    print(f"ONNX outputs {out_names}; max |onnxruntime - predict_proba| = {max_diff:.3e}")
    assert max_diff <= 1e-12, max_diff

    # policy: Youden's J on the validation split, fitted on the validation CSV bytes
    val_frame = cohort_frame(d[va], X[va], y[va], p_all[va])
    val_bytes = cohort_csv(val_frame)
    if args.write_validation:
        args.write_validation.write_bytes(val_bytes)
    else:
        with tempfile.NamedTemporaryFile(suffix=".csv", delete=True) as tmp:
            tmp.write(val_bytes)
    thr = C.youden_threshold(y[va], p_all[va])
    rule = ("one global threshold maximising Youden's J (sensitivity + specificity - 1) on the "
            "validation split (20% of patients); candidates are the validation risks, decision "
            "risk >= threshold. fitted_on.sha256 is the SHA-256 of the validation cohort CSV that "
            "train_readmission.py writes (test_cohort.csv layout, all validation encounters; "
            "--write-validation PATH keeps it).")
    pol = C.policy(rule, {"kind": "youden_j"}, thr, int(va.sum()), C.sha256_bytes(val_bytes),
                   C.model_binding(NAME, VERSION, model_path))
    C.write_json(OUT / "policy.json", pol)
    print(f"threshold {thr!r}")

    # manifest
    feats = [C.feature_entry(n, t, u, desc, X.loc[tr, n].to_numpy(dtype=float), False)
             for n, t, u, desc in FEATURES]
    man = C.manifest(NAME, VERSION, "readmitted within 30 days (readmitted == '<30')",
                     model_path, "onnx", "encounter_id", feats, GROUPS,
                     {n: X.loc[tr, n].to_numpy(dtype=float) for n in FEATURE_NAMES}, p_all[tr])
    C.write_json(OUT / "manifest.json", man)

    # committed test sample
    te_idx = np.flatnonzero(te)
    pick = np.sort(np.random.default_rng(COHORT_SEED).choice(te_idx, COHORT_SAMPLE, replace=False))
    (OUT / "test_cohort.csv").write_bytes(cohort_csv(cohort_frame(d.iloc[pick], X.iloc[pick],
                                                                  y[pick], p_all[pick])))

    # evaluation on the full test split
    groups = {g["name"]: C.apply_group(g, (d[g["field"]] if g["source"] == "field"
                                           else X[g["field"]])[te].tolist())
              for g in GROUPS}
    perf = C.group_performance(y[te], p_all[te], thr, groups,
                               clusters=d.loc[te, "patient_nbr"].to_numpy(),
                               orders={g["name"]: C.group_order(g) for g in GROUPS})
    val_perf = C.all_metrics(y[va], p_all[va], thr)
    write_card(d, X, y, tr, va, te, model, thr, perf, val_perf, ops, max_diff)
    print(C.performance_table(perf))
    print(f"done in {time.time() - t0:.0f} s")


def data_and_features_md(d, y, tr, va, te) -> str:
    """The card's Data and Features sections (shared with train_readmission_xgb.py)."""
    n_pat = {s: d.loc[m, "patient_nbr"].nunique() for s, m in [("train", tr), ("val", va), ("test", te)]}
    return f"""## Data
- **UCI "Diabetes 130-US hospitals for years 1999-2008"**, licence **CC BY 4.0**.
  Citation: Strack B, DeShazo JP, Gennings C, Olmo JL, Ventura S, Cios KJ, Clore JN. *Impact of
  HbA1c measurement on hospital readmission rates: analysis of 70,000 clinical database patient
  records.* BioMed Research International 2014; 2014:781670. doi:10.1155/2014/781670.
- File `diabetes130/diabetic_data.csv` (101,766 encounters, 71,518 patients), read with
  `keep_default_na=False` so that `None` in `A1Cresult` / `max_glu_serum` means "not measured".
- **Exclusions**: encounters with `discharge_disposition_id` in 11, 13, 14, 19, 20, 21 (death or
  hospice), leaving {len(d):,} encounters. Unlike Strack et al., all encounters of a patient are
  kept (not only the first), so repeated admissions of one patient are in the same split.
- **Outcome**: `readmitted == '<30'` (readmitted within 30 days); `>30` and `NO` are negatives.
- **Splits** by `patient_nbr` (seed {C.SPLIT_SEED}, 60/20/20 of patients):
  train {tr.sum():,} encounters / {n_pat['train']:,} patients (prevalence {y[tr].mean():.3f}),
  validation {va.sum():,} / {n_pat['val']:,} ({y[va].mean():.3f}),
  test {te.sum():,} / {n_pat['test']:,} ({y[te].mean():.3f}).

## Features and encoding
Raw, unscaled values in the order of the model input (`manifest.json` has ranges and means):
counts (`time_in_hospital`, `num_lab_procedures`, `num_procedures`, `num_medications`,
`number_outpatient`, `number_emergency`, `number_inpatient`, `number_diagnoses`) as given;
`age_years` = midpoint of the 10-year age bin; 0/1 indicators for the ICD-9 group of the primary
diagnosis `diag_1` (circulatory 390-459 and 785, respiratory 460-519 and 786, digestive 520-579
and 787, diabetes 250.xx, injury 800-999, musculoskeletal 710-739, genitourinary 580-629 and 788,
neoplasms 140-239; reference "other" = all else including V/E codes and missing), HbA1c and max
glucose serum results (reference: not measured), medication change, any diabetes medication,
insulin up/down/steady (reference: no insulin), admission type (emergency/trauma, urgent,
elective; reference other/unknown), admission source (emergency room, referral, transfer;
reference other/unknown) and discharged to home (disposition 1). No value is missing after
encoding. **Race and sex are not model inputs**; they (and the age band) are group fields for
thresholds and monitoring.

"""


def write_card(d, X, y, tr, va, te, model, thr, perf, val_perf, ops, max_diff) -> None:
    coef_rows = "\n".join(
        f"| `{n}` | {c:+.4f} | {np.exp(c):.3f} |" for n, c in zip(FEATURE_NAMES, model.coef_[0]))
    ov = perf[0][3]
    by_label = {lab: m for lab, _, _, m in perf}
    age80, age40 = by_label["age_band = 80+"], by_label["age_band = <40"]
    n_sex_unknown = int((d.loc[te, "gender"] == "Unknown/Invalid").sum())
    card = f"""# Model card: `readmission` {VERSION}

30-day all-cause readmission risk for adult inpatient encounters of patients with diabetes.
A logistic regression (scikit-learn) on 35 encounter features, shipped as a float64 ONNX graph
(`model.onnx`). Generated by `models/training/train_readmission.py`; do not edit by hand.

## Intended use
- A **reference model for Vigil**: to exercise ONNX logistic-regression loading, exact linear
  attributions, group thresholds and subgroup monitoring on real, openly licensed clinical data.
- Research and education on readmission modelling and fairness auditing.

## Not intended use
- **Not for clinical decisions** about any patient. It was not prospectively validated, the data
  are from 1999-2008 US hospitals, and its discrimination is modest (AUROC about
  {ov['auroc'][0]:.2f}). It must not drive discharge planning, resource allocation or coverage.
- Not for populations outside the source data (non-diabetic patients, children, other countries,
  current coding practices such as ICD-10).

{data_and_features_md(d, y, tr, va, te)}## Training
- `LogisticRegression(C=1.0, solver="lbfgs", max_iter=20000, tol=1e-10)` (L2 penalty, scikit-learn
  1.7.2) on the training split; {model.n_iter_[0]} iterations. No scaling, so the ONNX graph
  needs none. Intercept {model.intercept_[0]:+.4f}.
- Exported with skl2onnx 1.19.1, input `input` float64 [N, 35], `zipmap` off; outputs `label`
  (int64) and `probabilities` (float64 [N, 2], column 1 = readmission risk). Op types:
  {", ".join(f"`{o}`" for o in ops)}. Max |onnxruntime - predict_proba| over all encounters:
  {max_diff:.1e}.

| feature | coefficient | odds ratio per unit |
|---|---:|---:|
{coef_rows}

## Guardrail policy
One global threshold **{thr:.6f}** (exact value in `policy.json`) maximising Youden's J on the
validation split; no group thresholds yet. On validation: sensitivity {val_perf['sensitivity']:.3f},
specificity {val_perf['specificity']:.3f}.

## Performance on the held-out test split
All {te.sum():,} test encounters (not only the committed sample). 95% CIs: percentile bootstrap,
{C.N_BOOTSTRAP} resamples of patients (all encounters of a drawn patient; seed {C.BOOTSTRAP_SEED}),
computed separately per group.
Sensitivity/specificity at the policy threshold. ECE: 10 equal-width bins. Calibration slope and
intercept: unpenalised logistic fit of the label on logit(risk) (ideal 1 and 0).

{C.performance_table(perf)}
## Comparison with published results
Strack et al. (2014) analysed the association of HbA1c measurement with readmission (odds ratios
from a logistic model on first encounters only) and did not report discrimination, so there is no
like-for-like AUROC from the dataset's authors. Later studies on this dataset use different
outcome definitions (`<30` vs any readmission), cohorts (first encounter only or all), exclusions
and splits (often encounter-level, which leaks patients between train and test); we have not
verified a published figure on a comparable patient-level split and so make no numerical
comparison. Compare with the `readmission-xgb` package, which uses the same cohort and split.

## Caveats and known gaps
- Modest discrimination; the strongest signals are prior inpatient admissions and discharge
  destination. Well calibrated overall (ECE about {ov['ece'][0]:.3f}), less so in small groups and
  in the oldest band (`age_band = 80+`: calibration slope {age80['cal_slope'][0]:.2f}, risks too spread out).
- The single global threshold treats age bands very differently: at the policy threshold
  specificity is {age80['specificity'][0]:.2f} for `80+` and {age40['specificity'][0]:.2f} for `<40`
  (most older patients are flagged). This is the kind of gap group thresholds are meant to address.
- Encounters of the same patient are correlated; the CIs therefore resample patients.
- Race is recorded by the hospitals (`?` = unknown, 2% of encounters); "Other" and "Asian" groups
  are small and their CIs are wide. `gender` "Unknown/Invalid" (3 encounters in the whole file,
  {n_sex_unknown} in test) maps to `sex = Unknown`.
- Features reflect 1999-2008 ICD-9 coding and US practice; expect drift on current data.
- `test_cohort.csv` holds {COHORT_SAMPLE:,} test encounters drawn uniformly at random without
  replacement (numpy `default_rng({COHORT_SEED})`), in file order; `race` `?` is written as an empty
  field. `reference_risk` is scikit-learn's `predict_proba[:, 1]`.
"""
    (OUT / "MODEL_CARD.md").write_text(card, encoding="utf-8")


if __name__ == "__main__":
    main()
