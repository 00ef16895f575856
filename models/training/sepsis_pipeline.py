#!/usr/bin/env python3
"""The sepsis package's declared feature pipeline (manifest `pipeline`) and its reference fixture.

`PIPELINE` declares, for the Vigil engine, how each feature of `train_sepsis.py` derives from
the raw hourly rows of one ICU stay, with each raw input's UCUM unit and FHIR source (LOINC code,
Patient element or extension). `train_sepsis.py` writes it into models/sepsis/manifest.json.

Run from the repository root:  python3 models/training/sepsis_pipeline.py
  - writes `pipeline` into models/sepsis/manifest.json (nothing else in it changes), and
  - writes Tests/Fixtures/pipeline/sepsis_events.csv: every raw hourly row of FIXTURE_STAYS stays
    of the held-out test split (patient_id, ICULOS, the raw inputs, Age, Gender, HospAdmTime), and
    Tests/Fixtures/pipeline/sepsis_features.csv: row_id and the features `train_sepsis.features()`
    computes from them (numbers as Python's repr, empty = missing); the Swift tests require the
    engine to reproduce every cell.
Pinned versions: models/training/requirements.txt (numpy, pandas).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
# numpy, pandas and common (the training helpers) are imported in main() only: the declaration
# above it is imported by scripts/fhir/check_fhir.py, which has none of them.

FIXTURE_STAYS = 40
FIXTURE_SEED = 11
LOINC = "http://loinc.org"
HOSP_OFFSET_URL = "http://vigil.dev/fhir/StructureDefinition/hospital-admission-offset"

# raw input -> (UCUM unit, LOINC code, LOINC display)
RAW = {
    "HR": ("/min", "8867-4", "Heart rate"),
    "O2Sat": ("%", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    "Temp": ("Cel", "8310-5", "Body temperature"),
    "SBP": ("mm[Hg]", "8480-6", "Systolic blood pressure"),
    "MAP": ("mm[Hg]", "8478-0", "Mean blood pressure"),
    "DBP": ("mm[Hg]", "8462-4", "Diastolic blood pressure"),
    "Resp": ("/min", "9279-1", "Respiratory rate"),
    "Lactate": ("mmol/L", "2524-7", "Lactate [Moles/volume] in Serum or Plasma"),
    "WBC": ("10*3/uL", "6690-2", "Leukocytes [#/volume] in Blood by Automated count"),
    "Creatinine": ("mg/dL", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
    "BUN": ("mg/dL", "3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma"),
    "Platelets": ("10*3/uL", "777-3", "Platelets [#/volume] in Blood by Automated count"),
    "Bilirubin_total": ("mg/dL", "1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma"),
    "Glucose": ("mg/dL", "2345-7", "Glucose [Mass/volume] in Serum or Plasma"),
    "Hgb": ("g/dL", "718-7", "Hemoglobin [Mass/volume] in Blood"),
    "Hct": ("%", "4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count"),
    "Potassium": ("mmol/L", "2823-3", "Potassium [Moles/volume] in Serum or Plasma"),
    "Calcium": ("mg/dL", "17861-6", "Calcium [Mass/volume] in Serum or Plasma"),
    # The challenge documents mmol/dL; its values (median ~2.0) are mg/dL's range.
    "Magnesium": ("mg/dL", "19123-9", "Magnesium [Mass/volume] in Serum or Plasma"),
    "Phosphate": ("mg/dL", "2777-1", "Phosphate [Mass/volume] in Serum or Plasma"),
    # The data holds a fraction (0.21-1); LOINC's unit is %, converted on the way in.
    "FiO2": ("1", "3150-0", "Inhaled oxygen concentration"),
    "pH": ("[pH]", "2744-1", "pH of Arterial blood"),
    "PaCO2": ("mm[Hg]", "2019-8", "Carbon dioxide [Partial pressure] in Arterial blood"),
    "AST": ("U/L", "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma"),
    "PTT": ("s", "14979-9", "aPTT in Platelet poor plasma by Coagulation assay"),
}
VITALS = ["HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp"]
LABS = [k for k in RAW if k not in VITALS]


def pipeline() -> dict:
    inputs = [{"name": k, "kind": "observation", "unit": u, "description": d,
               "fhir": {"observation": {"system": LOINC, "code": code}}}
              for k, (u, code, d) in RAW.items()]
    inputs += [
        {"name": "Age", "kind": "static", "unit": "a", "description": "age in years (100 for 90 or above)",
         "fhir": {"patient": "age", "cap": {"at": 90, "value": 100}}},
        {"name": "Gender", "kind": "static", "description": "0 female, 1 male",
         "fhir": {"patient": "gender", "map": {"female": 0, "male": 1}}},
        {"name": "HospAdmTime", "kind": "static", "unit": "h",
         "description": "hours from hospital admission to ICU admission (negative: admitted before)",
         "fhir": {"extension": HOSP_OFFSET_URL, "resource": "Encounter"}},
    ]
    feats: dict[str, dict] = {}
    for k in VITALS:
        feats[k] = {"op": "last", "input": k}
    for k in VITALS:
        feats[f"{k}_d6"] = {"op": "change", "input": k, "window": 6}
    for k in LABS:
        feats[k] = {"op": "last", "input": k}
        feats[f"{k}_hsince"] = {"op": "time_since", "input": k}
    feats["ICULOS"] = {"op": "time"}
    for k in ["HospAdmTime", "Age", "Gender"]:
        feats[k] = {"op": "static", "input": k}
    return {
        "description": "train_sepsis.py's features, per ICU stay in time order: vitals and labs "
                       "carried forward, 6-hour vital changes, hours since each lab",
        "entity": "patient_id",
        "time": {"field": "ICULOS", "unit": "h", "origin_value": 1, "step": 1},
        "record_id": "{entity}:h{time}",
        "inputs": inputs,
        "features": feats,
    }


def _num(v: float) -> str:
    return "" if v != v else repr(float(v))


def main() -> None:
    import numpy as np
    import common as C
    import train_sepsis as T
    root = Path(__file__).resolve().parents[2]
    man_path = root / "models" / "sepsis" / "manifest.json"
    man = json.loads(man_path.read_text())
    man["pipeline"] = pipeline()
    C.write_json(man_path, man)

    d = T.load()
    pid = d["patient_id"].to_numpy()
    split = C.patient_split(pid)
    test = np.unique(pid[split == "test"])
    pick = set(np.random.default_rng(FIXTURE_SEED).choice(test, FIXTURE_STAYS, replace=False))
    sub = d[d["patient_id"].isin(pick)].reset_index(drop=True)
    X = T.features(sub)
    assert set(X.columns) == set(man["pipeline"]["features"]), "pipeline and features differ"
    out = root / "Tests" / "Fixtures" / "pipeline"
    out.mkdir(parents=True, exist_ok=True)
    raw_cols = ["patient_id", "ICULOS"] + list(RAW) + ["Age", "Gender", "HospAdmTime"]
    with open(out / "sepsis_events.csv", "w") as f:
        f.write(",".join(raw_cols) + "\n")
        for r in sub[raw_cols].itertuples(index=False):
            f.write(",".join([r[0], repr(int(r[1]))] + [_num(v) for v in r[2:]]) + "\n")
    with open(out / "sepsis_features.csv", "w") as f:
        f.write(",".join(["row_id"] + list(X.columns)) + "\n")
        ids = sub["patient_id"] + ":h" + sub["ICULOS"].astype(int).astype(str)
        for i, row in zip(ids, X.itertuples(index=False)):
            f.write(",".join([i] + [_num(v) for v in row]) + "\n")
    print(f"{len(sub)} rows of {len(pick)} test stays -> {out}")


if __name__ == "__main__":
    main()
