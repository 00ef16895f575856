#!/usr/bin/env python3
"""Regenerate Vigil's reference fixtures (Tests/Fixtures/...).

Run from the repository root:

    python3 Tests/Fixtures/make_fixtures.py                 # everything
    python3 Tests/Fixtures/make_fixtures.py --setup-venvs   # first create the old-version venvs

The data (UCI Diabetes 130-US hospitals: diabetes130/diabetic_data.csv; UCI Heart Disease:
heart_disease/processed.<site>.data) are read from a local data folder given with --data or
VIGIL_DATA; nothing is downloaded.

The "old format" cases (lightgbm/v3_format, xgboost/v1_format, xgboost/v2_format) are made by
this same file run under another interpreter: a virtualenv that has the old library installed
(default /tmp/lgb3, /tmp/xgb1, /tmp/xgb2; override with VIGIL_LGB3_PY, VIGIL_XGB1_PY,
VIGIL_XGB2_PY pointing at the venv's python). The main process calls
`<venv python> make_fixtures.py --worker {lgb3|xgb1|xgb2} --out DIR --data DATA`; in worker mode
the file only imports the standard library, numpy and the old library. `--setup-venvs` creates
the three venvs with pip from requirements-{lgb3,xgb1,xgb2}.txt. A missing venv is reported and
that case is left as it is (not regenerated).

Everything is seeded; the libraries run single-threaded and deterministic, so a rerun with the
pinned versions (requirements.txt) gives the same files.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent          # Tests/Fixtures
REPO = HERE.parent.parent                        # repository root
DEFAULT_DATA = REPO.parent / "shared" / "data"

N_REAL = 120          # real held-out rows per case
N_EDGE = 120          # edge rows per case
N_REAL_MC = 100       # multiclass cases (wide CSVs)
N_EDGE_MC = 100
KZERO = float(np.float32(1e-35))                 # LightGBM's kZeroThreshold (1e-35f as double)

HEART_COLS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach",
              "exang", "oldpeak", "slope", "ca", "thal"]
HEART_SITES = ["cleveland", "hungarian", "switzerland", "va"]

VENVS = {
    "lgb3": ("VIGIL_LGB3_PY", "/tmp/lgb3", "requirements-lgb3.txt"),
    "xgb1": ("VIGIL_XGB1_PY", "/tmp/xgb1", "requirements-xgb1.txt"),
    "xgb2": ("VIGIL_XGB2_PY", "/tmp/xgb2", "requirements-xgb2.txt"),
}


# ----------------------------------------------------------------------------------------
# numpy-only helpers (shared with the old-version workers)
# ----------------------------------------------------------------------------------------

def fmt_num(v):
    v = float(v)
    if math.isnan(v):
        return ""
    return repr(v)


def fmt_cat(v):
    v = float(v)
    if math.isnan(v):
        return ""
    assert v == int(v), v
    return str(int(v))


def write_input(path, ids, names, X, cat_idx=()):
    cat_idx = set(cat_idx)
    with open(path, "w", newline="") as f:
        f.write(",".join(["id"] + list(names)) + "\n")
        for rid, row in zip(ids, X):
            cells = [str(rid)]
            for j, v in enumerate(row):
                cells.append(fmt_cat(v) if j in cat_idx else fmt_num(v))
            f.write(",".join(cells) + "\n")


def read_input(path):
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    assert header[0] == "id"
    ids, rows = [], []
    for line in lines[1:]:
        cells = line.split(",")
        assert len(cells) == len(header), line
        ids.append(cells[0])
        rows.append([float("nan") if c == "" else float(c) for c in cells[1:]])
    return ids, header[1:], np.array(rows, dtype=np.float64)


def write_table(path, ids, header, cols):
    """cols: 2-D array (n_rows, len(header))."""
    cols = np.asarray(cols, dtype=np.float64)
    assert cols.shape == (len(ids), len(header)), (cols.shape, len(ids), len(header))
    with open(path, "w", newline="") as f:
        f.write(",".join(["id"] + list(header)) + "\n")
        for rid, row in zip(ids, cols):
            f.write(",".join([str(rid)] + [fmt_num(v) for v in row]) + "\n")


def contrib_header(names, n_class=1):
    base = list(names) + ["bias"]
    if n_class == 1:
        return base
    return ["c%d_%s" % (k, b) for k in range(n_class) for b in base]


def load_heart_np(data_dir):
    """All four processed.*.data files: X (n,13) float with NaN, num (n,), ids."""
    rows, ids = [], []
    for site in HEART_SITES:
        with open(os.path.join(data_dir, "heart_disease", "processed.%s.data" % site)) as f:
            for i, line in enumerate(f):
                line = line.strip()
                if not line:
                    continue
                vals = [float("nan") if v.strip() == "?" else float(v) for v in line.split(",")]
                assert len(vals) == 14, line
                rows.append(vals)
                ids.append("%s-%d" % (site, i))
    A = np.array(rows)
    return A[:, :13], A[:, 13], np.array(ids)


def split_idx(n, seed, test_frac=0.2):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    k = int(round(n * test_frac))
    return np.sort(perm[k:]), np.sort(perm[:k])


def parse_lgb_text(text):
    """Header dict and list of tree dicts from a LightGBM text model."""
    header, trees, cur = {}, [], None
    for line in text.splitlines():
        if line.startswith("end of trees"):
            break
        if line.startswith("Tree="):
            cur = {}
            trees.append(cur)
            continue
        if "=" in line:
            k, v = line.split("=", 1)
            (header if cur is None else cur)[k] = v
    return header, trees


def lgb_split_info(text):
    """numeric thresholds per feature, numeric root splits, decision types, etc."""
    header, trees = parse_lgb_text(text)
    thr, roots, dts = {}, [], set()
    single, max_words = 0, 0
    for t in trees:
        if int(t["num_leaves"]) <= 1:
            single += 1
            continue
        sf = [int(s) for s in t["split_feature"].split()]
        th = [float(s) for s in t["threshold"].split()]
        dt = [int(s) for s in t["decision_type"].split()]
        for i, (fi, v, d) in enumerate(zip(sf, th, dt)):
            dts.add(d)
            if d & 1:
                continue
            thr.setdefault(fi, set()).add(v)
            if i == 0:
                roots.append((fi, v))
        if int(t.get("num_cat", "0")) > 0:
            b = [int(s) for s in t["cat_boundaries"].split()]
            max_words = max(max_words, max(b2 - b1 for b1, b2 in zip(b, b[1:])))
    avg = any(line.strip() == "average_output" for line in text.split("Tree=", 1)[0].splitlines())
    return dict(header=header, n_trees=len(trees), thresholds=thr, roots=roots,
                decision_types=sorted(dts), single_leaf_trees=single, max_cat_words=max_words,
                average_output=avg)


def xgb_split_info(model_json):
    j = json.loads(model_json) if isinstance(model_json, str) else model_json
    trees = j["learner"]["gradient_booster"]["model"]["trees"]
    thr, roots = {}, []
    dl_types, n_cat_nodes, cat_sizes, cat_by_feat = set(), 0, [], {}
    for t in trees:
        lc = t["left_children"]
        st = t.get("split_type", [0] * len(lc))
        dl_types.update(type(x).__name__ for x in t["default_left"])
        for i in range(len(lc)):
            if lc[i] == -1:
                continue
            if st[i] == 1:
                n_cat_nodes += 1
                continue
            fi = int(t["split_indices"][i])
            v = float(t["split_conditions"][i])
            thr.setdefault(fi, set()).add(v)
            if i == 0:
                roots.append((fi, v))
        if "categories_sizes" in t:
            cat_sizes.extend(t["categories_sizes"])
            for nid, sz in zip(t["categories_nodes"], t["categories_sizes"]):
                fi = int(t["split_indices"][nid])
                cat_by_feat.setdefault(fi, set()).add(int(sz))
    return dict(thresholds=thr, roots=roots, default_left_types=sorted(dl_types),
                n_cat_nodes=n_cat_nodes, cat_sizes=cat_sizes, n_trees=len(trees),
                cat_set_sizes_by_feature={k: sorted(v) for k, v in cat_by_feat.items()},
                base_score=j["learner"]["learner_model_param"]["base_score"],
                version=j.get("version"))


def threshold_variants(t, f32):
    """(tag, value) pairs around a split threshold t."""
    out = []
    if f32:
        t32 = np.float32(t)
        up = np.nextafter(t32, np.float32(np.inf))
        dn = np.nextafter(t32, np.float32(-np.inf))
        out.append(("eq", float(t32)))
        if float(t) != float(t32):
            out.append(("dec", float(t)))          # the decimal in the JSON, as a double
        out.append(("up", float(up)))
        out.append(("dn", float(dn)))
        q = float(t32) + (float(up) - float(t32)) / 4.0  # double strictly above, rounds to t32
        if q != float(t32) and np.float32(q) == t32:
            out.append(("q", q))
    else:
        out.append(("eq", float(t)))
        out.append(("up", float(np.nextafter(t, np.inf))))
        out.append(("dn", float(np.nextafter(t, -np.inf))))
    return out


def edge_rows(base, names, thresholds, roots, cat_idx, cat_max, lo, hi, seed,
              n_edge=N_EDGE, f32=False, allow_nan=True):
    """Build n_edge rows that stress split thresholds, missing values and extremes.

    base: real rows (n, F) to start from; thresholds: {feature: set(values)};
    roots: [(feature, threshold)] of numeric root splits (always evaluated).
    Returns (ids, X)."""
    rng = np.random.default_rng(seed)
    F = len(names)
    cat_idx = list(cat_idx)
    num_idx = [j for j in range(F) if j not in cat_idx]
    big = [1e30, -1e30] + ([] if f32 else [1e300, -1e300])
    generic = [0.0, -0.0, -1.0, 1e-36, -1e-36, 1e-35, KZERO,
               float(np.nextafter(KZERO, np.inf)), -KZERO, 5e-324] + big
    if allow_nan:
        generic.append(float("nan"))
    pools = {}
    for j in num_idx:
        span = (hi[j] - lo[j]) if np.isfinite(hi[j] - lo[j]) else 1.0
        p = list(generic) + [hi[j] + 10 * span + 1, lo[j] - 10 * span - 1, -abs(hi[j]) - 1]
        for t in thresholds.get(j, ()):
            p += [v for _, v in threshold_variants(t, f32)]
        pools[j] = p
    for j in cat_idx:
        m = int(cat_max[j])
        pools[j] = [0.0, float(m), float(m + 1), float(m + 50), 1000.0, -1.0, -2.0] + \
                   ([float("nan")] if allow_nan else [])
    ids, rows = [], []

    def add(tag, row):
        ids.append("e%03d-%s" % (len(ids), tag))
        rows.append(row)

    def base_row():
        return base[rng.integers(len(base))].copy()

    # 1. whole-row specials
    specials = [("allzero", 0.0), ("allnegzero", -0.0), ("allneg", -1.0),
                ("allbig", 1e30), ("allnegbig", -1e30), ("alltiny", 1e-36)]
    if allow_nan:
        specials.insert(1, ("allnan", float("nan")))
    for tag, v in specials:
        r = np.full(F, v)
        for j in cat_idx:
            r[j] = {0.0: 0.0, -0.0: 0.0, -1.0: -1.0, 1e30: cat_max[j] + 1.0,
                    -1e30: 1000.0, 1e-36: 0.0}.get(v, v)
        add(tag, r)
    for j in cat_idx:                                # one row per odd category code
        for tag, v in [("catunseen", cat_max[j] + 1.0), ("catneg", -1.0), ("catbig", 1000.0)] + \
                      ([("catnan", float("nan"))] if allow_nan else []):
            r = base_row()
            r[j] = v
            add("%s-%s" % (tag, names[j]), r)
    # 2. root thresholds (every tree's root split is evaluated)
    cand = []
    seen = set()
    for fi, t in roots:
        for tag, v in threshold_variants(t, f32):
            if (fi, v) not in seen:
                seen.add((fi, v))
                cand.append(("root%s-%s" % (tag, names[fi]), fi, v))
    budget_root = int(n_edge * 0.4)
    if len(cand) > budget_root:
        pick = rng.choice(len(cand), budget_root, replace=False)
        cand = [cand[i] for i in sorted(pick)]
    for tag, fi, v in cand:
        r = base_row()
        r[fi] = v
        add(tag, r)
    # 3. any split threshold of any node
    allthr = [(fi, t) for fi in sorted(thresholds) for t in sorted(thresholds[fi])]
    n_any = int(n_edge * 0.7) - len(rows)
    for _ in range(max(0, n_any)):
        if not allthr:
            break
        fi, t = allthr[rng.integers(len(allthr))]
        var = threshold_variants(t, f32)
        tag, v = var[rng.integers(len(var))]
        r = base_row()
        r[fi] = v
        add("thr%s-%s" % (tag, names[fi]), r)
    # 4. mixed: ~30% of the features replaced from their pools
    while len(rows) < n_edge:
        r = base_row()
        for j in range(F):
            if rng.random() < 0.3:
                p = pools[j]
                r[j] = p[rng.integers(len(p))]
        add("mix", r)
    return ids[:n_edge], np.array(rows[:n_edge])


def col_range(X):
    with np.errstate(all="ignore"):
        lo = np.where(np.all(np.isnan(X), 0), 0.0, np.nanmin(np.where(np.isnan(X), np.inf, X), 0))
        hi = np.where(np.all(np.isnan(X), 0), 1.0, np.nanmax(np.where(np.isnan(X), -np.inf, X), 0))
    return lo, hi


# ----------------------------------------------------------------------------------------
# generic writers for tree models (work for every library version)
# ----------------------------------------------------------------------------------------

def lgb_write_case(lgb, booster, outdir, real_ids, real_X, train_X, cat_idx=(), n_class=1,
                   seed=0, n_edge=N_EDGE):
    """Save booster, build input.csv (real + edge rows), expected.csv and contrib.csv from the
    model file reloaded from disk and the input read back from disk."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    mpath = outdir / "model.txt"
    booster.save_model(str(mpath))
    text = mpath.read_text()
    info = lgb_split_info(text)
    names = info["header"]["feature_names"].split()
    cat_max = {j: np.nanmax(train_X[:, j]) for j in cat_idx}
    lo, hi = col_range(train_X)
    eids, eX = edge_rows(real_X, names, info["thresholds"], info["roots"], cat_idx, cat_max,
                         lo, hi, seed, n_edge=n_edge)
    write_input(outdir / "input.csv", list(real_ids) + eids, names,
                np.vstack([real_X, eX]), cat_idx)
    ids, hdr, X = read_input(outdir / "input.csv")
    assert hdr == names
    b = lgb.Booster(model_file=str(mpath))
    raw = np.asarray(b.predict(X, raw_score=True))
    risk = np.asarray(b.predict(X))
    contrib = np.asarray(b.predict(X, pred_contrib=True))
    if n_class == 1 and info["average_output"]:
        # boosting=rf: predict(raw_score=True) (and pred_contrib) give the SUM over the trees,
        # while predict() applies the sigmoid to the average (sum / iterations)
        raw_avg = raw / b.current_iteration()
        assert np.allclose(risk, 1 / (1 + np.exp(-raw_avg)), rtol=1e-12, atol=1e-15)
        write_table(outdir / "expected.csv", ids, ["raw", "risk", "raw_averaged"],
                    np.column_stack([raw, risk, raw_avg]))
    elif n_class == 1:
        write_table(outdir / "expected.csv", ids, ["raw", "risk"], np.column_stack([raw, risk]))
    else:
        hdr_e = ["raw_%d" % k for k in range(n_class)] + ["risk_%d" % k for k in range(n_class)]
        write_table(outdir / "expected.csv", ids, hdr_e, np.hstack([raw, risk]))
    write_table(outdir / "contrib.csv", ids, contrib_header(names, n_class), contrib)
    return info, b, X


