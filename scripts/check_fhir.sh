#!/usr/bin/env bash
# FHIR R4 and CDS Hooks conformance on a real server (issue 19), run by .ci/run: starts
# `vigil serve --model models/sepsis` on a free loopback port and runs scripts/fhir/check_fhir.py,
# which validates every RiskAssessment, Provenance and OperationOutcome Vigil writes with
# fhir.resources' R4B models and the CDS Hooks bodies with the spec's logical models as JSON
# Schema, and requires the RiskAssessments to equal `vigil score --events` exactly.
# Tools pinned in scripts/fhir/requirements.txt, in a venv under .build-fhir/ (~20 s the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.build-fhir/venv
REQ=scripts/fhir/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/requirements.txt"
fi
BIN="${VIGIL_BIN:-}"
if [ -z "$BIN" ]; then
  for b in .build/debug/vigil .build/release/vigil; do [ -x "$b" ] && BIN="$b" && break; done
fi
[ -n "$BIN" ] || { echo "check_fhir: no vigil binary (swift build first, or set VIGIL_BIN)" >&2; exit 1; }
LOG=$(mktemp)
"$BIN" serve --model models/sepsis --port 0 >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do grep -q "ready on" "$LOG" && break; sleep 0.1; done
PORT=$(sed -n 's/.*tcp:127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG" | head -1)
[ -n "$PORT" ] || { cat "$LOG" >&2; echo "check_fhir: the server did not start" >&2; exit 1; }
"$VENV/bin/python" scripts/fhir/check_fhir.py --base "http://127.0.0.1:$PORT" --vigil "$BIN"
