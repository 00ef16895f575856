"""Shared helpers for the Vigil reference-model training scripts.

Everything here is deterministic: splits, bootstrap resamples and histogram edges depend only
on the data and the fixed seeds below. The JSON written follows docs/FORMATS.md
(`vigil.manifest/1`, `vigil.policy/1`); numbers are written with Python's `repr`, which
round-trips IEEE doubles exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
DATA_DIR = Path(os.environ.get("VIGIL_DATA_DIR", "/work/shared/data"))

SPLIT_SEED = 20240601      # patient-level train/validation/test assignment
BOOTSTRAP_SEED = 12345     # bootstrap confidence intervals in the model cards
N_BOOTSTRAP = 1000


# MARK: - hashing and files

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _clean(obj: Any) -> Any:
    """numpy scalars/arrays -> plain Python, so json writes them with repr()."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        if not math.isfinite(v):
            raise ValueError(f"non-finite number {v!r} cannot go into JSON")
        return v
    return obj


def _dumps(obj: Any, indent: int) -> str:
    """Indented JSON, but lists of scalars on one line (histograms stay readable)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dumps(v, indent + 2)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(json.dumps(v, allow_nan=False, ensure_ascii=False) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False, ensure_ascii=False)


def write_json(path: Path, obj: Any) -> None:
    text = _dumps(_clean(obj), 0)
    assert json.loads(text) == _clean(obj)
    path.write_text(text + "\n", encoding="utf-8")


# MARK: - splits

def patient_split(patient_ids: Sequence, seed: int = SPLIT_SEED,
                  fractions: tuple[float, float] = (0.6, 0.2)) -> np.ndarray:
    """Assign every row to 'train' / 'val' / 'test' by patient (60/20/20 of patients).

    Unique ids are sorted, permuted with numpy's PCG64 generator seeded with `seed`; the first
    60% of patients are train, the next 20% validation, the rest test.
    """
    ids = np.asarray(patient_ids)
    uniq = np.unique(ids)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    n_train = int(round(fractions[0] * len(uniq)))
    n_val = int(round(fractions[1] * len(uniq)))
    label = np.empty(len(uniq), dtype=object)
    label[perm[:n_train]] = "train"
    label[perm[n_train:n_train + n_val]] = "val"
    label[perm[n_train + n_val:]] = "test"
    lookup = dict(zip(uniq.tolist(), label.tolist()))
    return np.array([lookup[i] for i in ids.tolist()], dtype=object)


# MARK: - CSV with exact numbers

def fmt_value(v: Any) -> str:
    """Missing -> empty field; ints as ints; floats via repr (round-trips exactly)."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return ""
        if math.isinf(f):
            raise ValueError("infinite value in CSV")
        return repr(f)
    if isinstance(v, str):
        return v
    return str(v)


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(list(columns))
    for r in rows:
        w.writerow([fmt_value(v) for v in r])
    return buf.getvalue().encode("utf-8")


def frame_rows(df, columns: Sequence[str], int_columns: Iterable[str] = ()) -> list[list[Any]]:
    """Rows of a DataFrame as Python values; `int_columns` written as integers (NaN stays missing)."""
    ints = set(int_columns)
    out_cols = []
    for c in columns:
        col = df[c].to_numpy()
        if c in ints:
            vals = []
            for v in col.tolist():
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    vals.append(None)
                else:
                    fv = float(v)
                    if fv != int(fv):
                        raise ValueError(f"{c}: non-integer value {v!r}")
                    vals.append(int(fv))
            out_cols.append(vals)
        else:
            out_cols.append(col.tolist())
    return [list(r) for r in zip(*out_cols)]


# MARK: - reference histograms