def xgb_write_case(xgb, booster, outdir, real_ids, real_X, train_X, cat_idx=(), n_class=1,
                   seed=0, n_edge=N_EDGE):
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    mpath = outdir / "model.json"
    booster.save_model(str(mpath))
    mj = json.loads(mpath.read_text())
    info = xgb_split_info(mj)
    fnames = mj["learner"].get("feature_names") or []
    nfeat = int(mj["learner"]["learner_model_param"]["num_feature"])
    names = list(fnames) if fnames else ["f%d" % i for i in range(nfeat)]
    ftypes = mj["learner"].get("feature_types") or []
    info["named"] = bool(fnames)
    cat_max = {j: np.nanmax(train_X[:, j]) for j in cat_idx}
    lo, hi = col_range(train_X)
    eids, eX = edge_rows(real_X, names, info["thresholds"], info["roots"], cat_idx, cat_max,
                         lo, hi, seed, f32=True, n_edge=n_edge)
    write_input(outdir / "input.csv", list(real_ids) + eids, names,
                np.vstack([real_X, eX]), cat_idx)
    ids, hdr, X = read_input(outdir / "input.csv")
    assert hdr == names
    b = xgb.Booster(model_file=str(mpath))
    b.set_param({"nthread": 1})
    kw = {}
    if cat_idx:
        kw = dict(feature_types=["c" if j in cat_idx else "q" for j in range(len(names))],
                  enable_categorical=True)
    d = xgb.DMatrix(X, feature_names=names if fnames else None, missing=np.nan, **kw)
    raw = np.asarray(b.predict(d, output_margin=True), dtype=np.float64)
    risk = np.asarray(b.predict(d), dtype=np.float64)
    contrib = np.asarray(b.predict(d, pred_contribs=True), dtype=np.float64)
    # the margin the model starts from (base_score after the objective's transform):
    # margin of iteration 0 minus the leaf values that row reached in iteration 0's trees
    d1 = d.slice([0])
    m0 = np.asarray(b.predict(d1, output_margin=True, iteration_range=(0, 1)),
                    dtype=np.float64).reshape(-1)
    leaves = np.asarray(b.predict(d1, pred_leaf=True)).reshape(-1)
    trees = mj["learner"]["gradient_booster"]["model"]["trees"]
    tinfo = mj["learner"]["gradient_booster"]["model"]["tree_info"]
    K = max(1, n_class)
    for t in range(K):
        m0[tinfo[t]] -= float(np.float32(trees[t]["split_conditions"][int(leaves[t])]))
    info["base_margin"] = [repr(float(np.float32(v))) for v in m0]
    if n_class == 1:
        write_table(outdir / "expected.csv", ids, ["raw", "risk"], np.column_stack([raw, risk]))
    else:
        hdr_e = ["raw_%d" % k for k in range(n_class)] + ["risk_%d" % k for k in range(n_class)]
        write_table(outdir / "expected.csv", ids, hdr_e, np.hstack([raw, risk]))
        contrib = contrib.reshape(len(ids), -1)
    write_table(outdir / "contrib.csv", ids, contrib_header(names, n_class), contrib)
    info["feature_types"] = ftypes
    return info, b, X


def heart_split(data_dir, seed=0):
    X, num, ids = load_heart_np(data_dir)
    tr, te = split_idx(len(X), seed)
    rng = np.random.default_rng(seed + 1)
    real = np.sort(rng.choice(te, min(N_REAL, len(te)), replace=False))
    return X, num, ids, tr, real


# ----------------------------------------------------------------------------------------
# old-version workers (run under the venv interpreters)
# ----------------------------------------------------------------------------------------

def worker_lgb3(out, data_dir):
    import lightgbm as lgb
    X, num, ids, tr, real = heart_split(data_dir, seed=3)
    y = (num > 0).astype(int)
    params = dict(objective="binary", num_leaves=15, learning_rate=0.1, min_data_in_leaf=10,
                  num_threads=1, seed=0, deterministic=True, verbose=-1, force_col_wise=True)
    ds = lgb.Dataset(X[tr], y[tr], feature_name=HEART_COLS, free_raw_data=False)
    b = lgb.train(params, ds, num_boost_round=30)
    info, _, _ = lgb_write_case(lgb, b, out, ids[real], X[real], X[tr], seed=30)
    info["library"] = "lightgbm " + lgb.__version__
    info["thresholds"] = info["roots"] = None
    print(json.dumps(info, default=str))


def worker_xgb(out, data_dir, tag):
    import xgboost as xgb
    X, num, ids, tr, real = heart_split(data_dir, seed=4)
    y = (num > 0).astype(int)
    d = xgb.DMatrix(X[tr], y[tr], feature_names=HEART_COLS, missing=np.nan)
    params = dict(objective="binary:logistic", max_depth=3, eta=0.3, tree_method="hist",
                  nthread=1, seed=0)
    b = xgb.train(params, d, num_boost_round=20)
    info, _, _ = xgb_write_case(xgb, b, out, ids[real], X[real], X[tr], seed=40 + int(tag[-1]))
    info["library"] = "xgboost " + xgb.__version__
    info["thresholds"] = info["roots"] = None
    print(json.dumps(info, default=str))


# ----------------------------------------------------------------------------------------
# main-process cases (current library versions)
# ----------------------------------------------------------------------------------------

FACTS = {}          # case -> dict of facts for README / report


def lgb_params(**kw):
    p = dict(num_threads=1, seed=0, deterministic=True, verbose=-1, force_col_wise=True)
    p.update(kw)
    return p


def lgb_facts(case, info, extra=None):
    h = info["header"]
    f = dict(version=h.get("version"), objective=h.get("objective"), trees=info["n_trees"],
             decision_types=info["decision_types"], single_leaf_trees=info["single_leaf_trees"],
             max_cat_words=info["max_cat_words"], average_output=info["average_output"])
    if extra:
        f.update(extra)
    FACTS[case] = f


def xgb_facts(case, info, extra=None):
    f = dict(base_score=info["base_score"], base_margin=info.get("base_margin"),
             default_left=info["default_left_types"],
             trees=info["n_trees"], categorical_nodes=info["n_cat_nodes"],
             version=info.get("version"), named=info.get("named"))
    if info["cat_sizes"]:
        f["category_set_sizes"] = sorted(set(info["cat_sizes"]))
    if extra:
        f.update(extra)
    FACTS[case] = f


