"""Reference for Vigil's cluster bootstrap (Sources/VigilStatistics/Resampling.swift).

Writes cohort.csv (a labelled cohort in which patients repeat, 1 to 9 rows each, like hourly ICU
rows) and expected.json: percentile intervals of TPR, FPR, PPV, AUROC, Brier and the TPR gap
between sexes, overall and per sex, from a bootstrap that resamples whole patients, computed
here with scikit-learn's weighted metrics and numpy's linear quantile.

The draw order is Vigil's contract and is reproduced here: replicate r uses SplitMix64 seeded
with mix(seed ^ mix(r + 1)); it draws C cluster indices (C = number of patients, numbered by
first appearance in the file), each as the high 64 bits of C * next(); a drawn patient's rows
all get +1 weight.

Run: python3 -m pip install -r requirements.txt && python3 make_cluster_reference.py
"""
import json
import pathlib

import numpy as np
from sklearn.metrics import roc_auc_score

HERE = pathlib.Path(__file__).parent
MASK = (1 << 64) - 1
SEED = 20241203
REPLICATES = 300
THRESHOLD = 0.5


def mix(z):
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & MASK
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & MASK
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        return mix(self.state)

    def index_below(self, n):
        return (n * self.next()) >> 64


def generator(seed, r):
    return SplitMix64(mix(seed ^ mix((r + 1) & MASK)))


def make_cohort():
    rng = np.random.default_rng(7)
    rows = []
    for p in range(80):
        sex = "Female" if rng.random() < 0.45 else "Male"
        frailty = rng.normal()
        septic = rng.random() < (0.35 if sex == "Female" else 0.25)
        for h in range(int(rng.integers(1, 10))):
            logit = -0.4 + 1.6 * septic + 0.8 * frailty + 0.3 * rng.normal() + (0.25 if sex == "Male" else 0.0)
            risk = round(float(1 / (1 + np.exp(-logit))), 4)
            rows.append((f"p{p:03d}:h{h}", f"p{p:03d}", sex, int(septic), risk))
    return rows


def metrics(y, d, s, w):
    keep = w > 0
    y, d, s, w = y[keep], d[keep], s[keep], w[keep]
    out = {}
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    tp, fp = w[(y == 1) & d].sum(), w[(y == 0) & d].sum()
    out["tpr"] = tp / pos if pos > 0 else None
    out["fpr"] = fp / neg if neg > 0 else None
    out["ppv"] = tp / (tp + fp) if tp + fp > 0 else None
    out["auroc"] = float(roc_auc_score(y, s, sample_weight=w)) if pos > 0 and neg > 0 else None
    out["brier"] = float(np.sum(w * (s - y) ** 2) / w.sum()) if w.sum() > 0 else None
    return out


def main():
    rows = make_cohort()
    with open(HERE / "cohort.csv", "w") as f:
        f.write("row_id,patient_id,sex,label,risk\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]}\n")
    ids = [r[1] for r in rows]
    order = list(dict.fromkeys(ids))
    cluster_of = np.array([order.index(i) for i in ids])
    members = [np.flatnonzero(cluster_of == c) for c in range(len(order))]
    y = np.array([r[3] for r in rows])
    s = np.array([r[4] for r in rows])
    d = s >= THRESHOLD
    sex = np.array([r[2] for r in rows])
    groups = {"overall": np.ones(len(rows), bool), "Female": sex == "Female", "Male": sex == "Male"}
    samples = {g: {m: [] for m in ["tpr", "fpr", "ppv", "auroc", "brier"]} for g in groups}
    gaps = []
    for r in range(REPLICATES):
        gen = generator(SEED, r)
        w = np.zeros(len(rows))
        for _ in range(len(order)):
            w[members[gen.index_below(len(order))]] += 1
        per = {}
        for g, mask in groups.items():
            per[g] = metrics(y[mask], d[mask], s[mask], w[mask])
            for m, v in per[g].items():
                if v is not None:
                    samples[g][m].append(v)
        if per["Female"]["tpr"] is not None and per["Male"]["tpr"] is not None:
            gaps.append(abs(per["Female"]["tpr"] - per["Male"]["tpr"]))

    def interval(v):
        v = np.sort(np.array(v))
        return {"lower": float(np.quantile(v, 0.025)), "upper": float(np.quantile(v, 0.975)), "defined": len(v)}

    expected = {
        "seed": SEED, "replicates": REPLICATES, "threshold": THRESHOLD, "rows": len(rows), "clusters": len(order),
        "intervals": {g: {m: interval(v) for m, v in ms.items()} for g, ms in samples.items()},
        "tpr_gap_sex": interval(gaps),
        "point": {g: metrics(y[mask], d[mask], s[mask], np.ones(mask.sum())) for g, mask in groups.items()},
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"{len(rows)} rows, {len(order)} patients")


if __name__ == "__main__":
    main()
