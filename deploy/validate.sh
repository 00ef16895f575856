#!/usr/bin/env bash
# Validates deploy/'s Kubernetes, Prometheus Operator and KServe manifests offline, with tools
# pinned from PyPI (deploy/requirements-validate.txt) in a venv under .build-deploy/:
#   - core kinds (StatefulSet, Service, Job, PVC, PDB, ConfigMap, Secret): kubernetes-validate
#     1.37.0's JSON schemas for Kubernetes $K8S_VERSION (default 1.33.0), strict;
#   - ServiceMonitor, PrometheusRule: cloudcoil-models-prometheus-operator 0.80.1.0 (pydantic
#     models generated from the operator's CRDs; unknown keys caught by a round trip);
#   - ClusterServingRuntime, InferenceService: the KServe 0.21.0 SDK's generated models, walked
#     strictly (unknown keys, types, required fields), pod fields by kubernetes 37.0.2's models;
#   - Kustomization: YAML and the files it lists only (no schema);
#   - nine negative controls (broken copies) must be refused;
#   - the flags given to vigil exist (`vigil serve|score --help`, when a vigil binary is built);
#   - deploy/prometheus/vigil-rules.yaml with `promtool check rules` when promtool is installed
#     (Debian's prometheus package; deploy/check-replicas.sh installs it).
# Offline after the first run (the venv is kept); ~5 s then, ~30-60 s for the first install.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.build-deploy/venv
REQ=deploy/requirements-validate.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps kserve==0.21.0
  cp "$REQ" "$VENV/requirements.txt"
fi
BIN="${VIGIL_BIN:-}"
if [ -z "$BIN" ]; then
  for b in .build/debug/vigil .build/release/vigil; do [ -x "$b" ] && BIN="$b" && break; done
fi
"$VENV/bin/python" deploy/validate_manifests.py ${BIN:+"$BIN"}
if command -v promtool >/dev/null 2>&1; then
  promtool check rules deploy/prometheus/vigil-rules.yaml
else
  echo "skip  promtool check rules (promtool not installed: apt-get install prometheus)"
fi