def load_diabetes(data_dir):
    import pandas as pd
    df = pd.read_csv(Path(data_dir) / "diabetes130" / "diabetic_data.csv", dtype=str,
                     keep_default_na=False, na_values=["?"])
    df = df[~df["discharge_disposition_id"].isin(["11", "13", "14", "19", "20", "21"])]
    df = df.reset_index(drop=True)
    y = (df["readmitted"] == "<30").astype(int).to_numpy()
    out = pd.DataFrame(index=df.index)
    ages = ["[%d-%d)" % (a, a + 10) for a in range(0, 100, 10)]
    out["race"] = pd.Categorical(df["race"])
    out["gender"] = pd.Categorical(df["gender"].where(df["gender"] != "Unknown/Invalid"))
    out["age"] = pd.Categorical(df["age"], categories=ages)
    for c in ["admission_type_id", "discharge_disposition_id", "admission_source_id"]:
        out[c] = pd.Categorical(df[c].astype(int))
    for c in ["time_in_hospital", "num_lab_procedures", "num_procedures", "num_medications",
              "number_outpatient", "number_emergency", "number_inpatient", "number_diagnoses"]:
        out[c] = df[c].astype(float)

    def weight_mid(s):
        if not isinstance(s, str):
            return np.nan
        m = re.match(r"\[(\d+)-(\d+)\)", s)
        if m:
            return (float(m.group(1)) + float(m.group(2))) / 2
        return float(s.lstrip(">"))
    out["weight_mid"] = df["weight"].map(weight_mid).astype(float)
    out["diag_1_num"] = pd.to_numeric(df["diag_1"], errors="coerce")   # V/E codes, ? -> NaN
    # "None" = not measured -> missing category
    out["max_glu_serum"] = pd.Categorical(df["max_glu_serum"].where(df["max_glu_serum"] != "None"),
                                          categories=["Norm", ">200", ">300"])
    out["A1Cresult"] = pd.Categorical(df["A1Cresult"].where(df["A1Cresult"] != "None"),
                                      categories=["Norm", ">7", ">8"])
    for c in ["insulin", "metformin"]:
        out[c] = pd.Categorical(df[c], categories=["No", "Down", "Steady", "Up"])
    out["change"] = pd.Categorical(df["change"])
    out["diabetesMed"] = pd.Categorical(df["diabetesMed"])
    cat_idx = [i for i, c in enumerate(out.columns) if str(out[c].dtype) == "category"]
    return out, y, df["patient_nbr"].to_numpy(), df["encounter_id"].to_numpy(), cat_idx


def frame_to_codes(frame, cat_idx):
    X = np.empty(frame.shape, dtype=np.float64)
    for j, c in enumerate(frame.columns):
        if j in cat_idx:
            codes = frame[c].cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            X[:, j] = codes
        else:
            X[:, j] = frame[c].to_numpy(dtype=np.float64)
    return X


def diabetes_split(data_dir):
    from sklearn.model_selection import GroupShuffleSplit
    frame, y, groups, enc, cat_idx = load_diabetes(data_dir)
    tr, te = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0)
                  .split(frame, y, groups))
    rng = np.random.default_rng(7)
    real = np.sort(rng.choice(te, N_REAL, replace=False))
    return frame, y, enc, cat_idx, tr, real


def case_lgb_diabetes(data_dir, out, cache):
    import lightgbm as lgb
    frame, y, enc, cat_idx, tr, real = cache["diabetes"]
    ds = lgb.Dataset(frame.iloc[tr], y[tr], categorical_feature="auto", free_raw_data=False)
    b = lgb.train(lgb_params(objective="binary", num_leaves=31, learning_rate=0.1,
                             min_data_in_leaf=50), ds, num_boost_round=60)
    Xtr = frame_to_codes(frame.iloc[tr], cat_idx)
    Xre = frame_to_codes(frame.iloc[real], cat_idx)
    info, b2, X = lgb_write_case(lgb, b, out, ["enc%s" % e for e in enc[real]], Xre, Xtr,
                                 cat_idx=cat_idx, seed=1)
    # the numeric-code path must equal the pandas-category path on the real rows
    p_pd = b.predict(frame.iloc[real])
    p_np = b2.predict(X[:len(real)])
    assert np.array_equal(p_pd, p_np), np.abs(p_pd - p_np).max()
    lgb_facts("lightgbm/diabetes130_binary", info,
              dict(categorical=[frame.columns[j] for j in cat_idx],
                   pandas_categorical="pandas_categorical:[" in (Path(out) / "model.txt").read_text()))


def case_lgb_heart(data_dir, out, cache):
    import lightgbm as lgb
    X, num, ids, tr, real = cache["heart"]
    y = (num > 0).astype(int)
    ds = lgb.Dataset(X[tr], y[tr], feature_name=HEART_COLS)
    b = lgb.train(lgb_params(objective="binary", num_leaves=15, learning_rate=0.1,
                             min_data_in_leaf=10), ds, num_boost_round=50)
    info, _, _ = lgb_write_case(lgb, b, out, ids[real], X[real], X[tr], seed=2)
    lgb_facts("lightgbm/heart_binary", info)


def synth_missing(kind, seed):
    rng = np.random.default_rng(seed)
    n = 4000
    X = rng.normal(size=(n, 5))
    X[:, 4] = rng.integers(0, 5, n)          # small integers, many exact zeros
    logit = 1.2 * X[:, 0] - 1.0 * X[:, 1] + 0.6 * X[:, 2] + 0.5 * (X[:, 4] - 2)
    if kind in ("nan", "none"):
        m0 = rng.random(n) < 0.25
        m1 = rng.random(n) < 0.25
        logit = np.where(m0, logit + 2.5, logit)     # NaN in f0 behaves like a high value
        logit = np.where(m1, logit - 2.5, logit)     # NaN in f1 behaves like a low value
        X[m0, 0] = np.nan
        X[m1, 1] = np.nan
        if kind == "none":
            X[rng.random(n) < 0.1, 2] = 0.0
    else:  # zero
        m0 = rng.random(n) < 0.25
        m1 = rng.random(n) < 0.25
        X[m0, 0] = 0.0
        X[m1, 1] = 0.0
        logit = np.where(m0, logit + 2.5, logit)
        logit = np.where(m1, logit + 2.5, logit)
        X[rng.random(n) < 0.05, 2] = np.nan
        logit = np.where(X[:, 4] == 0, logit - 2.0, logit)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def case_lgb_missing(kind, out):
    import lightgbm as lgb
    X, y = synth_missing(kind, {"none": 11, "zero": 12, "nan": 13}[kind])
    tr, te = split_idx(len(X), 0)
    extra = {"none": dict(use_missing=False), "zero": dict(zero_as_missing=True),
             "nan": dict()}[kind]
    b = lgb.train(lgb_params(objective="binary", num_leaves=7, learning_rate=0.2,
                             min_data_in_leaf=20, **extra),
                  lgb.Dataset(X[tr], y[tr]), num_boost_round=20)
    real = te[:N_REAL]
    info, _, _ = lgb_write_case(lgb, b, out, ["r%d" % i for i in real], X[real], X[tr],
                                seed=20 + len(kind))
    lgb_facts("lightgbm/missing_" + kind, info, dict(params=extra))


def case_lgb_categorical(out):
    import lightgbm as lgb
    rng = np.random.default_rng(21)
    n = 15000
    cbig = rng.integers(0, 150, n).astype(float)
    csmall = rng.integers(0, 3, n).astype(float)
    x0 = rng.normal(size=n)
    x1 = rng.uniform(-3, 3, n)
    eff = rng.normal(0, 1.5, 150)
    logit = eff[cbig.astype(int)] + np.array([-1.0, 0.0, 1.5])[csmall.astype(int)] + x0 - 0.5 * x1
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    cbig[rng.random(n) < 0.03] = np.nan
    X = np.column_stack([cbig, csmall, x0, x1])
    names = ["cat_big", "cat_small", "x0", "x1"]
    tr, te = split_idx(n, 0)
    p = lgb_params(objective="binary", num_leaves=15, learning_rate=0.2, min_data_in_leaf=20,
                   max_cat_to_onehot=4, max_cat_threshold=64, min_data_per_group=20,
                   cat_smooth=5)
    b = lgb.train(p, lgb.Dataset(X[tr], y[tr], feature_name=names, categorical_feature=[0, 1]),
                  num_boost_round=25)
    real = te[:N_REAL]
    info, _, _ = lgb_write_case(lgb, b, out, ["r%d" % i for i in real], X[real], X[tr],
                                cat_idx=[0, 1], seed=22)
    assert info["max_cat_words"] > 2, info["max_cat_words"]
    lgb_facts("lightgbm/categorical_bitset", info)


def case_lgb_heart_variant(case, out, cache, params, rounds, seed, target="binary"):
    import lightgbm as lgb
    X, num, ids, tr, real = cache["heart"]
    names = HEART_COLS
    n_class = 1
    if target == "binary":
        y = (num > 0).astype(int)
        Xc = X
    elif target == "multiclass":
        y = np.minimum(num, 2).astype(int)
        n_class = 3
        Xc = X
    else:  # regression on thalach from the other 12 columns
        keep = [j for j in range(13) if HEART_COLS[j] != "thalach"]
        names = [HEART_COLS[j] for j in keep]
        y = X[:, HEART_COLS.index("thalach")]
        Xc = X[:, keep]
        tr = tr[~np.isnan(y[tr])]
        real = real[~np.isnan(y[real])]
    b = lgb.train(lgb_params(**params), lgb.Dataset(Xc[tr], y[tr], feature_name=names),
                  num_boost_round=rounds)
    if n_class > 1:                        # keep the wide multiclass CSVs small
        real = real[:N_REAL_MC]
    info, _, _ = lgb_write_case(lgb, b, out, ids[real], Xc[real], Xc[tr], n_class=n_class,
                                seed=seed, n_edge=N_EDGE_MC if n_class > 1 else N_EDGE)
    lgb_facts(case, info)
    return info


