#!/usr/bin/env python3
"""Reference numbers for Vigil's fairness metrics and threshold fitting.

Reads the shipped readmission test cohort (models/readmission/test_cohort.csv: the training
library's own risk `reference_risk` and the outcome `label`), maps the group fields as the
manifest does, and writes, next to this script:

  cohort.csv     id, race, sex, label, risk: the exact inputs both sides use (risk written
                 with repr, so it reads back to the identical double)
  expected.json  per-group and overall metrics from scikit-learn and Fairlearn's MetricFrame
                 (with its difference/ratio/group_min/group_max), AIF360's ClassificationMetric
                 measures against a reference group, and Fairlearn ThresholdOptimizer results

Run from the repository root:
    python3 -m pip install -r Tests/Fixtures/fairness/requirements.txt
    python3 Tests/Fixtures/fairness/make_fairness_fixtures.py

Undefined metrics: where a denominator is empty (no positives for TPR, one class for AUROC),
scikit-learn returns 0 or raises; this script writes null instead, which is what Vigil reports.

ThresholdOptimizer randomises between two thresholds per group. We record (a) its expected
behaviour, from `_pmf_predict` (each row's probability of a positive decision), and (b) its
realised behaviour, averaged over `predict(random_state=s)` for 200 seeds: the mean gap in the
constrained rate(s) and the mean pooled objective. Vigil's deterministic fit is compared with
(b): the gap a deployed randomised policy actually shows on a cohort.
"""
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score,
                             brier_score_loss, roc_auc_score)

import fairlearn
from fairlearn.metrics import MetricFrame
from fairlearn.postprocessing import ThresholdOptimizer

warnings.filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
THRESHOLD = 0.10834496142409487   # the shipped readmission policy's global threshold
N_SEEDS = 200


def load():
    man = json.loads((ROOT / "models/readmission/manifest.json").read_text())
    groups = {g["name"]: g for g in man["groups"]}
    d = pd.read_csv(ROOT / "models/readmission/test_cohort.csv", keep_default_na=False, dtype=str)

    def label(g, raw):
        if raw in ("", "?", "NA") or raw.lower() == "nan":
            return g.get("missing", "Unknown")
        return g["map"].get(raw, g.get("other", raw))

    out = pd.DataFrame({
        "id": d["encounter_id"],
        "race": [label(groups["race"], r) for r in d["race"]],
        "sex": [label(groups["sex"], r) for r in d["gender"]],
        "label": d["label"].astype(int),
        "risk": [float(x) for x in d["reference_risk"]],   # Python's float() is correctly rounded
    })
    return out


# MARK: - metrics, with Vigil's "undefined" rules

def nan_unless(cond, f):
    return f() if cond else float("nan")


def confusion(y, yhat):
    y = np.asarray(y, bool); yhat = np.asarray(yhat, bool)
    return (int((y & yhat).sum()), int((~y & yhat).sum()), int((~y & ~yhat).sum()), int((y & ~yhat).sum()))


def rate_metrics():
    """Metrics of (y_true, y_pred) for MetricFrame, y_pred the 0/1 decisions."""
    def sel(y, p): return float(np.mean(p))
    def tpr(y, p): tp, fp, tn, fn = confusion(y, p); return nan_unless(tp + fn > 0, lambda: tp / (tp + fn))
    def fpr(y, p): tp, fp, tn, fn = confusion(y, p); return nan_unless(fp + tn > 0, lambda: fp / (fp + tn))
    def fnr(y, p): tp, fp, tn, fn = confusion(y, p); return nan_unless(tp + fn > 0, lambda: fn / (tp + fn))
    def tnr(y, p): tp, fp, tn, fn = confusion(y, p); return nan_unless(fp + tn > 0, lambda: tn / (fp + tn))
    def ppv(y, p): tp, fp, tn, fn = confusion(y, p); return nan_unless(tp + fp > 0, lambda: tp / (tp + fp))
    def npv(y, p): tp, fp, tn, fn = confusion(y, p); return nan_unless(tn + fn > 0, lambda: tn / (tn + fn))
    def acc(y, p): return accuracy_score(y, p)
    def bacc(y, p): return nan_unless(len(set(y)) == 2, lambda: balanced_accuracy_score(y, p))
    def prev(y, p): return float(np.mean(y))
    return {"prevalence": prev, "selection_rate": sel, "tpr": tpr, "fpr": fpr, "fnr": fnr, "tnr": tnr,
            "ppv": ppv, "npv": npv, "accuracy": acc, "balanced_accuracy": bacc}


