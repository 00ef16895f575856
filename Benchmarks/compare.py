#!/usr/bin/env python3
"""Vigil against the Python runtimes, on the same model files and the same rows.

    python3 Benchmarks/compare.py [--vigil PATH] [--rounds 5] [--single-calls 2000]

Works measured (models from make_models.py):
  lgb500      LightGBM Booster.predict (num_threads=1), lleaves (the same model.txt compiled with
              LLVM, predict(n_jobs=1); compiled once into models/lgb500/lleaves-<sha>.so), ONNX
              Runtime on model.onnx (onnxmltools conversion, intra_op_num_threads=1), Vigil on model.txt
  xgb500      XGBoost Booster.inplace_predict (nthread=1) on model.json, Vigil on model.json
  treeshap    path-dependent TreeSHAP of lgb500 on the first 1,000 rows, 1 thread: Vigil
              (`vigil bench --explain`), LightGBM predict(pred_contrib=True), shap TreeExplainer
              (which hands a LightGBM model to pred_contrib) and shap's own C++ TreeSHAP (the
              parsed model switched to model_type "internal")
  logistic40  numpy (X @ w + b, then sigmoid), scikit-learn predict_proba (the fitted model is
              rebuilt from model.linear.json, so all share one set of coefficients), ONNX Runtime
              on model.onnx (skl2onnx), Vigil on model.linear.json (and on model.onnx)

Every round runs every runtime once, in an order rotated each round; a figure is the median over
rounds. Within a round, single-row latency is the p50 of per-call times (one row per call, after
a warm-up) and batch throughput is the best of 3 passes over the 10,000 rows, which is how
`vigil bench` measures itself. Vigil's figures come from `vigil bench --json` (in-process Swift
timings); Python's single-row figures include the Python call overhead of each runtime's API.
A second pass measures batch throughput on 2 threads.

Equality: `vigil score` on each rows.csv, its risk column against LightGBM's predict (lgb500),
XGBoost's inplace_predict (xgb500) and scikit-learn's predict_proba (logistic40); lleaves against
LightGBM; `vigil score --explain all` contributions against LightGBM pred_contrib and shap's
(treeshap); max absolute differences.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
BATCH_PASSES = 3
WARMUP_CALLS = 200
SHAP_ROWS = 1000


# ----------------------------------------------------------------------------- inputs

def read_rows(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with path.open(newline="") as fh:
        rd = csv.reader(fh)
        header = next(rd)
        ids, data = [], []
        for rec in rd:
            ids.append(rec[0])
            data.append([float(v) if v != "" else np.nan for v in rec[1:]])
    return ids, header[1:], np.ascontiguousarray(np.array(data, dtype=np.float64))


def find_vigil(explicit: str | None) -> Path:
    candidates = [Path(explicit)] if explicit else [
        HERE / ".build" / "release" / "vigil", HERE.parent / ".build" / "release" / "vigil"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    sys.exit("compare.py: no vigil executable; build it with\n"
             "  (cd Benchmarks && swift build -c release --product vigil)\n"
             "or pass --vigil PATH. Looked at: " + ", ".join(map(str, candidates)))


# ----------------------------------------------------------------------------- lleaves

def patch_lleaves_for_new_llvmlite():
    """lleaves 1.3.0 optimizes with llvmlite's legacy PassManagerBuilder, which llvmlite 0.45+
    removed; run the same O3 pipeline through the new pass manager instead."""
    import os
    import llvmlite.binding as llvm
    import llvmlite.ir
    import lleaves.compiler as lc
    import lleaves.compiler.tree_compiler as tc
    if hasattr(llvm, "PassManagerBuilder"):
        return
    try:
        llvm.initialize()
    except RuntimeError:   # "llvmlite.binding.initialize() is deprecated": a no-op now
        llvm.initialize = lambda: None

    def compile_to_module(file_path, fblocksize=34, finline=True, raw_score=False,
                          froot_func_name="forest_root", use_fp64=True):
        forest = tc.parse_to_ast(file_path)
        forest.raw_score = raw_score
        ir = llvmlite.ir.Module(name="forest")
        tc.gen_forest(forest, ir, fblocksize, froot_func_name, use_fp64)
        ir.triple = llvm.get_process_triple()
        module = llvm.parse_assembly(str(ir))
        module.name = str(file_path)
        module.verify()
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        tm = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten())
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        if finline:
            pto.inlining_threshold = 1
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(module, pb)
        return module
    tc.compile_to_module = compile_to_module
    lc.compile_to_module = compile_to_module


# ----------------------------------------------------------------------------- timing

def single_p50_us(call, rows: list, calls: int) -> float:
    """p50 of per-call wall time in µs, one row per call, cycling through `rows`."""
    n = len(rows)
    for i in range(WARMUP_CALLS):
        call(rows[i % n])
    samples = np.empty(calls)
    clock = time.perf_counter_ns
    for i in range(calls):
        x = rows[i % n]
        t0 = clock()
        call(x)
        samples[i] = clock() - t0
    return float(np.median(samples)) / 1000.0


def batch_rows_per_s(call, X, rows: int) -> float:
    best = 0.0
    call(X)  # warm-up
    for _ in range(BATCH_PASSES):
        t0 = time.perf_counter()
        call(X)
        best = max(best, rows / (time.perf_counter() - t0))
    return best


# ----------------------------------------------------------------------------- runtimes

class Runtimes:
    def __init__(self, args):
        import lightgbm as lgb
        import onnxruntime as ort
        from sklearn.linear_model import LogisticRegression

        self.args = args
        self.vigil = find_vigil(args.vigil)
        self.lgb_dir = MODELS / "lgb500"
        self.xgb_dir = MODELS / "xgb500"
        self.log_dir = MODELS / "logistic40"
        for p in [self.lgb_dir / "model.txt", self.lgb_dir / "model.onnx", self.lgb_dir / "rows.csv",
                  self.xgb_dir / "model.json", self.xgb_dir / "rows.csv",
                  self.log_dir / "model.linear.json", self.log_dir / "model.onnx", self.log_dir / "rows.csv"]:
            if not p.is_file():
                sys.exit(f"compare.py: {p} is missing; run python3 Benchmarks/make_models.py first")

        self.lgb_ids, lgb_names, self.X_lgb = read_rows(self.lgb_dir / "rows.csv")
        self.booster = lgb.Booster(model_file=str(self.lgb_dir / "model.txt"))
        assert self.booster.feature_name() == lgb_names, "rows.csv columns are not the model's features"
        self.log_ids, log_names, self.X_log = read_rows(self.log_dir / "rows.csv")
        doc = json.loads((self.log_dir / "model.linear.json").read_text())
        assert doc["features"] == log_names
        self.w = np.array(doc["coefficients"], dtype=np.float64)
        self.b = float(doc["intercept"])
        sk = LogisticRegression()
        sk.classes_ = np.array([0, 1])
        sk.coef_ = self.w.reshape(1, -1)
        sk.intercept_ = np.array([self.b])
        sk.n_features_in_ = len(self.w)
        self.sk = sk

        self.X_lgb32 = self.X_lgb.astype(np.float32)
        self.X_log32 = self.X_log.astype(np.float32)
        # Rows pre-sliced so a single-row call measures only the runtime's own call.
        self.lgb_rows = [self.X_lgb[i:i + 1] for i in range(len(self.X_lgb))]
        self.lgb_rows32 = [self.X_lgb32[i:i + 1] for i in range(len(self.X_lgb))]
        self.log_rows = [self.X_log[i:i + 1] for i in range(len(self.X_log))]
        self.log_rows32 = [self.X_log32[i:i + 1] for i in range(len(self.X_log))]

        self.ort = ort
        self.sessions = {}

        import xgboost as xgb
        self.xgb_ids, xgb_names, self.X_xgb = read_rows(self.xgb_dir / "rows.csv")
        self.xgb = xgb.Booster(model_file=str(self.xgb_dir / "model.json"))
        assert self.xgb.feature_names == xgb_names, "xgb500 rows.csv columns are not the model's features"
        self.xgb_rows = [self.X_xgb[i:i + 1] for i in range(len(self.X_xgb))]
        self.xgb_threads = None

        self.lleaves = self.compile_lleaves()

        # TreeSHAP rows: the first SHAP_ROWS rows of lgb500's rows.csv, also as a file for vigil.
        self.shap_tmp = tempfile.TemporaryDirectory(prefix="vigil-compare-")
        self.X_shap = np.ascontiguousarray(self.X_lgb[:SHAP_ROWS])
        self.shap_csv = Path(self.shap_tmp.name) / "rows1000.csv"
        with (self.lgb_dir / "rows.csv").open() as src, self.shap_csv.open("w") as dst:
            for i, line in enumerate(src):
                if i > SHAP_ROWS:
                    break
                dst.write(line)

    def compile_lleaves(self):
        """lleaves' LLVM build of model.txt, cached by the model's SHA-256 (compiling takes a while)."""
        import hashlib
        patch_lleaves_for_new_llvmlite()
        import lleaves
        model = self.lgb_dir / "model.txt"
        sha = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
        cache = self.lgb_dir / f"lleaves-{sha}.so"
        if not cache.is_file():
            print(f"compiling {model} with lleaves (once; cached in {cache.name}) ...", file=sys.stderr, flush=True)
        m = lleaves.Model(model_file=str(model))
        m.compile(cache=str(cache))
        return m

    def session(self, path: Path, threads: int):
        key = (path, threads)
        if key not in self.sessions:
            so = self.ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
            s = self.ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            prob = [o.name for o in s.get_outputs() if o.name.startswith("prob")][0]
            self.sessions[key] = (s, s.get_inputs()[0].name, prob)
        return self.sessions[key]

    # Each measure_* returns {work: figure} for one round.

    def measure_lightgbm(self, threads: int, single: bool) -> dict:
        bst, out = self.booster, {}
        if single:
            out["lgb single"] = single_p50_us(lambda x: bst.predict(x, num_threads=1), self.lgb_rows,
                                              self.args.single_calls)
        out["lgb batch"] = batch_rows_per_s(lambda X: bst.predict(X, num_threads=threads), self.X_lgb,
                                            len(self.X_lgb))
        return out

    def measure_lleaves(self, threads: int, single: bool) -> dict:
        m, out = self.lleaves, {}
        if single:
            out["lgb single"] = single_p50_us(lambda x: m.predict(x, n_jobs=1), self.lgb_rows, self.args.single_calls)
        out["lgb batch"] = batch_rows_per_s(lambda X: m.predict(X, n_jobs=threads), self.X_lgb, len(self.X_lgb))
        return out

    def measure_xgboost(self, threads: int, single: bool) -> dict:
        bst, out = self.xgb, {}
        if single:
            bst.set_param({"nthread": 1})
            out["xgb single"] = single_p50_us(lambda x: bst.inplace_predict(x), self.xgb_rows, self.args.single_calls)
        bst.set_param({"nthread": threads})
        out["xgb batch"] = batch_rows_per_s(lambda X: bst.inplace_predict(X), self.X_xgb, len(self.X_xgb))
        return out

    def measure_ort_lgb(self, threads: int, single: bool) -> dict:
        s, inp, prob = self.session(self.lgb_dir / "model.onnx", threads)
        out = {}
        if single:
            s1, inp1, prob1 = self.session(self.lgb_dir / "model.onnx", 1)
            out["lgb single"] = single_p50_us(lambda x: s1.run([prob1], {inp1: x}), self.lgb_rows32,
                                              self.args.single_calls)
        out["lgb batch"] = batch_rows_per_s(lambda X: s.run([prob], {inp: X}), self.X_lgb32, len(self.X_lgb))
        return out

    def measure_numpy(self, threads: int, single: bool) -> dict:
        from threadpoolctl import threadpool_limits
        w, b, out = self.w, self.b, {}

        def f(X):
            return 1.0 / (1.0 + np.exp(-(X @ w + b)))
        with threadpool_limits(limits=threads):
            if single:
                out["log single"] = single_p50_us(f, self.log_rows, self.args.single_calls)
            out["log batch"] = batch_rows_per_s(f, self.X_log, len(self.X_log))
        return out

    def measure_sklearn(self, threads: int, single: bool) -> dict:
        from threadpoolctl import threadpool_limits
        sk, out = self.sk, {}
        with threadpool_limits(limits=threads):
            if single:
                out["log single"] = single_p50_us(sk.predict_proba, self.log_rows, self.args.single_calls)
            out["log batch"] = batch_rows_per_s(sk.predict_proba, self.X_log, len(self.X_log))
        return out

    def measure_ort_log(self, threads: int, single: bool) -> dict:
        s, inp, prob = self.session(self.log_dir / "model.onnx", threads)
        out = {}
        if single:
            s1, inp1, prob1 = self.session(self.log_dir / "model.onnx", 1)
            out["log single"] = single_p50_us(lambda x: s1.run([prob1], {inp1: x}), self.log_rows32,
                                              self.args.single_calls)
        out["log batch"] = batch_rows_per_s(lambda X: s.run([prob], {inp: X}), self.X_log32, len(self.X_log))
        return out

    # TreeSHAP, 1 thread, on X_shap: rows/s (best of BATCH_PASSES after a warm-up).

    def measure_shap_lightgbm(self) -> dict:
        bst = self.booster
        return {"shap batch": batch_rows_per_s(lambda X: bst.predict(X, pred_contrib=True, num_threads=1),
                                               self.X_shap, len(self.X_shap))}

    def shap_explainers(self):
        if not hasattr(self, "_explainers"):
            import warnings
            import shap
            warnings.filterwarnings("ignore")   # shap's notes on LightGBM binary output shapes
            via_lgb = shap.TreeExplainer(self.booster)
            internal = shap.TreeExplainer(self.booster)
            internal.model.model_type = "internal"    # shap's own C++ TreeSHAP on the parsed trees
            self._explainers = (via_lgb, internal)
        return self._explainers

    def measure_shap_via_lgb(self) -> dict:
        e, _ = self.shap_explainers()
        return {"shap batch": batch_rows_per_s(lambda X: e.shap_values(X), self.X_shap, len(self.X_shap))}

    def measure_shap_cpp(self) -> dict:
        _, e = self.shap_explainers()
        return {"shap batch": batch_rows_per_s(lambda X: e.shap_values(X, check_additivity=False),
                                               self.X_shap, len(self.X_shap))}

    def measure_shap_vigil(self) -> dict:
        cmd = [str(self.vigil), "bench", "--json", "--model", str(self.lgb_dir / "model.txt"),
               "--input", str(self.shap_csv), "--rows", str(SHAP_ROWS), "--batch", str(SHAP_ROWS),
               "--threads", "1", "--single-calls", "50", "--explain"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"compare.py: {' '.join(cmd)} failed ({res.returncode}):\n{res.stderr}")
        j = json.loads(res.stdout)
        return {"shap batch": j["batchExplainRowsPerSecond"], "shap single": j["singleExplain"]["p50"]}

    def vigil_bench(self, model: Path, rows: Path, threads: int) -> dict:
        cmd = [str(self.vigil), "bench", "--json", "--model", str(model), "--input", str(rows),
               "--rows", "10000", "--batch", "10000", "--threads", str(threads),
               "--single-calls", str(self.args.vigil_single_calls)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"compare.py: {' '.join(cmd)} failed ({res.returncode}):\n{res.stderr}")
        return json.loads(res.stdout)

    def measure_vigil(self, work: str, model: Path, rows: Path, threads: int) -> dict:
        j = self.vigil_bench(model, rows, threads)
        return {f"{work} single raw": j["singleRaw"]["p50"], f"{work} single full": j["singleFull"]["p50"],
                f"{work} batch raw": j["batchRawRowsPerSecond"], f"{work} batch full": j["batchFullRowsPerSecond"]}

    # ------------------------------------------------------------------------- equality

    def equality(self) -> list[tuple[str, float]]:
        out = []
        with tempfile.TemporaryDirectory() as tmp:
            for label, model, rows, ids, ref in [
                ("Vigil model.txt vs LightGBM Booster.predict (lgb500, 10,000 rows)",
                 self.lgb_dir / "model.txt", self.lgb_dir / "rows.csv", self.lgb_ids,
                 self.booster.predict(self.X_lgb, num_threads=1)),
                ("Vigil model.linear.json vs scikit-learn predict_proba (logistic40, 10,000 rows)",
                 self.log_dir / "model.linear.json", self.log_dir / "rows.csv", self.log_ids,
                 self.sk.predict_proba(self.X_log)[:, 1]),
            ]:
                dest = Path(tmp) / "scores.csv"
                cmd = [str(self.vigil), "score", "--model", str(model), "--input", str(rows),
                       "--output", str(dest), "--quiet"]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode != 0:
                    sys.exit(f"compare.py: {' '.join(cmd)} failed ({res.returncode}):\n{res.stderr}")
                with dest.open(newline="") as fh:
                    recs = list(csv.DictReader(fh))
                assert [r["id"] for r in recs] == ids, "vigil score changed the row order or ids"
                risk = np.array([float(r["risk"]) for r in recs])
                out.append((label, float(np.max(np.abs(risk - ref)))))
            # context: the skl2onnx file stores float32 coefficients
            dest = Path(tmp) / "scores_onnx.csv"
            res = subprocess.run([str(self.vigil), "score", "--model", str(self.log_dir / "model.onnx"),
                                  "--input", str(self.log_dir / "rows.csv"), "--output", str(dest), "--quiet"],
                                 capture_output=True, text=True)
            if res.returncode == 0:
                with dest.open(newline="") as fh:
                    risk = np.array([float(r["risk"]) for r in csv.DictReader(fh)])
                out.append(("(context) Vigil model.onnx (float32 coefficients) vs scikit-learn (logistic40)",
                            float(np.max(np.abs(risk - self.sk.predict_proba(self.X_log)[:, 1])))))
            # xgb500: Vigil's risk against XGBoost's inplace_predict
            dest = Path(tmp) / "scores_xgb.csv"
            cmd = [str(self.vigil), "score", "--model", str(self.xgb_dir / "model.json"),
                   "--input", str(self.xgb_dir / "rows.csv"), "--output", str(dest), "--quiet"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                sys.exit(f"compare.py: {' '.join(cmd)} failed ({res.returncode}):\n{res.stderr}")
            with dest.open(newline="") as fh:
                recs = list(csv.DictReader(fh))
            assert [r["id"] for r in recs] == self.xgb_ids
            self.xgb.set_param({"nthread": 1})
            ref = self.xgb.inplace_predict(self.X_xgb).astype(np.float64)
            out.append(("Vigil model.json vs XGBoost inplace_predict (xgb500, 10,000 rows)",
                        float(np.max(np.abs(np.array([float(r["risk"]) for r in recs]) - ref)))))
            # treeshap: Vigil's contributions (and bias) against LightGBM pred_contrib and shap's
            dest = Path(tmp) / "contrib.csv"
            cmd = [str(self.vigil), "score", "--model", str(self.lgb_dir / "model.txt"), "--input",
                   str(self.shap_csv), "--output", str(dest), "--explain", "all", "--quiet"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                sys.exit(f"compare.py: {' '.join(cmd)} failed ({res.returncode}):\n{res.stderr}")
            with dest.open(newline="") as fh:
                recs = list(csv.DictReader(fh))
            names = self.booster.feature_name()
            vigil_phi = np.array([[float(r[f"contrib_{n}"]) for n in names] + [float(r["contrib_bias"])] for r in recs])
            lgb_phi = self.booster.predict(self.X_shap, pred_contrib=True, num_threads=1)
            out.append(("TreeSHAP: Vigil --explain all vs LightGBM pred_contrib (lgb500, 1,000 rows, incl. bias)",
                        float(np.max(np.abs(vigil_phi - lgb_phi)))))
            via_lgb, internal = self.shap_explainers()
            cpp = np.asarray(internal.shap_values(self.X_shap, check_additivity=False)).reshape(len(self.X_shap), -1)
            out.append(("TreeSHAP: Vigil vs shap C++ TreeSHAP (lgb500, 1,000 rows)",
                        float(np.max(np.abs(vigil_phi[:, :-1] - cpp[:, :len(names)])))))
            out.append(("TreeSHAP: shap C++ TreeSHAP vs LightGBM pred_contrib (context)",
                        float(np.max(np.abs(cpp[:, :len(names)] - lgb_phi[:, :-1])))))
        ll = self.lleaves.predict(self.X_lgb, n_jobs=1)
        out.append(("(context) lleaves vs LightGBM Booster.predict (lgb500)",
                    float(np.max(np.abs(ll - self.booster.predict(self.X_lgb, num_threads=1))))))
        s, inp, prob = self.session(self.lgb_dir / "model.onnx", 1)
        ort_p = s.run([prob], {inp: self.X_lgb32})[0][:, 1].astype(np.float64)
        out.append(("(context) ONNX Runtime float32 model.onnx vs LightGBM (lgb500)",
                    float(np.max(np.abs(ort_p - self.booster.predict(self.X_lgb, num_threads=1))))))
        return out


# ----------------------------------------------------------------------------- report

def run_rounds(rt: Runtimes, threads: int, single: bool, rounds: int) -> dict[str, dict[str, float]]:
    """{runtime: {work: median figure}}"""
    tasks = [
        ("LightGBM", lambda: rt.measure_lightgbm(threads, single)),
        ("lleaves", lambda: rt.measure_lleaves(threads, single)),
        ("ONNX Runtime (LightGBM via onnxmltools)", lambda: rt.measure_ort_lgb(threads, single)),
        ("Vigil lgb500", lambda: rt.measure_vigil("lgb", rt.lgb_dir / "model.txt", rt.lgb_dir / "rows.csv", threads)),
        ("XGBoost", lambda: rt.measure_xgboost(threads, single)),
        ("Vigil xgb500", lambda: rt.measure_vigil("xgb", rt.xgb_dir / "model.json", rt.xgb_dir / "rows.csv", threads)),
        ("numpy", lambda: rt.measure_numpy(threads, single)),
        ("scikit-learn", lambda: rt.measure_sklearn(threads, single)),
        ("ONNX Runtime (skl2onnx)", lambda: rt.measure_ort_log(threads, single)),
        ("Vigil logistic40 json", lambda: rt.measure_vigil(
            "log", rt.log_dir / "model.linear.json", rt.log_dir / "rows.csv", threads)),
        ("Vigil logistic40 onnx", lambda: rt.measure_vigil(
            "log", rt.log_dir / "model.onnx", rt.log_dir / "rows.csv", threads)),
    ]
    if single and not rt.args.no_treeshap:   # TreeSHAP: 1 thread only, in the 1-thread pass
        tasks += [
            ("TreeSHAP LightGBM pred_contrib", rt.measure_shap_lightgbm),
            ("TreeSHAP shap TreeExplainer (-> LightGBM)", rt.measure_shap_via_lgb),
            ("TreeSHAP shap C++ TreeSHAP", rt.measure_shap_cpp),
            ("TreeSHAP Vigil", rt.measure_shap_vigil),
        ]
    samples: dict[str, dict[str, list[float]]] = {}
    for r in range(rounds):
        order = tasks[r % len(tasks):] + tasks[:r % len(tasks)]
        t0 = time.perf_counter()
        for name, fn in order:
            for work, v in fn().items():
                samples.setdefault(name, {}).setdefault(work, []).append(v)
        print(f"  round {r + 1}/{rounds} ({threads} thread{'s' if threads > 1 else ''}): "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return {name: {w: statistics.median(v) for w, v in d.items()} for name, d in samples.items()}


def fmt_us(v: float) -> str:
    return f"{v:,.2f} µs"


def fmt_rate(v: float) -> str:
    return f"{v:,.0f} rows/s"


def table(med: dict, threads: int, single: bool) -> list[list[str]]:
    """Rows: work, runtime, figure, Vigil raw / peer, Vigil full / peer (higher = Vigil faster)."""
    rows = []
    works = []
    lgb_peers = ["LightGBM", "lleaves", "ONNX Runtime (LightGBM via onnxmltools)"]
    if single:
        works += [("LightGBM 500 trees, single row, p50", "lgb single", "lgb", "Vigil lgb500", lgb_peers, True),
                  ("XGBoost 500 trees depth 6, single row, p50", "xgb single", "xgb", "Vigil xgb500", ["XGBoost"], True),
                  ("logistic 40, single row, p50", "log single", "log", "Vigil logistic40 json",
                   ["numpy", "scikit-learn", "ONNX Runtime (skl2onnx)"], True)]
    works += [(f"LightGBM 500 trees, batch 10k, {threads} thr", "lgb batch", "lgb", "Vigil lgb500", lgb_peers, False),
              (f"XGBoost 500 trees depth 6, batch 10k, {threads} thr", "xgb batch", "xgb", "Vigil xgb500",
               ["XGBoost"], False),
              (f"logistic 40, batch 10k, {threads} thr", "log batch", "log", "Vigil logistic40 json",
               ["numpy", "scikit-learn", "ONNX Runtime (skl2onnx)"], False)]
    for title, key, vkey, vname, peers, latency in works:
        kind = "single" if latency else "batch"
        fmt = fmt_us if latency else fmt_rate
        v_raw = med[vname][f"{vkey} {kind} raw"]
        v_full = med[vname][f"{vkey} {kind} full"]
        rows.append([title, "Vigil raw predict" + (" (model.linear.json)" if vkey == "log" else ""), fmt(v_raw), "", ""])
        rows.append([title, "Vigil full record" + (" (model.linear.json)" if vkey == "log" else ""), fmt(v_full), "", ""])
        if vkey == "log":
            o = med["Vigil logistic40 onnx"]
            rows.append([title, "Vigil raw predict (model.onnx)", fmt(o[f"log {kind} raw"]), "", ""])
        for p in peers:
            pv = med[p][key]
            if latency:
                r_raw, r_full = pv / v_raw, pv / v_full
            else:
                r_raw, r_full = v_raw / pv, v_full / pv
            rows.append([title, p, fmt(pv), f"{r_raw:.2f}x", f"{r_full:.2f}x"])
    if single and "TreeSHAP Vigil" in med:
        title = f"TreeSHAP lgb500, {SHAP_ROWS:,} rows, 1 thr"
        v = med["TreeSHAP Vigil"]["shap batch"]
        rows.append([title, "Vigil (vigil bench --explain)", fmt_rate(v), "", ""])
        for p in ["TreeSHAP LightGBM pred_contrib", "TreeSHAP shap TreeExplainer (-> LightGBM)", "TreeSHAP shap C++ TreeSHAP"]:
            pv = med[p]["shap batch"]
            rows.append([title, p.removeprefix("TreeSHAP "), fmt_rate(pv), f"{v / pv:.2f}x", ""])
        title = "TreeSHAP lgb500, single row, p50"
        rows.append([title, "Vigil (vigil bench --explain)", fmt_us(med["TreeSHAP Vigil"]["shap single"]), "", ""])
    return rows


def print_table(rows: list[list[str]]) -> None:
    header = ["work", "runtime", "figure", "Vigil raw vs peer", "Vigil full vs peer"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                           for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    prev = None
    for r in rows:
        print(line([r[0] if r[0] != prev else ""] + r[1:]))
        prev = r[0]


def versions() -> str:
    import lightgbm, onnxruntime, sklearn, xgboost, shap, lleaves  # noqa: F401
    from importlib.metadata import version
    cpu = "unknown CPU"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
            f"lightgbm {lightgbm.__version__}, scikit-learn {sklearn.__version__}, "
            f"onnxruntime {onnxruntime.__version__}, xgboost {xgboost.__version__}, lleaves {version('lleaves')}, "
            f"llvmlite {version('llvmlite')}, shap {shap.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vigil", help="vigil executable (default: Benchmarks/.build/release/vigil, then .build/release/vigil)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--single-calls", type=int, default=2000, help="Python single-row calls per runtime per round")
    ap.add_argument("--vigil-single-calls", type=int, default=5000, help="vigil bench --single-calls")
    ap.add_argument("--no-threads2", action="store_true", help="skip the 2-thread batch pass")
    ap.add_argument("--no-treeshap", action="store_true", help="skip the TreeSHAP works")
    ap.add_argument("--json-out", help="write the median figures as JSON here")
    args = ap.parse_args()

    rt = Runtimes(args)
    print(f"# Vigil vs Python runtimes, {args.rounds} rounds, median")
    print(f"# {versions()}; vigil: {rt.vigil}")
    print(f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("Equality (max |risk difference| over the 10,000 rows of rows.csv, `vigil score`):")
    for label, d in rt.equality():
        print(f"  {label}: {d:.3g}")
    print()
    med1 = run_rounds(rt, 1, True, args.rounds)
    print("## 1 thread (single-row calls always run on 1 thread)")
    print()
    print_table(table(med1, 1, True))
    print()
    result = {"threads1": med1}
    if not args.no_threads2:
        med2 = run_rounds(rt, 2, False, args.rounds)
        print("## 2 threads, batch throughput (LightGBM num_threads=2, lleaves n_jobs=2, ORT intra_op 2, XGBoost nthread=2,")
        print("## numpy/sklearn BLAS 2, vigil --threads 2)")
        print()
        print_table(table(med2, 2, False))
        print()
        result["threads2"] = med2
    print("Notes:")
    print("  * Python single-row figures include the Python call overhead of each runtime's API (argument")
    print("    checks, array conversion, the C call); Vigil's single-row figures are in-process Swift calls")
    print("    measured by `vigil bench` (raw: margins + link; full: the whole prediction record with range")
    print("    checks, groups, threshold and decision). The latency ratios compare those two things.")
    print("  * Ratios: throughput Vigil/peer, latency peer/Vigil: above 1.00x means Vigil is faster.")
    print("  * ONNX Runtime runs float32 inputs and coefficients; the others run float64 (XGBoost and Vigil's")
    print("    XGBoost path read features as float32, as XGBoost does).")
    print("  * TreeSHAP: rows/s over the first 1,000 rows of lgb500's rows.csv, 1 thread; Vigil/peer ratio.")
    print("  * Batch: best of 3 passes over the 10,000 rows per round; latency: p50 of per-call times per")
    print("    round; every figure is the median over rounds with the runtimes alternating.")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