def case_lgb_single_leaf(out, out_mc, cache):
    import lightgbm as lgb
    # (a) binary on heart: stage 1 cannot split (min_data_in_leaf > rows) -> Tree=0 is a constant
    # tree holding the boost_from_average score; stage 2 continues from it with normal trees.
    X, num, ids, tr, real = cache["heart"]
    y = (num > 0).astype(int)
    ds = lgb.Dataset(X[tr], y[tr], feature_name=HEART_COLS, free_raw_data=False)
    b1 = lgb.train(lgb_params(objective="binary", min_data_in_leaf=100000), ds, num_boost_round=5)
    assert b1.num_trees() == 1
    b2 = lgb.train(lgb_params(objective="binary", num_leaves=7, min_data_in_leaf=10),
                   lgb.Dataset(X[tr], y[tr], feature_name=HEART_COLS), num_boost_round=15,
                   init_model=b1)
    info, _, _ = lgb_write_case(lgb, b2, out, ids[real], X[real], X[tr], seed=50)
    assert info["single_leaf_trees"] >= 1
    lgb_facts("lightgbm/single_leaf", info)
    # (b) 3-class synthetic: class 2 is easy, its trees stop splitting (min_sum_hessian_in_leaf)
    # and are written as num_leaves=1 trees in the middle of the model.
    rng = np.random.default_rng(51)
    n = 3000
    Xs = rng.normal(size=(n, 4))
    ys = np.where(Xs[:, 0] > 1.0, 2, (Xs[:, 1] + rng.normal(size=n) > 0).astype(int))
    trs, tes = split_idx(n, 0)
    b = lgb.train(lgb_params(objective="multiclass", num_class=3, num_leaves=7,
                             min_sum_hessian_in_leaf=20, learning_rate=0.3, min_data_in_leaf=20),
                  lgb.Dataset(Xs[trs], ys[trs]), num_boost_round=30)
    real = tes[:N_REAL_MC]
    info, _, _ = lgb_write_case(lgb, b, out_mc, ["r%d" % i for i in real], Xs[real], Xs[trs],
                                n_class=3, seed=52, n_edge=N_EDGE_MC)
    assert info["single_leaf_trees"] >= 5
    lgb_facts("lightgbm/single_leaf_multiclass", info)


def case_lgb_deep(out):
    import lightgbm as lgb
    rng = np.random.default_rng(61)
    n = 3000
    X = rng.normal(size=(n, 6))
    X[rng.random((n, 6)) < 0.05] = np.nan
    logit = np.sin(2 * np.nan_to_num(X[:, 0])) * 2 + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    tr, te = split_idx(n, 0)
    b = lgb.train(lgb_params(objective="binary", num_leaves=255, max_depth=-1, min_data_in_leaf=1,
                             min_sum_hessian_in_leaf=0, learning_rate=0.1),
                  lgb.Dataset(X[tr], y[tr]), num_boost_round=10)
    real = te[:N_REAL]
    info, _, _ = lgb_write_case(lgb, b, out, ["r%d" % i for i in real], X[real], X[tr], seed=62)
    _, trees = parse_lgb_text((Path(out) / "model.txt").read_text())
    lgb_facts("lightgbm/deep", info, dict(max_num_leaves=max(int(t["num_leaves"]) for t in trees)))


# ---- XGBoost -----------------------------------------------------------------------------

def xgb_params(**kw):
    p = dict(tree_method="hist", nthread=1, seed=0)
    p.update(kw)
    return p


def case_xgb_diabetes(out, cache):
    import xgboost as xgb
    frame, y, enc, cat_idx, tr, real = cache["diabetes"]
    d = xgb.DMatrix(frame.iloc[tr], y[tr], enable_categorical=True)
    b = xgb.train(xgb_params(objective="binary:logistic", max_depth=6, eta=0.1,
                             min_child_weight=20), d, num_boost_round=60)
    Xtr = frame_to_codes(frame.iloc[tr], cat_idx)
    Xre = frame_to_codes(frame.iloc[real], cat_idx)
    info, b2, X = xgb_write_case(xgb, b, out, ["enc%s" % e for e in enc[real]], Xre, Xtr,
                                 cat_idx=cat_idx, seed=101)
    p_pd = b.predict(xgb.DMatrix(frame.iloc[real], enable_categorical=True))
    d_np = xgb.DMatrix(X[:len(real)], feature_names=list(frame.columns),
                       feature_types=["c" if j in cat_idx else "q" for j in range(X.shape[1])],
                       enable_categorical=True)
    p_np = b2.predict(d_np)
    assert np.array_equal(p_pd, p_np), np.abs(p_pd - p_np).max()
    mj = json.loads((Path(out) / "model.json").read_text())
    xgb_facts("xgboost/diabetes130_binary", info,
              dict(categorical=[frame.columns[j] for j in cat_idx],
                   stored_categories="cats" in mj["learner"]["gradient_booster"]["model"]))


def case_xgb_heart(out, cache, case, params, rounds, seed, target="binary"):
    import xgboost as xgb
    X, num, ids, tr, real = cache["heart"]
    names = HEART_COLS
    n_class = 1
    Xc = X
    if target == "binary":
        y = (num > 0).astype(int)
    elif target == "multiclass":
        y = np.minimum(num, 2).astype(int)
        n_class = 3
    else:
        keep = [j for j in range(13) if HEART_COLS[j] != "thalach"]
        names = [HEART_COLS[j] for j in keep]
        y = X[:, HEART_COLS.index("thalach")]
        Xc = X[:, keep]
        tr = tr[~np.isnan(y[tr])]
        real = real[~np.isnan(y[real])]
    d = xgb.DMatrix(Xc[tr], y[tr], feature_names=names, missing=np.nan)
    b = xgb.train(xgb_params(**params), d, num_boost_round=rounds)
    if n_class > 1:
        real = real[:N_REAL_MC]
    info, _, _ = xgb_write_case(xgb, b, out, ids[real], Xc[real], Xc[tr], n_class=n_class,
                                seed=seed, n_edge=N_EDGE_MC if n_class > 1 else N_EDGE)
    xgb_facts(case, info)


def case_xgb_categorical(out):
    import pandas as pd
    import xgboost as xgb
    rng = np.random.default_rng(121)
    n = 12000
    cbig = rng.integers(0, 100, n)
    csmall = rng.integers(0, 3, n)
    cbin = rng.integers(0, 2, n)
    x0 = rng.normal(size=n)
    eff = rng.normal(0, 1.5, 100)
    logit = eff[cbig] + np.array([-1.0, 0.2, 1.2])[csmall] + 0.8 * cbin + x0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "cat_big": pd.Categorical(cbig, categories=list(range(100))),
        "cat_small": pd.Categorical(np.array(["a", "b", "c"])[csmall]),
        "cat_bin": pd.Categorical(np.array(["no", "yes"])[cbin]),
        "x0": x0})
        # categories with NaN
    frame.loc[rng.random(n) < 0.03, "cat_big"] = np.nan
    frame.loc[rng.random(n) < 0.03, "cat_small"] = np.nan
    cat_idx = [0, 1, 2]
    tr, te = split_idx(n, 0)
    d = xgb.DMatrix(frame.iloc[tr], y[tr], enable_categorical=True)
    b = xgb.train(xgb_params(objective="binary:logistic", max_depth=4, eta=0.3,
                             max_cat_to_onehot=4), d, num_boost_round=20)
    real = te[:N_REAL]
    Xtr = frame_to_codes(frame.iloc[tr], cat_idx)
    Xre = frame_to_codes(frame.iloc[real], cat_idx)
    info, b2, X = xgb_write_case(xgb, b, out, ["r%d" % i for i in real], Xre, Xtr,
                                 cat_idx=cat_idx, seed=122)
    p_pd = b.predict(xgb.DMatrix(frame.iloc[real], enable_categorical=True))
    p_np = b2.predict(xgb.DMatrix(X[:len(real)], feature_names=list(frame.columns),
                                  feature_types=["c", "c", "c", "q"], enable_categorical=True))
    assert np.array_equal(p_pd, p_np), np.abs(p_pd - p_np).max()
    xgb_facts("xgboost/categorical", info, dict(set_sizes_by_feature={
        list(frame.columns)[k]: v for k, v in info["cat_set_sizes_by_feature"].items()}))


def case_xgb_default_left(out):
    import xgboost as xgb
    rng = np.random.default_rng(131)
    n = 4000
    X = rng.normal(size=(n, 6))
    logit = X[:, 0] - X[:, 1] + 0.5 * X[:, 2]
    m0 = rng.random(n) < 0.35
    m1 = rng.random(n) < 0.35
    logit = np.where(m0, logit + 2.0, logit)
    logit = np.where(m1, logit - 2.0, logit)
    X[m0, 0] = np.nan
    X[m1, 1] = np.nan
    X[rng.random((n, 6)) < 0.2] = np.nan
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    tr, te = split_idx(n, 0)
    d = xgb.DMatrix(X[tr], y[tr], missing=np.nan)      # unnamed features -> f0..f5
    b = xgb.train(xgb_params(objective="binary:logistic", max_depth=4, eta=0.3), d,
                  num_boost_round=20)
    real = te[:N_REAL]
    info, _, _ = xgb_write_case(xgb, b, out, ["r%d" % i for i in real], X[real], X[tr], seed=132)
    mj = json.loads((Path(out) / "model.json").read_text())
    vals = set()
    for t in mj["learner"]["gradient_booster"]["model"]["trees"]:
        vals.update(x for x, l in zip(t["default_left"], t["left_children"]) if l != -1)
    assert vals == {0, 1}, vals
    xgb_facts("xgboost/default_left", info, dict(default_left_values_on_splits=sorted(vals)))


# ---- linear ------------------------------------------------------------------------------

def linear_data(cache):
    X, num, ids, tr, real = cache["heart"]
    y = (num > 0).astype(int)
    med = np.nanmedian(X[tr], axis=0)
    Xi = np.where(np.isnan(X), med, X)
    return Xi, y, ids, tr, real, med


def linear_inputs(Xi, ids, tr, real):
    rng = np.random.default_rng(201)
    lo, hi = col_range(Xi[tr])
    rows, eids = [], []
    F = Xi.shape[1]
    specials = [("allzero", np.zeros(F)), ("allnegzero", np.full(F, -0.0)),
                ("allneg", np.full(F, -1.0)), ("alltiny", np.full(F, 1e-36)),
                ("allmin", lo.copy()), ("allmax", hi.copy()),
                ("allhuge", hi * 100 + 1000), ("allneghuge", -(hi * 100 + 1000))]
    for tag, r in specials:
        eids.append("e%03d-%s" % (len(eids), tag))
        rows.append(r)
    while len(rows) < N_EDGE:
        r = Xi[real[rng.integers(len(real))]].copy()
        for j in range(F):
            u = rng.random()
            if u < 0.1:
                r[j] = 0.0
            elif u < 0.15:
                r[j] = -r[j] - 1.0
            elif u < 0.2:
                r[j] = hi[j] + 10 * (hi[j] - lo[j]) + rng.random()
            elif u < 0.25:
                r[j] = r[j] + rng.normal() * 1e-3       # values not representable in float32
        eids.append("e%03d-mix" % len(eids))
        rows.append(r)
    return list(ids[real]) + eids, np.vstack([Xi[real], np.array(rows)])