def calibration(y, r):
    """Unpenalised logistic regression of y on logit(risk), by scikit-learn's Newton solver."""
    y = np.asarray(y); r = np.clip(np.asarray(r, float), 1e-15, 1 - 1e-15)
    if len(set(y)) < 2:
        return float("nan"), float("nan")
    x = np.log(r / (1 - r)).reshape(-1, 1)
    m = LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(x, y)
    return float(m.intercept_[0]), float(m.coef_[0, 0])


def score_metrics():
    """Metrics of (y_true, risk) for MetricFrame."""
    def auroc(y, r): return nan_unless(len(set(y)) == 2, lambda: roc_auc_score(y, r))
    def auprc(y, r): return nan_unless(int(np.sum(y)) > 0, lambda: average_precision_score(y, r))
    def brier(y, r): return brier_score_loss(y, r)
    def ece(y, r):
        y = np.asarray(y, float); r = np.asarray(r, float)
        b = np.minimum(np.floor(r * 10).astype(int), 9)
        total = 0.0
        for k in range(10):
            m = b == k
            if m.any():
                total += m.sum() / len(r) * abs(y[m].mean() - r[m].mean())
        return float(total)
    def slope(y, r): return calibration(y, r)[1]
    def intercept(y, r): return calibration(y, r)[0]
    return {"auroc": auroc, "auprc": auprc, "brier": brier, "ece": ece,
            "calibration_slope": slope, "calibration_intercept": intercept}


def clean(v):
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def metric_view(d, fields):
    decisions = (d["risk"] >= THRESHOLD).astype(int)
    sf = d[fields] if len(fields) > 1 else d[fields[0]]
    frames = [MetricFrame(metrics=rate_metrics(), y_true=d["label"], y_pred=decisions, sensitive_features=sf),
              MetricFrame(metrics=score_metrics(), y_true=d["label"], y_pred=d["risk"], sensitive_features=sf)]
    groups, overall, disparities = {}, {}, {}
    for mf in frames:
        for key, row in mf.by_group.iterrows():
            k = "|".join(key) if isinstance(key, tuple) else key
            groups.setdefault(k, {}).update({m: clean(v) for m, v in row.items()})
        overall.update({m: clean(v) for m, v in mf.overall.items()})
        summaries = {
            "difference_between_groups": mf.difference(method="between_groups"),
            "difference_to_overall": mf.difference(method="to_overall"),
            "ratio_between_groups": mf.ratio(method="between_groups"),
            "ratio_to_overall": mf.ratio(method="to_overall"),
            "group_min": mf.group_min(), "group_max": mf.group_max(),
        }
        for m in mf.overall.index:
            disparities[m] = {name: clean(s[m]) for name, s in summaries.items()}
    counts = d.groupby(fields)["label"].agg(["count", "sum"])
    for key, row in counts.iterrows():
        k = "|".join(key) if isinstance(key, tuple) else key
        groups[k]["n"] = int(row["count"]); groups[k]["positives"] = int(row["sum"])
    return {"fields": fields, "groups": groups, "overall": overall, "disparities": disparities}


def aif360_view(d, field, reference):
    from aif360.datasets import BinaryLabelDataset
    from aif360.metrics import ClassificationMetric
    codes = {g: i for i, g in enumerate(sorted(d[field].unique()))}
    base = pd.DataFrame({"code": d[field].map(codes).astype(float), "label": d["label"].astype(float)})
    truth = BinaryLabelDataset(df=base, label_names=["label"], protected_attribute_names=["code"],
                               favorable_label=1.0, unfavorable_label=0.0)
    pred = truth.copy(deepcopy=True)
    pred.labels = (d["risk"].to_numpy() >= THRESHOLD).astype(float).reshape(-1, 1)
    out = {}
    for g, c in codes.items():
        if g == reference:
            continue
        m = ClassificationMetric(truth, pred, unprivileged_groups=[{"code": c}],
                                 privileged_groups=[{"code": codes[reference]}])
        out[g] = {"disparate_impact": clean(m.disparate_impact()),
                  "statistical_parity_difference": clean(m.statistical_parity_difference()),
                  "average_odds_difference": clean(m.average_odds_difference()),
                  "equal_opportunity_difference": clean(m.equal_opportunity_difference())}
    return {"field": field, "reference": reference, "threshold": THRESHOLD, "groups": out}


# MARK: - ThresholdOptimizer

class ScorePassthrough(BaseEstimator, ClassifierMixin):
    """A fitted 'model' whose prediction is the risk column itself."""
    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.fitted_ = True
        return self

    def predict(self, X):
        return np.asarray(X, float)[:, 0]


CONSTRAINT_RATES = {"true_positive_rate_parity": ["tpr"], "false_positive_rate_parity": ["fpr"],
                    "demographic_parity": ["sel"], "equalized_odds": ["tpr", "fpr"]}
VIGIL_NAMES = {"true_positive_rate_parity": "tpr_parity", "false_positive_rate_parity": "fpr_parity",
               "demographic_parity": "demographic_parity", "equalized_odds": "equalized_odds"}
