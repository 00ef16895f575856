#!/usr/bin/env bash
# Load run on this machine only (Unix socket, plus loopback TCP for the OIP endpoint):
# single-patient requests for readmission and sepsis with guardrails on and the audit ledger
# on (fdatasync per group commit), at concurrency 1, 16 and 64. Prints p50/p90/p99 latency and
# requests/s from `vigil load`, and the server's error counters. Bounded: REQUESTS per run.
#
#   scripts/load.sh                 # release build, 20000 requests per run
#   REQUESTS=5000 BATCH_WAIT_US=0 scripts/load.sh
#   EXPLAIN=5 scripts/load.sh       # attribution on (?explain=5) for the native requests
#   IMAGES=1 scripts/load.sh        # also the retinopathy CNN: one base64 PNG natively, and its
#                                   # preprocessed FP32 tensor [1,3,28,28] over OIP
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-20000}
BATCH_WAIT_US=${BATCH_WAIT_US:-200}
MAX_BATCH_ROWS=${MAX_BATCH_ROWS:-64}   # 1 = no micro-batching (to measure its gain)
CONCURRENCY=${CONCURRENCY:-1 16 64}
LEDGER=${LEDGER:-1}
EXPLAIN=${EXPLAIN:-}                  # e.g. EXPLAIN=5: native requests ask for the top-5 attribution
IMAGES=${IMAGES:-0}
BIN=${BIN:-.build/release/vigil}
[ -x "$BIN" ] || nice -n 10 swift build -c release --product vigil
WORK=$(mktemp -d /tmp/vigil-load.XXXXXX)
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

# One patient per model, as the JSON record an EHR integration sends (first test-cohort row).
python3 - "$WORK" <<'PY'
import csv, json, sys
work = sys.argv[1]
for name in ("readmission", "sepsis"):
    manifest = json.load(open(f"models/{name}/manifest.json"))
    feats = [f["name"] for f in manifest["features"]]
    fields = [g["field"] for g in manifest["groups"] if g["source"] == "field"]
    row = next(csv.DictReader(open(f"models/{name}/test_cohort.csv")))
    rec = {manifest.get("id_field", "id"): row[manifest.get("id_field", "id")]}
    for f in feats:
        rec[f] = float(row[f]) if row[f] != "" else None
    for f in fields:
        rec[f] = row[f]
    json.dump(rec, open(f"{work}/{name}.json", "w"))
    x = [[rec[f] if rec[f] is not None else float("nan") for f in feats]]
    oip = {"inputs": [{"name": "features", "shape": [1, len(feats)], "datatype": "FP64", "data": x}]}
    for f in fields:
        oip["inputs"].append({"name": f, "shape": [1], "datatype": "BYTES", "data": [rec[f]]})
    open(f"{work}/{name}.oip.json", "w").write(json.dumps(oip).replace("NaN", "null"))
# One fundus image: the file as base64 (native), and the same file through vigil's own
# preprocessing as an FP32 tensor (OIP) is written below by `vigil score --explain all`.
import base64
png = open("models/retinopathy/test_images/1.png", "rb").read()
json.dump({"id": "1.png", "site": "A", "image": base64.b64encode(png).decode()}, open(f"{work}/retinopathy.json", "w"))
PY
if [ "$IMAGES" = 1 ]; then
  # The preprocessed tensor: integrated-gradient records carry the input values in order.
  mkdir -p "$WORK/one" && cp models/retinopathy/test_images/1.png "$WORK/one/"
  "$BIN" score --model models/retinopathy --input "$WORK/one" --explain all --output "$WORK/one.jsonl" --quiet
  python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
rec = json.loads(open(f"{work}/one.jsonl").readline())
values = [c["value"] for c in rec["attribution"]["contributions"]] if isinstance(rec["attribution"].get("contributions"), list) else None
if values is None:
    raise SystemExit("no input values in the attribution record")
oip = {"inputs": [{"name": "input", "shape": [1, 3, 28, 28], "datatype": "FP32", "data": values},
                  {"name": "site", "shape": [1], "datatype": "BYTES", "data": ["A"]}]}
json.dump(oip, open(f"{work}/retinopathy.oip.json", "w"))
PY
fi

LEDGER_ARGS=()
if [ "$LEDGER" = 1 ]; then LEDGER_ARGS=(--ledger "$WORK/ledger.jsonl"); fi
MODELS=(--model models/readmission --model models/sepsis)
if [ "$IMAGES" = 1 ]; then MODELS+=(--model models/retinopathy); fi
"$BIN" serve "${MODELS[@]}" --socket "$WORK/vigil.sock" --port 0 \
    --batch-wait-us "$BATCH_WAIT_US" --max-batch-rows "$MAX_BATCH_ROWS" "${LEDGER_ARGS[@]}" > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVER=$!
for _ in $(seq 1 100); do grep -q "ready on" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
cat "$WORK/serve.out"
PORT=$(grep -o 'tcp:127.0.0.1:[0-9]*' "$WORK/serve.out" | cut -d: -f3)
QUERY=""
if [ -n "$EXPLAIN" ]; then QUERY="?explain=$EXPLAIN"; fi
echo "explain=${EXPLAIN:-off} ledger=$LEDGER batch_wait_us=$BATCH_WAIT_US max_batch_rows=$MAX_BATCH_ROWS requests_per_run=$REQUESTS $(nproc) cores"
LOADED="readmission sepsis"
if [ "$IMAGES" = 1 ]; then LOADED="$LOADED retinopathy"; fi
for model in $LOADED; do
  for c in $CONCURRENCY; do
    "$BIN" load --socket "$WORK/vigil.sock" --path "/v1/models/$model/score$QUERY" --body "$WORK/$model.json" \
        --concurrency "$c" --requests "$REQUESTS"
  done
  "$BIN" load --port "$PORT" --path "/v2/models/$model/infer" --body "$WORK/$model.oip.json" --concurrency 1 --requests "$REQUESTS"
done
echo "--- server counters"
python3 - "$WORK/vigil.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d: break
    data += d
for line in data.decode().split("\n"):
    if line.startswith(("vigil_request_errors_total", "vigil_rejected_total", "vigil_batch_rows_sum", "vigil_batch_rows_count")):
        print(line)
PY
if [ "$LEDGER" = 1 ]; then "$BIN" ledger verify --ledger "$WORK/ledger.jsonl"; fi