def histogram(values: np.ndarray, n_bins: int = 10) -> dict:
    """FORMATS.md histogram: edges e1<...<ek, k+1 counts, plus a missing count.

    Features with at most `n_bins + 1` distinct values get one bin per value (edges = the
    distinct values but the smallest). Otherwise the edges are the distinct deciles
    (numpy's default linear interpolation) of the non-missing values.
    """
    x = np.asarray(values, dtype=float)
    miss = np.isnan(x)
    v = x[~miss]
    if len(v) == 0:
        return {"edges": [], "counts": [0], "missing": int(miss.sum())}
    distinct = np.unique(v)
    if len(distinct) <= n_bins + 1:
        edges = distinct[1:]
    else:
        qs = np.quantile(v, np.arange(1, n_bins) / n_bins)
        edges = np.unique(qs)
    # counts: (-inf,e1), [e1,e2), ..., [ek,inf) == number of edges <= v
    idx = np.searchsorted(edges, v, side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "missing": int(miss.sum())}


def _num(v: float, integral: bool):
    return int(v) if integral and float(v).is_integer() else float(v)


def feature_entry(name: str, ftype: str, unit: str, description: str, train_values,
                  missing_allowed: bool) -> dict:
    """A manifest feature with range [min, max] and mean over the TRAINING split (NaN ignored)."""
    x = np.asarray(train_values, dtype=float)
    v = x[~np.isnan(x)]
    if not missing_allowed and len(v) != len(x):
        raise ValueError(f"{name}: missing values but missing_allowed is false")
    integral = ftype in ("integer", "binary", "categorical")
    return {
        "name": name, "type": ftype, "unit": unit, "description": description,
        "range": [_num(v.min(), integral), _num(v.max(), integral)],
        "missing_allowed": bool(missing_allowed),
        "mean": float(v.mean()),
    }


def manifest(name: str, version: str, outcome: str, model_file: Path, model_format: str,
             id_field: str, features: list[dict], groups: list[dict],
             train_matrix: dict[str, np.ndarray], train_scores: np.ndarray,
             extra: dict | None = None) -> dict:
    rows = len(train_scores)
    m = {
        "schema": "vigil.manifest/1",
        "name": name,
        "version": version,
        "outcome": outcome,
        "task": "binary",
        "model": {"file": model_file.name, "format": model_format,
                  "sha256": sha256_file(model_file)},
        "id_field": id_field,
        "features": features,
        "groups": groups,
    }
    if extra:
        m.update(extra)
    m["reference"] = {
        "rows": rows,
        "features": {k: histogram(v) for k, v in train_matrix.items()},
        "score": histogram(train_scores),
    }
    return m


def policy(rule: str, objective: dict, threshold: float, fitted_rows: int, fitted_sha256: str,
           model: dict, constraint: dict | None = None) -> dict:
    """A `vigil.policy/1` document; `model` is `model_binding(...)`, the model it was fitted for."""
    return {
        "schema": "vigil.policy/1",
        "version": "1",
        "model": model,
        "constraint": constraint or {"kind": "none"},
        "objective": objective,
        "rule": rule,
        "group_fields": [],
        "min_group_size": 0,
        "groups": {},
        "fallback": {"threshold": float(threshold)},
        "fitted_on": {"rows": int(fitted_rows), "sha256": fitted_sha256},
    }


def model_binding(name: str, version: str, model_file: Path) -> dict:
    """policy.json's `model`: the model the policy was fitted for, by its file's SHA-256 (Vigil
    refuses to load the policy with any other model file; docs/FORMATS.md)."""
    return {"name": name, "version": version, "sha256": sha256_file(model_file)}


# MARK: - thresholds

def youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The validation score t maximising TPR - FPR for the rule `risk >= t`.

    Candidates are the distinct validation scores; ties go to the largest t.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[ps[1:] != ps[:-1], True]          # last row of each distinct score
    tpr = tp[last] / ys.sum()
    fpr = fp[last] / (len(ys) - ys.sum())
    j = tpr - fpr
    k = int(np.argmax(j))                          # first max = largest threshold
    return float(ps[last][k])