OBJECTIVES = {"balanced_accuracy_score": "balanced_accuracy", "accuracy_score": "accuracy"}


def rates(y, yhat, groups, g):
    """Expected rates of group g from decisions or decision probabilities yhat."""
    m = groups == g
    yg, pg = y[m], yhat[m]
    return {"tpr": pg[yg == 1].mean(), "fpr": pg[yg == 0].mean(), "sel": pg.mean()}


def pooled(y, yhat, objective):
    if objective == "accuracy_score":
        return float(np.mean(np.where(y == 1, yhat, 1 - yhat)))
    return float((yhat[y == 1].mean() + (1 - yhat[y == 0]).mean()) / 2)


def gap(y, yhat, groups, names):
    rs = [rates(y, yhat, groups, g) for g in sorted(set(groups))]
    return float(max(max(r[n] for r in rs) - min(r[n] for r in rs) for n in names))


def optimizer_case(d, field, constraint, objective, subset=None):
    if subset is not None:
        d = d[d[field].isin(subset)].reset_index(drop=True)
    X = d[["risk"]]
    y = d["label"].to_numpy()
    A = d[field].to_numpy()
    est = ScorePassthrough().fit(X, y)
    to = ThresholdOptimizer(estimator=est, constraints=constraint, objective=objective, prefit=True,
                            predict_method="predict", grid_size=1000, flip=False)
    to.fit(X, y, sensitive_features=A)
    p = to._pmf_predict(X, sensitive_features=A)[:, 1]
    names = CONSTRAINT_RATES[constraint]
    realised_gap, realised_obj = [], []
    for s in range(N_SEEDS):
        yhat = to.predict(X, sensitive_features=A, random_state=s).astype(float)
        realised_gap.append(gap(y, yhat, A, names))
        realised_obj.append(pooled(y, yhat, objective))
    return {
        "field": field, "subset": subset, "rows": int(len(d)),
        "constraint": VIGIL_NAMES[constraint], "fairlearn_constraint": constraint,
        "objective": OBJECTIVES[objective], "fairlearn_objective": objective,
        "expected_gap": gap(y, p, A, names), "expected_objective": pooled(y, p, objective),
        "realised_mean_gap": float(np.mean(realised_gap)), "realised_sd_gap": float(np.std(realised_gap)),
        "realised_mean_objective": float(np.mean(realised_obj)), "seeds": N_SEEDS,
    }


def main():
    d = load()
    with open(HERE / "cohort.csv", "w", newline="") as f:
        f.write("id,race,sex,label,risk\n")
        for r in d.itertuples(index=False):
            f.write(f"{r.id},{r.race},{r.sex},{r.label},{r.risk!r}\n")
    # pandas' default float parser can be an ulp off (it is on most of these risks);
    # round_trip reads the exact doubles that Vigil reads.
    d = pd.read_csv(HERE / "cohort.csv", keep_default_na=False, dtype={"id": str}, float_precision="round_trip")
    expected = {
        "made_by": "Tests/Fixtures/fairness/make_fairness_fixtures.py",
        "versions": {"fairlearn": fairlearn.__version__, "numpy": np.__version__, "pandas": pd.__version__},
        "threshold": THRESHOLD,
        "metrics": [metric_view(d, ["race"]), metric_view(d, ["sex"]), metric_view(d, ["race", "sex"])],
        "aif360": [aif360_view(d, "race", "White"), aif360_view(d, "sex", "Male")],
        "threshold_optimizer": [
            optimizer_case(d, "sex", "true_positive_rate_parity", "balanced_accuracy_score"),
            optimizer_case(d, "sex", "false_positive_rate_parity", "balanced_accuracy_score"),
            optimizer_case(d, "sex", "demographic_parity", "balanced_accuracy_score"),
            optimizer_case(d, "sex", "equalized_odds", "balanced_accuracy_score"),
            optimizer_case(d, "sex", "true_positive_rate_parity", "accuracy_score"),
            optimizer_case(d, "race", "true_positive_rate_parity", "balanced_accuracy_score", subset=["White", "Black"]),
            optimizer_case(d, "race", "equalized_odds", "balanced_accuracy_score", subset=["White", "Black"]),
        ],
    }
    import aif360
    expected["versions"]["aif360"] = aif360.__version__
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=False) + "\n")
    for c in expected["threshold_optimizer"]:
        print(f"{c['field']} {c['constraint']}/{c['objective']}: expected gap {c['expected_gap']:.4f} obj {c['expected_objective']:.4f}; "
              f"realised gap {c['realised_mean_gap']:.4f}±{c['realised_sd_gap']:.4f} obj {c['realised_mean_objective']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