def cases_linear(root, cache):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from sklearn.linear_model import LogisticRegression

    Xi, y, ids, tr, real, med = linear_data(cache)
    model = LogisticRegression(max_iter=100000, C=1.0)
    model.fit(Xi[tr], y[tr])
    w = model.coef_[0].astype(np.float64)
    b0 = float(model.intercept_[0])
    w32 = w.astype(np.float32).astype(np.float64)
    b32 = float(np.float32(b0))
    F = len(HEART_COLS)
    all_ids, Xall = linear_inputs(Xi, ids, tr, real)
    assert not np.isnan(Xall).any()
    opset = {"": 17, "ai.onnx.ml": 3}

    def ort_run(path, X, dtype):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs = s.run(None, {s.get_inputs()[0].name: X.astype(dtype)})
        return s, outs

    def common(case):
        d = root / "linear" / case
        d.mkdir(parents=True, exist_ok=True)
        write_input(d / "input.csv", all_ids, HEART_COLS, Xall)
        rid, hdr, X = read_input(d / "input.csv")
        assert hdr == HEART_COLS and not np.isnan(X).any()
        raw_sk = model.decision_function(X)
        risk_sk = model.predict_proba(X)[:, 1]
        raw32 = X @ w32 + b32
        with np.errstate(over="ignore"):
            risk32 = 1.0 / (1.0 + np.exp(-raw32))
        return d, rid, X, raw_sk, risk_sk, raw32, risk32

    # linear/sklearn_onnx_float
    d, rid, X, raw_sk, risk_sk, raw32, risk32 = common("sklearn_onnx_float")
    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, F]))],
                          options={id(model): {"zipmap": False}}, target_opset=opset)
    onx.graph.name = "vigil_logreg"            # skl2onnx names the graph with a random uuid
    (d / "model.onnx").write_bytes(onx.SerializeToString())
    s, outs = ort_run(d / "model.onnx", X, np.float32)
    prob = outs[[o.name for o in s.get_outputs()].index("probabilities")][:, 1].astype(np.float64)
    write_table(d / "expected.csv", rid, ["raw", "risk", "risk_f32coef", "risk_sklearn"],
                np.column_stack([raw32, prob, risk32, risk_sk]))
    lc = {a.name: helper.get_attribute_value(a) for a in onx.graph.node[0].attribute}
    FACTS["linear/sklearn_onnx_float"] = dict(
        ops=[(n.domain or "ai.onnx") + ":" + n.op_type for n in onx.graph.node],
        opset_import=[[o.domain or "ai.onnx", o.version] for o in onx.opset_import],
        LinearClassifier=dict(post_transform=lc["post_transform"].decode(),
                              multi_class=lc["multi_class"],
                              classlabels_ints=list(lc["classlabels_ints"]),
                              coefficients="2x13 row-major: row 0 = -w, row 1 = +w",
                              intercepts="[-b, +b]"),
        outputs=[o.name for o in onx.graph.output],
        max_abs_ort_minus_f32coef=float(np.abs(prob - risk32).max()))

    # linear/sklearn_onnx_double
    d, rid, X, raw_sk, risk_sk, raw32, risk32 = common("sklearn_onnx_double")
    onx = convert_sklearn(model, initial_types=[("X", DoubleTensorType([None, F]))],
                          options={id(model): {"zipmap": False}}, target_opset=opset)
    onx.graph.name = "vigil_logreg"            # skl2onnx names the graph with a random uuid
    (d / "model.onnx").write_bytes(onx.SerializeToString())
    s, outs = ort_run(d / "model.onnx", X, np.float64)
    prob = outs[[o.name for o in s.get_outputs()].index("probabilities")][:, 1]
    write_table(d / "expected.csv", rid, ["raw", "risk", "risk_onnxruntime"],
                np.column_stack([raw_sk, risk_sk, prob]))
    ops = [(n.domain or "ai.onnx") + ":" + n.op_type for n in onx.graph.node]
    inits = {i.name: list(i.dims) for i in onx.graph.initializer}
    FACTS["linear/sklearn_onnx_double"] = dict(
        ops=ops, outputs=[o.name for o in onx.graph.output],
        opset_import=[[o.domain or "ai.onnx", o.version] for o in onx.opset_import],
        initializer_shapes=inits,
        note="coef columns are [-w, +w], intercept [-b, +b]; probabilities = "
             "sigmoid(raw) / sum(|sigmoid(raw)|) per row",
        max_abs_ort_minus_sklearn=float(np.abs(prob - risk_sk).max()))

    # hand-built MatMul -> Add -> Sigmoid
    def plain(dtype, np_dtype):
        Xv = helper.make_tensor_value_info("X", dtype, ["N", F])
        Yv = helper.make_tensor_value_info("probability", dtype, ["N", 1])
        W = helper.make_tensor("W", dtype, [F, 1], w.astype(np_dtype).tolist())
        B = helper.make_tensor("B", dtype, [1], [np_dtype(b0).item()])
        nodes = [helper.make_node("MatMul", ["X", "W"], ["XW"]),
                 helper.make_node("Add", ["XW", "B"], ["logit"]),
                 helper.make_node("Sigmoid", ["logit"], ["probability"])]
        g = helper.make_graph(nodes, "vigil_logistic", [Xv], [Yv], [W, B])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="vigil-make-fixtures")
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        return m

    plain_ops = {"ai.onnx:MatMul", "ai.onnx:Add", "ai.onnx:Sigmoid"}
    if set(ops) != plain_ops:
        d, rid, X, raw_sk, risk_sk, raw32, risk32 = common("matmul_sigmoid_double")
        (d / "model.onnx").write_bytes(plain(TensorProto.DOUBLE, np.float64).SerializeToString())
        s, outs = ort_run(d / "model.onnx", X, np.float64)
        prob = outs[0][:, 0]
        write_table(d / "expected.csv", rid, ["raw", "risk", "risk_onnxruntime"],
                    np.column_stack([raw_sk, risk_sk, prob]))
        FACTS["linear/matmul_sigmoid_double"] = dict(
            max_abs_ort_minus_sklearn=float(np.abs(prob - risk_sk).max()))

    d, rid, X, raw_sk, risk_sk, raw32, risk32 = common("matmul_sigmoid_float")
    (d / "model.onnx").write_bytes(plain(TensorProto.FLOAT, np.float32).SerializeToString())
    s, outs = ort_run(d / "model.onnx", X, np.float32)
    prob = outs[0][:, 0].astype(np.float64)
    write_table(d / "expected.csv", rid, ["raw", "risk", "risk_f32coef", "risk_sklearn"],
                np.column_stack([raw32, prob, risk32, risk_sk]))
    FACTS["linear/matmul_sigmoid_float"] = dict(
        max_abs_ort_minus_f32coef=float(np.abs(prob - risk32).max()))

    # linear/json
    d, rid, X, raw_sk, risk_sk, raw32, risk32 = common("json")
    doc = {"format": "vigil-linear", "version": 1, "link": "logistic",
           "features": HEART_COLS, "coefficients": [float(v) for v in w], "intercept": b0}
    (d / "model.linear.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_table(d / "expected.csv", rid, ["raw", "risk"], np.column_stack([raw_sk, risk_sk]))
    FACTS["linear/json"] = dict(median_imputation=dict(zip(HEART_COLS, med.tolist())))
    return model


# ---- malformed ---------------------------------------------------------------------------

def cases_malformed(root):
    import onnx
    from onnx import TensorProto, helper
    d = root / "malformed"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    lgb_text = (root / "lightgbm" / "stumps" / "model.txt").read_text()
    # cut in the middle of Tree=3, inside its threshold= line
    i = lgb_text.index("Tree=3")
    j = lgb_text.index("threshold=", i) + len("threshold=") + 7
    (d / "truncated_lightgbm.txt").write_text(lgb_text[:j])
    xj = (root / "xgboost" / "default_left" / "model.json").read_text()
    (d / "truncated_xgboost.json").write_text(xj[:len(xj) // 2])
    ob = (root / "linear" / "sklearn_onnx_float" / "model.onnx").read_bytes()
    (d / "truncated.onnx").write_bytes(ob[:len(ob) // 2])

    def edit_first(text, key, fn):
        """Change the first value of `key` in Tree=0 and fix tree_sizes so that the file is
        otherwise consistent (LightGBM splits the trees by tree_sizes)."""
        i = text.index("Tree=0")
        a = text.index("\n" + key + "=", i) + 1
        b = text.index("\n", a)
        vals = text[a + len(key) + 1:b].split(" ")
        vals[0] = fn(vals)
        new = key + "=" + " ".join(vals)
        delta = len(new) - (b - a)
        out = text[:a] + new + text[b:]
        m = re.search(r"^tree_sizes=(.*)$", out, re.M)
        sizes = m.group(1).split(" ")
        sizes[0] = str(int(sizes[0]) + delta)
        return out[:m.start(1)] + " ".join(sizes) + out[m.end(1):]
    mfi = int(re.search(r"^max_feature_idx=(\d+)$", lgb_text, re.M).group(1))
    (d / "lightgbm_bad_feature_index.txt").write_text(
        edit_first(lgb_text, "split_feature", lambda v: str(mfi + 1)))
    (d / "lightgbm_bad_decision_type.txt").write_text(
        edit_first(lgb_text, "decision_type", lambda v: "16"))
    obj = re.search(r"^objective=.*$", lgb_text, re.M).group(0)
    (d / "lightgbm_unknown_objective.txt").write_text(
        lgb_text.replace(obj, "objective=lambdarank_x", 1))
    assert xj.count('"name":"binary:logistic"') == 1
    (d / "xgboost_unknown_objective.json").write_text(
        xj.replace('"name":"binary:logistic"', '"name":"rank:unknown"'))
    csv_lines = (root / "lightgbm" / "heart_binary" / "input.csv").read_text().splitlines()
    (d / "not_a_model.txt").write_text("\n".join(csv_lines[:21]) + "\n")
    # TopK graph
    Xv = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 5])
    V = helper.make_tensor_value_info("values", TensorProto.FLOAT, ["N", 2])
    I = helper.make_tensor_value_info("indices", TensorProto.INT64, ["N", 2])
    K = helper.make_tensor("K", TensorProto.INT64, [1], [2])
    g = helper.make_graph([helper.make_node("TopK", ["X", "K"], ["values", "indices"], axis=1)],
                          "topk", [Xv], [V, I], [K])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    (d / "onnx_unsupported_op.onnx").write_bytes(m.SerializeToString())
    # CSV inputs for lightgbm/heart_binary
    head = csv_lines[:11]
    bad = list(head)
    cells = bad[3].split(",")
    bad[3] = ",".join(cells[:-3])
    (d / "csv_too_few_fields.csv").write_text("\n".join(bad) + "\n")
    bad = list(head)
    cells = bad[5].split(",")
    cells[1 + HEART_COLS.index("chol")] = "abc"
    bad[5] = ",".join(cells)
    (d / "csv_text_in_numeric.csv").write_text("\n".join(bad) + "\n")


# ---- old versions via venvs --------------------------------------------------------------

def venv_python(tag):
    env, default, _ = VENVS[tag]
    p = os.environ.get(env) or os.path.join(default, "bin", "python")
    return p if os.path.exists(p) else None


def setup_venvs():
    for tag, (_, default, req) in VENVS.items():
        if not os.path.exists(os.path.join(default, "bin", "python")):
            subprocess.run([sys.executable, "-m", "venv", default], check=True)
        subprocess.run([os.path.join(default, "bin", "pip"), "install", "-q", "-r",
                        str(HERE / req)], check=True)


def run_worker(tag, out, data_dir, case):
    py = venv_python(tag)
    if py is None:
        print("SKIP %s: no venv for %s (run with --setup-venvs)" % (case, tag))
        FACTS[case] = dict(skipped="venv %s missing" % tag)
        return False
    if Path(out).exists():
        shutil.rmtree(out)
    r = subprocess.run([py, str(Path(__file__).resolve()), "--worker", tag, "--out", str(out),
                        "--data", str(data_dir)], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit("worker %s failed" % tag)
    info = json.loads(r.stdout.strip().splitlines()[-1])
    if tag == "lgb3":
        h = info["header"]
        FACTS[case] = dict(library=info["library"], version=h.get("version"),
                           objective=h.get("objective"), trees=info["n_trees"],
                           decision_types=info["decision_types"])
    else:
        FACTS[case] = dict(library=info["library"], base_score=info["base_score"],
                           base_margin=info.get("base_margin"),
                           default_left=info["default_left_types"], trees=info["n_trees"],
                           version=info.get("version"))
    return True


# ---- independent reference evaluators (document the semantics the fixtures pin down) ------

def ref_lgb_raw(text, X):
    """Plain-Python LightGBM raw score. Semantics (checked against the library here):
    |x| <= 1e-35f becomes 0.0 first (dense-row conversion in LightGBM's predictor); numeric
    split: NaN -> 0.0 unless missing type is NaN; missing (Zero: x == 0, NaN: isnan) follows
    default_left; otherwise x <= threshold goes left. Categorical split: NaN or negative goes
    right, int(x) in the cat_threshold bitset goes left."""
    header, trees = parse_lgb_text(text)
    K = int(header.get("num_tree_per_iteration", "1"))
    out = np.zeros((len(X), K))
    parsed = []
    for t in trees:
        P = {k: t[k].split() for k in ("split_feature", "threshold", "decision_type", "left_child",
                                        "right_child", "leaf_value")}
        P = dict(sf=[int(v) for v in P["split_feature"]], th=[float(v) for v in P["threshold"]],
                 dt=[int(v) for v in P["decision_type"]], lc=[int(v) for v in P["left_child"]],
                 rc=[int(v) for v in P["right_child"]], lv=[float(v) for v in P["leaf_value"]],
                 nl=int(t["num_leaves"]))
        if int(t.get("num_cat", "0")) > 0:
            P["cb"] = [int(v) for v in t["cat_boundaries"].split()]
            P["ct"] = [int(v) for v in t["cat_threshold"].split()]
        parsed.append(P)
    for r, x in enumerate(X):
        for ti, P in enumerate(parsed):
            if P["nl"] == 1:
                out[r, ti % K] += P["lv"][0]
                continue
            n = 0
            while n >= 0:
                v = float(x[P["sf"][n]])
                d = P["dt"][n]
                if abs(v) <= KZERO:
                    v = 0.0
                if d & 1:
                    go_left = False
                    if not math.isnan(v) and int(v) >= 0:
                        c = int(v)
                        k = int(P["th"][n])
                        words = P["ct"][P["cb"][k]:P["cb"][k + 1]]
                        go_left = c // 32 < len(words) and (words[c // 32] >> (c % 32)) & 1 == 1
                    n = P["lc"][n] if go_left else P["rc"][n]
                    continue
                mt = (d >> 2) & 3
                if math.isnan(v) and mt != 2:
                    v = 0.0
                if (mt == 1 and v == 0.0) or (mt == 2 and math.isnan(v)):
                    n = P["lc"][n] if (d >> 1) & 1 else P["rc"][n]
                else:
                    n = P["lc"][n] if v <= P["th"][n] else P["rc"][n]
            out[r, ti % K] += P["lv"][~n]
    return out          # with average_output LightGBM's raw_score is this sum, not the mean


def ref_xgb_raw(mj, X):
    """Plain-Python XGBoost margin. Semantics: x -> float32; NaN follows default_left;
    numeric: x < float32(split_condition) goes left; categorical (split_type 1): a
    non-negative int(x) in the node's category set goes right, anything else left;
    leaf value = split_conditions[leaf]; start = logit(base_score) for binary:logistic,
    base_score (per class) otherwise; trees summed in float32."""
    L = mj["learner"]
    obj = L["objective"]["name"]
    bs = [float(v) for v in L["learner_model_param"]["base_score"].strip("[]").split(",")]
    K = max(1, int(L["learner_model_param"].get("num_class", "0")))
    if obj == "binary:logistic":
        base = [math.log(b / (1 - b)) for b in bs]
    else:
        base = bs
    if len(base) == 1:
        base = base * K
    model = L["gradient_booster"]["model"]
    trees, tinfo = model["trees"], model["tree_info"]
    out = np.zeros((len(X), K), dtype=np.float32)
    for ti, t in enumerate(trees):
        cats = {}
        for nid, seg, sz in zip(t.get("categories_nodes", []), t.get("categories_segments", []),
                                t.get("categories_sizes", [])):
            cats[nid] = set(t["categories"][seg:seg + sz])
        st = t.get("split_type", [0] * len(t["left_children"]))
        thr = np.asarray(t["split_conditions"], dtype=np.float32)
        for r, x in enumerate(X):
            i = 0
            while t["left_children"][i] != -1:
                v = np.float32(x[t["split_indices"][i]])
                if np.isnan(v):
                    right = not t["default_left"][i]
                elif st[i] == 1:
                    right = v >= 0 and int(v) in cats[i]
                else:
                    right = not (v < thr[i])
                i = t["right_children"][i] if right else t["left_children"][i]
            out[r, tinfo[ti]] += thr[i]
    return out.astype(np.float64) + np.asarray(base, dtype=np.float32).astype(np.float64)


# ---- self check --------------------------------------------------------------------------

def self_check(root):
    import lightgbm as lgb
    import onnx
    import onnxruntime as ort
    import xgboost as xgb
    problems, report = [], {}
    old = {"lightgbm/v3_format", "xgboost/v1_format", "xgboost/v2_format"}
    for exp in sorted(root.glob("*/*/expected.csv")):
        d = exp.parent
        case = "%s/%s" % (d.parent.name, d.name)
        ids, names, X = read_input(d / "input.csv")
        e_ids, e_hdr, E = read_input(exp)
        if e_ids != ids:
            problems.append("%s: expected.csv ids/rows differ from input.csv" % case)
        if (d / "contrib.csv").exists():
            c_ids, c_hdr, C = read_input(d / "contrib.csv")
            if c_ids != ids:
                problems.append("%s: contrib.csv rows differ" % case)
        if len(ids) > 320:
            problems.append("%s: %d rows" % (case, len(ids)))
        if (d / "model.txt").exists():
            b = lgb.Booster(model_file=str(d / "model.txt"))
            if b.feature_name() != names:
                problems.append("%s: header != model feature names" % case)
            raw = np.asarray(b.predict(X, raw_score=True)).reshape(len(ids), -1)
            ref = E[:, :raw.shape[1]]
            diff = float(np.nanmax(np.abs(raw - ref)))
            report[case] = diff
            if case not in old and not np.array_equal(raw, ref):
                problems.append("%s: reload gives different raw (max diff %g)" % (case, diff))
            ref_d = float(np.nanmax(np.abs(ref_lgb_raw((d / "model.txt").read_text(), X) - ref)))
            report[case + " (plain-python evaluator)"] = ref_d
            if ref_d > 1e-9:
                problems.append("%s: plain-python evaluator differs by %g" % (case, ref_d))
            if case not in old:
                contrib = np.asarray(b.predict(X, pred_contrib=True))
                if not np.array_equal(contrib, C):
                    problems.append("%s: contrib differs" % case)
        elif (d / "model.json").exists():
            b = xgb.Booster(model_file=str(d / "model.json"))
            b.set_param({"nthread": 1})
            mj = json.loads((d / "model.json").read_text())
            ft = mj["learner"].get("feature_types") or []
            kw = {}
            if "c" in ft:
                kw = dict(feature_types=ft, enable_categorical=True)
            fn = mj["learner"].get("feature_names") or None
            if (fn or ["f%d" % i for i in range(X.shape[1])]) != names:
                problems.append("%s: header != model feature names" % case)
            dm = xgb.DMatrix(X, feature_names=fn, missing=np.nan, **kw)
            raw = np.asarray(b.predict(dm, output_margin=True), dtype=np.float64)
            raw = raw.reshape(len(ids), -1)
            ref = E[:, :raw.shape[1]]
            diff = float(np.nanmax(np.abs(raw - ref)))
            report[case] = diff
            if case not in old and not np.array_equal(raw, ref):
                problems.append("%s: reload gives different raw (max diff %g)" % (case, diff))
            ref_d = float(np.nanmax(np.abs(ref_xgb_raw(mj, X) - ref) / np.maximum(1, np.abs(ref))))
            report[case + " (plain-python evaluator)"] = ref_d
            if ref_d > 1e-5:
                problems.append("%s: plain-python evaluator differs by %g" % (case, ref_d))
        elif (d / "model.onnx").exists():
            m = onnx.load(str(d / "model.onnx"))
            onnx.checker.check_model(m)
            s = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
            it = s.get_inputs()[0]
            dt = np.float64 if "double" in it.type else np.float32
            s.run(None, {it.name: X.astype(dt)})
            if np.isnan(X).any():
                problems.append("%s: missing values in linear input" % case)
        elif (d / "model.linear.json").exists():
            doc = json.loads((d / "model.linear.json").read_text())
            raw = X @ np.array(doc["coefficients"]) + doc["intercept"]
            diff = float(np.abs(raw - E[:, 0]).max())
            report[case] = diff
            if diff > 1e-9 or doc["features"] != names:
                problems.append("%s: linear json mismatch %g" % (case, diff))
        else:
            problems.append("%s: no model file" % case)
    # malformed files: does the library itself refuse them? (each in a subprocess: LightGBM
    # can abort the whole process on garbage)
    mal = root / "malformed"
    loaders = {
        "lightgbm": "import lightgbm as l,sys; l.Booster(model_file=sys.argv[1])",
        "xgboost": "import xgboost as x,sys; x.Booster(model_file=sys.argv[1])",
        "onnx": "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)",
        "onnxruntime": "import onnxruntime as o,sys; o.InferenceSession(sys.argv[1], "
                       "providers=['CPUExecutionProvider'])",
    }
    checks = [("truncated_lightgbm.txt", "lightgbm"), ("lightgbm_bad_feature_index.txt", "lightgbm"),
              ("lightgbm_bad_decision_type.txt", "lightgbm"),
              ("lightgbm_unknown_objective.txt", "lightgbm"), ("not_a_model.txt", "lightgbm"),
              ("truncated_xgboost.json", "xgboost"), ("xgboost_unknown_objective.json", "xgboost"),
              ("truncated.onnx", "onnx"), ("onnx_unsupported_op.onnx", "onnx"),
              ("onnx_unsupported_op.onnx", "onnxruntime")]
    for name, lib in checks:
        r = subprocess.run([sys.executable, "-c", loaders[lib], str(mal / name)],
                           capture_output=True, timeout=120)
        verdict = "%s %s" % (lib, "loads it" if r.returncode == 0 else "refuses it")
        key = "malformed/" + name
        report[key] = (report[key] + "; " + verdict) if key in report else verdict
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return problems, report, total


# ---- README ------------------------------------------------------------------------------

CASE_DOCS = [
    ("lightgbm/diabetes130_binary",
     "Diabetes-130 readmission <30d (discharge 11/13/14/19/20/21 excluded, split by patient_nbr), "
     "binary, 60 trees, num_leaves 31, trained on a pandas frame with 12 category columns "
     "(file has a `pandas_categorical:` line) and numeric columns with real NaN (weight_mid, "
     "diag_1_num). input.csv category columns are pandas category codes."),
    ("lightgbm/heart_binary",
     "UCI heart disease, all four sites, target num>0, 50 trees, num_leaves 15; real NaN in "
     "ca/thal/slope and others; chol has real zeros (Switzerland)."),
    ("lightgbm/missing_none", "synthetic, use_missing=false (missing type None: NaN is "
     "evaluated as 0.0); unnamed features (Column_0..)."),
    ("lightgbm/missing_zero", "synthetic, zero_as_missing=true (missing type Zero: 0, |x|<=1e-35f "
     "and NaN are missing); unnamed features (Column_0..)."),
    ("lightgbm/missing_nan", "synthetic with NaN in training (missing type NaN); NaN in f0 acts like "
     "a high value and NaN in f1 like a low one, so both default_left directions occur; unnamed "
     "features (Column_0..)."),
    ("lightgbm/categorical_bitset", "synthetic: cat_big has 150 categories (partition splits, "
     "max_cat_to_onehot=4, max_cat_threshold=64 -> cat_threshold bitsets of several 32-bit "
     "words), cat_small has 3 categories (one-hot splits), trained from numpy with "
     "categorical_feature=[0,1] (no pandas_categorical)."),
    ("lightgbm/stumps", "heart, num_leaves=2 (depth-1 trees), 50 trees."),
    ("lightgbm/single_leaf", "heart, two-stage: first a model that cannot split "
     "(min_data_in_leaf > rows) -> Tree=0 is `num_leaves=1` holding the boost-from-average "
     "score; then 15 normal trees trained on top of it (init_model)."),
    ("lightgbm/single_leaf_multiclass", "synthetic 3-class softmax, min_sum_hessian_in_leaf=20: the "
     "easy class's trees stop splitting and are written as `num_leaves=1` trees in the middle "
     "of the model; unnamed features (Column_0..)."),
    ("lightgbm/deep", "synthetic with 5% NaN, num_leaves=255, max_depth=-1, min_data_in_leaf=1, "
     "10 trees (not 20: 20 full 255-leaf trees are ~540 KB); unnamed features (Column_0..)."),
    ("lightgbm/multiclass", "heart, 3-class softmax (num 0 / 1 / >=2), 30 iterations "
     "(90 trees); expected raw_k/risk_k, contrib c<k>_<feature>."),
    ("lightgbm/regression", "heart, objective=regression, target thalach from the other 12 "
     "columns, 40 trees."),
    ("lightgbm/rf", "heart, boosting=rf, bagging_freq=1, bagging_fraction=0.7, "
     "feature_fraction=0.8, 30 trees; file has `average_output`. NOTE: LightGBM's "
     "predict(raw_score=True) and pred_contrib return the SUM of the 30 trees (not averaged; "
     "3.3.5 does the same), while risk = predict() = sigmoid(sum / 30). So expected.csv `raw` is "
     "that sum and an extra column `raw_averaged` = raw / 30 is the margin risk comes from; "
     "contrib.csv rows sum to `raw`."),
    ("lightgbm/sigmoid_scale", "heart, binary with sigmoid=0.7 (`objective=binary sigmoid:0.7`)."),
    ("lightgbm/v3_format", "heart, small binary model (30 trees) written and scored by "
     "LightGBM 3.3.5 (`version=v3`), made by the lgb3 worker in a venv."),
    ("xgboost/diabetes130_binary", "Diabetes-130 as above, binary:logistic, hist, depth 6, "
     "60 trees, min_child_weight 20, enable_categorical=True on the pandas frame (12 categorical "
     "features, feature_types 'c'; the 3.1 file also stores the category values under "
     "`gradient_booster.model.cats`). input.csv has the pandas codes; predictions on a DMatrix of "
     "codes with feature_types 'c' were checked to equal those on the pandas frame."),
    ("xgboost/heart_binary", "heart, binary:logistic, depth 4, 40 trees, real NaN."),
    ("xgboost/regression", "heart, reg:squarederror, target thalach, depth 4, 40 trees."),
    ("xgboost/multiclass", "heart, multi:softprob 3 classes, depth 3, 20 rounds (60 trees); "
     "contrib c<k>_<feature>."),
    ("xgboost/categorical", "synthetic pandas frame: cat_big 100 categories (partition splits), "
     "cat_small 3 and cat_bin 2 categories (one-hot splits, max_cat_to_onehot=4), NaN "
     "categories; 20 trees depth 4. Both kinds are written the same way in JSON "
     "(split_type 1 + a category set; a value in the set goes right)."),
    ("xgboost/default_left", "synthetic, 6 unnamed features (input header f0..f5; the file "
     "has no feature_names), ~20-35% NaN per column, both default_left 0 and 1 on splits."),
    ("xgboost/v1_format", "heart, small binary model (depth 3, 20 trees) written and scored by "
     "xgboost 1.7.6, made by the xgb1 worker in a venv."),
    ("xgboost/v2_format", "the same with xgboost 2.1.4 (xgb2 worker)."),
    ("linear/sklearn_onnx_float", "sklearn LogisticRegression (lbfgs, C=1, max_iter 1e5, raw "
     "features) on heart with NaN imputed by the training-column median; skl2onnx, "
     "FloatTensorType [N,13], zipmap off, target_opset {'':17, 'ai.onnx.ml':3} "
     "(skl2onnx writes the versions it needs, see opset_import). expected: raw = x.w32+b32 "
     "(float64 from the float32-rounded coefficients), risk = onnxruntime P(class 1), "
     "risk_f32coef = 1/(1+exp(-raw)) in float64, risk_sklearn = predict_proba[:,1]."),
    ("linear/sklearn_onnx_double", "the same model, skl2onnx with DoubleTensorType. expected: "
     "raw = decision_function, risk = predict_proba[:,1], risk_onnxruntime = what onnxruntime "
     "computes from this file."),
    ("linear/matmul_sigmoid_double", "hand-built with onnx.helper: X double [N,13] -> "
     "MatMul(W [13,1]) -> Add(B [1]) -> Sigmoid -> `probability` [N,1]; float64 coef_/intercept_. "
     "expected raw = decision_function, risk = predict_proba[:,1], plus risk_onnxruntime."),
    ("linear/matmul_sigmoid_float", "the same graph in float32. expected raw/risk_f32coef as in "
     "sklearn_onnx_float, risk = onnxruntime, plus risk_sklearn."),
    ("linear/json", "`model.linear.json` (vigil-linear v1, link logistic) with sklearn's float64 "
     "coefficients; expected raw = decision_function, risk = predict_proba[:,1]."),
]

MADE_BY = {
    "lightgbm/diabetes130_binary": "case_lgb_diabetes", "lightgbm/heart_binary": "case_lgb_heart",
    "lightgbm/missing_none": "case_lgb_missing", "lightgbm/missing_zero": "case_lgb_missing",
    "lightgbm/missing_nan": "case_lgb_missing", "lightgbm/categorical_bitset": "case_lgb_categorical",
    "lightgbm/stumps": "case_lgb_heart_variant", "lightgbm/single_leaf": "case_lgb_single_leaf",
    "lightgbm/single_leaf_multiclass": "case_lgb_single_leaf", "lightgbm/deep": "case_lgb_deep",
    "lightgbm/multiclass": "case_lgb_heart_variant", "lightgbm/regression": "case_lgb_heart_variant",
    "lightgbm/rf": "case_lgb_heart_variant", "lightgbm/sigmoid_scale": "case_lgb_heart_variant",
    "xgboost/diabetes130_binary": "case_xgb_diabetes", "xgboost/heart_binary": "case_xgb_heart",
    "xgboost/regression": "case_xgb_heart", "xgboost/multiclass": "case_xgb_heart",
    "xgboost/categorical": "case_xgb_categorical", "xgboost/default_left": "case_xgb_default_left",
}
WORKER_OF = {"lightgbm/v3_format": "lgb3", "xgboost/v1_format": "xgb1",
             "xgboost/v2_format": "xgb2"}

MALFORMED_DOCS = [
    ("truncated_lightgbm.txt", "lightgbm/stumps/model.txt cut in the middle of Tree=3's "
     "`threshold=` line (no `end of trees`)."),
    ("truncated_xgboost.json", "first half of xgboost/default_left/model.json (invalid JSON)."),
    ("truncated.onnx", "first half of the bytes of linear/sklearn_onnx_float/model.onnx."),
    ("lightgbm_bad_feature_index.txt", "lightgbm/stumps with Tree=0's split_feature set to "
     "max_feature_idx+1 (13); tree_sizes adjusted so only that is wrong."),
    ("lightgbm_bad_decision_type.txt", "lightgbm/stumps with Tree=0's decision_type set to 16; "
     "tree_sizes adjusted."),
    ("lightgbm_unknown_objective.txt", "lightgbm/stumps with `objective=lambdarank_x`."),
    ("xgboost_unknown_objective.json", "xgboost/default_left with the objective name "
     "`rank:unknown` (learner.objective.name)."),
    ("not_a_model.txt", "the first 20 rows of lightgbm/heart_binary/input.csv (CSV text)."),
    ("onnx_unsupported_op.onnx", "a valid opset-17 graph X float [N,5] -> TopK(k=2, axis 1) -> "
     "values, indices (passes onnx.checker; not a supported op)."),
    ("csv_too_few_fields.csv", "input for lightgbm/heart_binary: its input.csv header + first 10 "
     "rows; the 3rd data row lacks its last 3 fields."),
    ("csv_text_in_numeric.csv", "input for lightgbm/heart_binary: header + first 10 rows; the "
     "5th data row has `abc` in chol."),
]


def write_readme(root, report, total):
    L = []
    L.append("# Reference fixtures")
    L.append("")
    L.append("Made by `make_fixtures.py` (this folder). Regenerate from the repository root with")
    L.append("")
    L.append("    pip install -r Tests/Fixtures/requirements.txt")
    L.append("    python3 Tests/Fixtures/make_fixtures.py --setup-venvs   # once: old-version venvs in /tmp")
    L.append("    python3 Tests/Fixtures/make_fixtures.py")
    L.append("")
    L.append('Data: the UCI "Diabetes 130-US hospitals for years 1999-2008" set (Strack et al. 2014; `diabetes130/diabetic_data.csv`, SHA-256 0689e7ec031237dc63031b938805c48377748761a3b26acab621567afa24df97) and the UCI Heart Disease set (`heart_disease/processed.{cleveland,hungarian,switzerland,va}.data`), both CC BY 4.0, read from a local data folder (`--data DIR`, or `VIGIL_DATA`); nothing is downloaded. '
             "All seeds are fixed and the libraries run single-threaded. The old-format cases are "
             "made by the same script run under a venv's interpreter (`--worker lgb3|xgb1|xgb2`; "
             "venvs /tmp/lgb3, /tmp/xgb1, /tmp/xgb2 from requirements-lgb3/xgb1/xgb2.txt, or "
             "VIGIL_LGB3_PY/VIGIL_XGB1_PY/VIGIL_XGB2_PY); a missing venv skips that case.")
    L.append("")
    L.append("## Per-case files")
    L.append("")
    L.append("- model: `model.txt` (LightGBM `save_model`), `model.json` (XGBoost `save_model`), "
             "`model.onnx`, `model.linear.json`.")
    L.append("- `input.csv`: `id` then the features in model order, named as in the model file "
             "(LightGBM `feature_names=`, XGBoost `feature_names`; models without names: LightGBM "
             "writes `Column_i`, XGBoost has none and the header uses `f0..`; linear cases use the "
             "heart column names, for ONNX the columns are the [N,13] input tensor in that order). "
             "Empty field = missing. Numbers are Python `repr(float)`; categorical columns are "
             "integer category codes (pandas codes; empty = missing). %d real held-out rows "
             "(`id` = enc<encounter_id> / <site>-<line> / r<index>) then %d edge rows `eNNN-<tag>` "
             "(multiclass cases %d + %d): " % (N_REAL, N_EDGE, N_REAL_MC, N_EDGE_MC) +
             "(regression cases drop real rows whose target is missing) "
             "`root{eq,up,dn,dec,q}-<feature>` / `thr...-<feature>` = a split threshold of the model "
             "(a root split, or any split) exactly, next double (LightGBM) or next float32 "
             "(XGBoost) up/down, `dec` the JSON decimal as a double (differs from the float32 "
             "value), `q` a double a quarter-ulp above the float32 threshold (rounds to it); "
             "`all*` rows (zero, -0.0, NaN, -1, +-1e30, 1e-36), `cat{unseen,neg,big,nan}-<f>` "
             "(codes max+1, -1, 1000, missing), `mix` = real row with ~30% features replaced by "
             "such values (also 1e-35, 1e-35f, 5e-324, +-1e300 for LightGBM, 10x out of range). "
             "Linear inputs have no missing values.")
    L.append("- `expected.csv`: `raw,risk` (raw = margin, `raw_score=True` / `output_margin=True`; "
             "risk = `predict`), multiclass `raw_0..raw_2,risk_0..risk_2`; computed by the library "
             "from the saved model file and input.csv read back. Linear cases: see below.")
    L.append("- `contrib.csv` (trees): `pred_contrib=True` / `pred_contribs=True`; `<feature>...,bias`, "
             "multiclass `c<k>_<feature>`, `c<k>_bias`.")
    L.append("")
    L.append("## Cases")
    L.append("")
    for case, doc in CASE_DOCS:
        if not (root / case).exists():
            if case in FACTS and "skipped" in FACTS[case]:
                L.append("- `%s`: SKIPPED (%s). %s" % (case, FACTS[case]["skipped"], doc))
            continue
        f = FACTS.get(case, {})
        facts = ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in f.items()
                          if k not in ("median_imputation",))
        if case in WORKER_OF:
            how = ("Made by `%s/bin/python Tests/Fixtures/make_fixtures.py --worker %s --out "
                   "Tests/Fixtures/%s --data DIR` (`worker_%s`), which the main "
                   "command runs." % (VENVS[WORKER_OF[case]][1], WORKER_OF[case], case,
                                      "lgb3" if WORKER_OF[case] == "lgb3" else "xgb"))
        else:
            how = "Made by `python3 Tests/Fixtures/make_fixtures.py` (`%s`)." % \
                MADE_BY.get(case, "cases_linear")
        L.append("- `%s`: %s %s%s" % (case, doc, how, (" Facts: " + facts + ".") if facts else ""))
    L.append("")
    L.append("LightGBM decision_type: bit 0 = categorical, bit 1 = default_left, bits 2-3 = missing "
             "type (0 None, 1 Zero, 2 NaN); so 0/2 None, 4/6 Zero, 8/10 NaN, 1/9 categorical.")
    L.append("LightGBM prediction (as pinned by these files; a plain-Python evaluator in "
             "make_fixtures.py reproduces every raw value): with dense input any |x| <= 1e-35f "
             "(1.0000000180025095e-35) is first replaced by 0.0, so x = -1e-35f on a threshold "
             "of exactly -1e-35f goes right (such rows are in missing_none); numeric split: NaN -> "
             "0.0 unless the missing type is NaN, missing values follow default_left, otherwise "
             "x <= threshold goes left; categorical split: NaN or negative goes right, int(x) "
             "present in the cat_threshold bitset goes left (codes beyond the bitset go right). "
             "XGBoost (evaluator agrees to float32 rounding): x is rounded to float32; NaN follows "
             "default_left; numeric: x < split_condition (float32) goes left; categorical: "
             "a non-negative int(x) in the node's category set goes right, anything else "
             "(unseen, negative, 1000) goes left.")
    L.append("")
    L.append("LightGBM 4.6.0 always sets default_left on missing-type-None splits (so 0 does "
             "not occur there; NaN is evaluated as 0.0 on those splits). In missing_zero, x is "
             "missing when -1e-35f <= x <= 1e-35f (1e-35f = 1.0000000180025095e-35) or NaN.")
    L.append("")
    L.append("XGBoost `base_score` is a string in `learner.learner_model_param`; 3.1.2 writes it "
             "bracketed (`[5E-1]`, one value per class for multi:softprob), 1.7.6 and 2.1.4 as a "
             "plain number string. `base_margin` (measured: margin of iteration 0 minus its leaf "
             "values) is what the trees are added to: logit(base_score) for binary:logistic, "
             "base_score itself for reg:squarederror and, per class, for multi:softprob. "
             "`default_left` types are listed per case (int = JSON numbers 0/1; no case writes "
             "bools). 3.1.2 files with categorical features also carry "
             "`gradient_booster.model.cats` (the training category values).")
    L.append("")
    L.append("skl2onnx (double input) does not emit a plain MatMul/Add/Sigmoid graph, hence "
             "linear/matmul_sigmoid_double. The skl2onnx float file lists the default opset twice "
             "in opset_import (as skl2onnx 1.19.1 writes it; onnxruntime accepts it).")
    L.append("")
    L.append("## malformed/ (error tests)")
    L.append("")
    L.append("Made by `python3 Tests/Fixtures/make_fixtures.py` (`cases_malformed`) from the "
             "fixtures above.")
    L.append("")
    for name, doc in MALFORMED_DOCS:
        v = report.get("malformed/" + name)
        L.append("- `%s`: %s%s" % (name, doc, (" Python libraries: %s." % v) if v else ""))
    L.append("")
    L.append("Total size of Tests/Fixtures: %.1f KiB." % (total / 1024))
    (root / "README.md").write_text("\n".join(L) + "\n")


# ---- main --------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=sorted(VENVS))
    ap.add_argument("--out")
    ap.add_argument("--data", default=os.environ.get("VIGIL_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--setup-venvs", action="store_true")
    a = ap.parse_args()
    if a.worker:
        if a.worker == "lgb3":
            worker_lgb3(a.out, a.data)
        else:
            worker_xgb(a.out, a.data, a.worker)
        return
    if a.setup_venvs:
        setup_venvs()
    data = Path(a.data)
    assert (data / "heart_disease").is_dir(), "no data at %s" % data
    root = HERE
    for fam in ["lightgbm", "xgboost", "linear"]:
        for d in (root / fam).glob("*") if (root / fam).exists() else []:
            if d.is_dir() and d.name not in ("v3_format", "v1_format", "v2_format"):
                shutil.rmtree(d)
    cache = {"heart": heart_split(data, seed=0), "diabetes": diabetes_split(data)}
    L = root / "lightgbm"
    print("lightgbm ...", flush=True)
    case_lgb_diabetes(data, L / "diabetes130_binary", cache)
    case_lgb_heart(data, L / "heart_binary", cache)
    for kind in ("none", "zero", "nan"):
        case_lgb_missing(kind, L / ("missing_" + kind))
    case_lgb_categorical(L / "categorical_bitset")
    case_lgb_heart_variant("lightgbm/stumps", L / "stumps", cache,
                           dict(objective="binary", num_leaves=2, learning_rate=0.2,
                                min_data_in_leaf=10), 50, seed=70)
    case_lgb_single_leaf(L / "single_leaf", L / "single_leaf_multiclass", cache)
    case_lgb_deep(L / "deep")
    case_lgb_heart_variant("lightgbm/multiclass", L / "multiclass", cache,
                           dict(objective="multiclass", num_class=3, num_leaves=7,
                                learning_rate=0.1, min_data_in_leaf=10), 30, seed=71,
                           target="multiclass")
    case_lgb_heart_variant("lightgbm/regression", L / "regression", cache,
                           dict(objective="regression", num_leaves=15, learning_rate=0.1,
                                min_data_in_leaf=10), 40, seed=72, target="regression")
    case_lgb_heart_variant("lightgbm/rf", L / "rf", cache,
                           dict(objective="binary", boosting="rf", bagging_freq=1,
                                bagging_fraction=0.7, feature_fraction=0.8, num_leaves=15,
                                min_data_in_leaf=10), 30, seed=73)
    case_lgb_heart_variant("lightgbm/sigmoid_scale", L / "sigmoid_scale", cache,
                           dict(objective="binary", sigmoid=0.7, num_leaves=15,
                                learning_rate=0.1, min_data_in_leaf=10), 30, seed=74)
    print("xgboost ...", flush=True)
    X_ = root / "xgboost"
    case_xgb_diabetes(X_ / "diabetes130_binary", cache)
    case_xgb_heart(X_ / "heart_binary", cache, "xgboost/heart_binary",
                   dict(objective="binary:logistic", max_depth=4, eta=0.1), 40, seed=111)
    case_xgb_heart(X_ / "regression", cache, "xgboost/regression",
                   dict(objective="reg:squarederror", max_depth=4, eta=0.1), 40, seed=112,
                   target="regression")
    case_xgb_heart(X_ / "multiclass", cache, "xgboost/multiclass",
                   dict(objective="multi:softprob", num_class=3, max_depth=3, eta=0.2), 20,
                   seed=113, target="multiclass")
    case_xgb_categorical(X_ / "categorical")
    case_xgb_default_left(X_ / "default_left")
    print("linear ...", flush=True)
    cases_linear(root, cache)
    print("old versions ...", flush=True)
    run_worker("lgb3", L / "v3_format", data, "lightgbm/v3_format")
    run_worker("xgb1", X_ / "v1_format", data, "xgboost/v1_format")
    run_worker("xgb2", X_ / "v2_format", data, "xgboost/v2_format")
    print("malformed ...", flush=True)
    cases_malformed(root)
    problems, report, total = self_check(root)
    write_readme(root, report, total)
    print(json.dumps(FACTS, indent=1, default=str))
    print(json.dumps(report, indent=1))
    print("total fixture bytes: %d" % total)
    if problems:
        print("SELF-CHECK FAILED:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print("self-check OK")


if __name__ == "__main__":
    main()
