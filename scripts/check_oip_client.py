#!/usr/bin/env python3
"""Checks vigil serve against the stock Open Inference Protocol client (tritonclient[http]).

Usage: scripts/check_oip_client.py --port PORT [--model sepsis --model readmission]
Start the server first, e.g.
    .build/release/vigil serve --model models/sepsis --model models/readmission --port 8011
Needs `pip install "tritonclient[http]"`; exits 2 with a message when it is absent.
"""
import argparse
import csv
import os
import sys

try:
    import numpy as np
    import tritonclient.http as httpclient
except ImportError as e:  # pragma: no cover
    print(f"skip: tritonclient[http] is not installed ({e}); pip install 'tritonclient[http]'", file=sys.stderr)
    sys.exit(2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_model(client, name, rows):
    meta = client.get_model_metadata(name)
    features = [i["name"] for i in meta["inputs"] if i["datatype"] != "BYTES"]
    groups = [i["name"] for i in meta["inputs"] if i["datatype"] == "BYTES"]
    assert client.is_model_ready(name), f"{name} not ready"
    path = os.path.join(ROOT, "models", name, "test_cohort.csv")
    with open(path) as f:
        reader = list(csv.DictReader(f))[:rows]
    x = np.array([[float(r[c]) if r[c] != "" else np.nan for c in features] for r in reader], dtype=np.float64)
    expected = np.array([float(r["reference_risk"]) for r in reader])

    # 1. One FP64 tensor [N, F] in manifest order, plus BYTES group fields.
    inputs = [httpclient.InferInput("features", list(x.shape), "FP64")]
    inputs[0].set_data_from_numpy(x, binary_data=False)
    for g in groups:
        t = httpclient.InferInput(g, [len(reader)], "BYTES")
        t.set_data_from_numpy(np.array([r.get(g, "").encode() for r in reader], dtype=np.object_), binary_data=False)
        inputs.append(t)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("risk", "decision", "threshold", "prediction_id")]
    res = client.infer(name, inputs, outputs=outputs)
    risk = res.as_numpy("risk")
    assert risk.shape == (len(reader),), risk.shape
    err = float(np.max(np.abs(risk - expected)))
    assert err < 1e-6, f"{name}: max |risk - reference_risk| = {err}"
    decision = res.as_numpy("decision")
    threshold = res.as_numpy("threshold")
    assert ((risk >= threshold) == decision).all()
    ids = res.as_numpy("prediction_id")
    assert len(ids) == len(reader)

    # 2. One FP32 tensor per feature.
    per = []
    for j, c in enumerate(features):
        t = httpclient.InferInput(c, [len(reader)], "FP32")
        t.set_data_from_numpy(x[:, j].astype(np.float32), binary_data=False)
        per.append(t)
    res32 = client.infer(name, per, outputs=[httpclient.InferRequestedOutput("risk", binary_data=False)])
    err32 = float(np.max(np.abs(res32.as_numpy("risk") - expected)))
    # 3. The client's defaults: inputs and outputs as binary tensor data (the extension).
    binary = [httpclient.InferInput("features", list(x.shape), "FP64")]
    binary[0].set_data_from_numpy(x)
    for g in groups:
        t = httpclient.InferInput(g, [len(reader)], "BYTES")
        t.set_data_from_numpy(np.array([r.get(g, "").encode() for r in reader], dtype=np.object_))
        binary.append(t)
    resb = client.infer(name, binary)
    errb = float(np.max(np.abs(resb.as_numpy("risk") - expected)))
    assert errb < 1e-6, f"{name}: binary: max |risk - reference_risk| = {errb}"
    assert (resb.as_numpy("decision") == decision).all() and (resb.as_numpy("threshold") == threshold).all()
    assert len(resb.as_numpy("prediction_id")) == len(reader)
    print(f"{name}: {len(reader)} rows, FP64 [N,F] max err {err:.2e}, FP32 per-feature max err {err32:.2e}, "
          f"binary (the client's defaults) max err {errb:.2e}, {int(decision.sum())} positive decisions")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", action="append")
    ap.add_argument("--rows", type=int, default=64)
    a = ap.parse_args()
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{a.port}")
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    print(f"server {meta['name']} {meta['version']}")
    for m in a.model or ["sepsis", "readmission"]:
        check_model(client, m, a.rows)
    print("ok: tritonclient[http] works against vigil serve")


if __name__ == "__main__":
    main()