def sensitivity_threshold(y: np.ndarray, p: np.ndarray, target: float) -> float:
    """The largest validation score t with sensitivity(risk >= t) >= target."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    last = np.r_[ps[1:] != ps[:-1], True]
    tpr = tp[last] / ys.sum()
    k = int(np.argmax(tpr >= target))
    return float(ps[last][k])


# MARK: - metrics

def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUROC with mid-ranks for ties."""
    y = np.asarray(y).astype(bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    from scipy.stats import rankdata
    r = rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auprc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision, as sklearn.metrics.average_precision_score (step-wise, ties grouped)."""
    y = np.asarray(y).astype(int)
    npos = y.sum()
    if npos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(p, dtype=float), kind="mergesort")
    ps, ys = np.asarray(p, dtype=float)[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[ps[1:] != ps[:-1], True]
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / npos
    drec = np.diff(np.r_[0.0, recall])
    return float(np.sum(drec * precision))


def sens_spec(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    y = np.asarray(y).astype(bool)
    d = np.asarray(p) >= threshold
    npos, nneg = y.sum(), (~y).sum()
    sens = float((d & y).sum() / npos) if npos else float("nan")
    spec = float((~d & ~y).sum() / nneg) if nneg else float("nan")
    return sens, spec


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error, 10 equal-width bins on [0, 1] (last bin closed)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    n = np.bincount(b, minlength=n_bins)
    sp = np.bincount(b, weights=p, minlength=n_bins)
    sy = np.bincount(b, weights=y, minlength=n_bins)
    nz = n > 0
    return float(np.sum(np.abs(sy[nz] - sp[nz])) / len(p))


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Unpenalised logistic fit y ~ a + b * logit(p) by Newton-Raphson; returns (b, a)."""
    y = np.asarray(y, dtype=float)
    if y.sum() == 0 or y.sum() == len(y):
        return float("nan"), float("nan")
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    x = np.log(p) - np.log1p(-p)
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    for _ in range(50):
        eta = X @ beta
        mu = 1.0 / (1.0 + np.exp(-eta))
        w = mu * (1 - mu)
        g = X.T @ (y - mu)
        H = (X * w[:, None]).T @ X
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return float("nan"), float("nan")
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(beta[1]), float(beta[0])


METRICS = ["auroc", "auprc", "sensitivity", "specificity", "ece", "cal_slope", "cal_intercept"]


def all_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    sens, spec = sens_spec(y, p, threshold)
    slope, icpt = calibration_slope_intercept(y, p)
    return {"auroc": auroc(y, p), "auprc": auprc(y, p), "sensitivity": sens,
            "specificity": spec, "ece": ece(y, p), "cal_slope": slope, "cal_intercept": icpt}


def bootstrap_metrics(y: np.ndarray, p: np.ndarray, threshold: float,
                      clusters: np.ndarray | None = None, n_boot: int = N_BOOTSTRAP,
                      seed: int = BOOTSTRAP_SEED) -> dict[str, tuple[float, float, float]]:
    """Point estimate and percentile 95% CI for each metric.

    Rows are resampled with replacement, or whole clusters (patients) when `clusters` is given.
    Resamples where a metric is undefined (one class only) are dropped for that metric.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    point = all_metrics(y, p, threshold)
    rng = np.random.default_rng(seed)
    if clusters is not None:
        clusters = np.asarray(clusters)
        order = np.argsort(clusters, kind="mergesort")
        cs = clusters[order]
        starts = np.r_[0, np.flatnonzero(cs[1:] != cs[:-1]) + 1]
        ends = np.r_[starts[1:], len(cs)]
        lengths = ends - starts
    draws = {m: [] for m in METRICS}
    for _ in range(n_boot):
        if clusters is None:
            idx = rng.integers(0, len(y), len(y))
        else:
            pick = rng.integers(0, len(starts), len(starts))
            ln = lengths[pick]
            offs = np.repeat(starts[pick] - np.r_[0, np.cumsum(ln)[:-1]], ln)
            idx = order[np.arange(ln.sum()) + offs]
        res = all_metrics(y[idx], p[idx], threshold)
        for m in METRICS:
            draws[m].append(res[m])
    out = {}
    for m in METRICS:
        d = np.asarray(draws[m], dtype=float)
        d = d[~np.isnan(d)]
        lo, hi = (np.percentile(d, [2.5, 97.5]) if len(d) else (float("nan"),) * 2)
        out[m] = (point[m], float(lo), float(hi))
    return out


# MARK: - model-card tables

def _ci(t: tuple[float, float, float], digits: int = 3) -> str:
    pt, lo, hi = t
    if math.isnan(pt):
        return "n/a"
    if math.isnan(lo):
        return f"{pt:.{digits}f}"
    return f"{pt:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def performance_table(rows: list[tuple[str, int, int, dict]]) -> str:
    """rows: (label, n, positives, bootstrap_metrics result) -> a Markdown table."""
    head = ("| group | n | positives | AUROC | AUPRC | sensitivity | specificity | ECE "
            "| cal. slope | cal. intercept |\n|---|---:|---:|---|---|---|---|---|---|---|\n")
    lines = []
    for label, n, pos, m in rows:
        lines.append(f"| {label} | {n:,} | {pos:,} | " + " | ".join(_ci(m[k]) for k in METRICS) + " |")
    return head + "\n".join(lines) + "\n"


def group_order(spec: dict) -> list[str]:
    """Labels of a manifest group in a natural order (bins first-to-last, map values as listed)."""
    if "bins" in spec:
        labels = list(spec["bins"]["labels"])
    else:
        labels = list(dict.fromkeys(spec.get("map", {}).values()))
        if "other" in spec and spec["other"] not in labels:
            labels.append(spec["other"])
    missing = spec.get("missing", "Unknown")
    if missing not in labels:
        labels.append(missing)
    return labels


def group_performance(y, p, threshold, group_columns: dict[str, np.ndarray],
                      clusters=None, min_n: int = 1,
                      orders: dict[str, list[str]] | None = None) -> list[tuple[str, int, int, dict]]:
    """Overall plus one row per (group field, label), each with its own bootstrap."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    rows = [("overall", len(y), int(y.sum()),
             bootstrap_metrics(y, p, threshold, clusters))]
    for gname, labels in group_columns.items():
        labels = np.asarray(labels, dtype=object)
        present = set(labels.tolist())
        order = [l for l in (orders or {}).get(gname, []) if l in present]
        order += sorted(present - set(order), key=str)
        for lab in order:
            mask = labels == lab
            if mask.sum() < min_n:
                continue
            cl = None if clusters is None else np.asarray(clusters)[mask]
            rows.append((f"{gname} = {lab}", int(mask.sum()), int(y[mask].sum()),
                         bootstrap_metrics(y[mask], p[mask], threshold, cl)))
    return rows


# MARK: - group mapping (mirrors the manifest rules in docs/FORMATS.md)

def apply_group(spec: dict, raw_values) -> np.ndarray:
    out = []
    missing = spec.get("missing", "Unknown")
    for v in raw_values:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
            out.append(missing)
            continue
        if "bins" in spec:
            edges = spec["bins"]["edges"]
            i = int(np.searchsorted(np.asarray(edges, dtype=float), float(v), side="right"))
            out.append(spec["bins"]["labels"][i])
            continue
        s = shortest_decimal(v) if not isinstance(v, str) else v
        if "map" in spec and s in spec["map"]:
            out.append(spec["map"][s])
        elif "other" in spec:
            out.append(spec["other"])
        else:
            out.append(s)
    return np.array(out, dtype=object)


def shortest_decimal(v) -> str:
    """How Vigil matches a numeric raw value against `map` keys: 0.0 -> "0", 2.5 -> "2.5"."""
    f = float(v)
    if f.is_integer():
        return str(int(f))
    return repr(f)
