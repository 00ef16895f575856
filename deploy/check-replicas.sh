#!/usr/bin/env bash
# Three `vigil serve` replicas on loopback under load, scraped by a real Prometheus (Debian's
# package, 2.42) with deploy/prometheus/vigil-rules.yaml: the recording rules' sums over the
# replicas must equal the totals of the three ledgers, series by series (predictions by model,
# group and decision), and in all. Loopback only, bounded: ~3,000 requests in all, every wait
# capped, the whole run under 2 minutes; every process it starts is stopped by its PID.
#
#   deploy/check-replicas.sh                 # VIGIL_BIN=... to choose the binary
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/prometheus/tools.sh
echo "vigil: $BIN ($("$BIN" --version)); $(prometheus --version 2>&1 | head -1)"
promtool check rules deploy/prometheus/vigil-rules.yaml

WORK="$(mktemp -d /tmp/vigil-replicas.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Request bodies: arrays of 8 sepsis and 6 readmission test-cohort rows (several groups each).
python3 - "$WORK" <<'PY'
import csv, json, sys
work = sys.argv[1]
for name, n in (("sepsis", 8), ("readmission", 6)):
    manifest = json.load(open(f"models/{name}/manifest.json"))
    feats = [f["name"] for f in manifest["features"]]
    fields = [g["field"] for g in manifest["groups"] if g["source"] == "field"]
    idf = manifest.get("id_field", "id")
    rows = []
    for k, row in enumerate(csv.DictReader(open(f"models/{name}/test_cohort.csv"))):
        if k % 37: continue  # spread over the cohort
        rec = {idf: row[idf]}
        rec.update({f: float(row[f]) if row[f] != "" else None for f in feats})
        rec.update({f: row[f] for f in fields})
        rows.append(rec)
        if len(rows) == n: break
    json.dump(rows, open(f"{work}/{name}.json", "w"))
PY

PORTS=()
for i in 0 1 2; do
  "$BIN" serve --model models/sepsis --model models/readmission --port 0 --ledger "$WORK/ledger-$i.jsonl" \
      --replica-id "vigil-$i" > "$WORK/serve-$i.out" 2> "$WORK/serve-$i.err" &
  PIDS+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 1 300); do grep -q "ready on" "$WORK/serve-$i.out" 2>/dev/null && break; sleep 0.1; done
  PORTS+=("$(grep -o 'tcp:127.0.0.1:[0-9]*' "$WORK/serve-$i.out" | cut -d: -f3)")
  [ -n "${PORTS[$i]}" ] || { cat "$WORK/serve-$i.err"; echo "replica $i did not start"; exit 1; }
done
echo "replicas vigil-0/1/2 on 127.0.0.1:${PORTS[*]}"

PPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cp deploy/prometheus/vigil-rules.yaml "$WORK/vigil-rules.yaml"
# Scrape and evaluate every second (the rules file's own 15s interval is for production).
sed -i 's/^    interval: 15s$/    interval: 1s/' "$WORK/vigil-rules.yaml"
cat > "$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$WORK/vigil-rules.yaml"]
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ["127.0.0.1:${PORTS[0]}", "127.0.0.1:${PORTS[1]}", "127.0.0.1:${PORTS[2]}"]
YML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null || { tail "$WORK/prometheus.log"; echo "prometheus did not start"; exit 1; }
echo "prometheus on 127.0.0.1:$PPORT"

# Load: uneven across replicas and models, concurrently (as behind a Service).
declare -a LOADS=("0 sepsis 600" "1 sepsis 900" "2 sepsis 300" "0 readmission 400" "2 readmission 700")
LOAD_PIDS=()
for l in "${LOADS[@]}"; do
  read -r i model n <<< "$l"
  timeout 60 "$BIN" load --port "${PORTS[$i]}" --path "/v1/models/$model/score" --body "$WORK/$model.json" \
      --concurrency 4 --requests "$n" --warmup 5 > "$WORK/load-$i-$model.out" 2>&1 &
  LOAD_PIDS+=($!)
done
for p in "${LOAD_PIDS[@]}"; do wait "$p"; done
for l in "${LOADS[@]}"; do read -r i model n <<< "$l"; echo "load vigil-$i $model: $(grep -m1 -i "req/s\|requests/s" "$WORK/load-$i-$model.out" || tail -1 "$WORK/load-$i-$model.out")"; done

for i in 0 1 2; do echo "vigil-$i: resident memory $(( $(ps -o rss= -p "${PIDS[$i]}") / 1024 )) MiB after the load"; done
"$BIN" ledger verify "$WORK/ledger-0.jsonl" "$WORK/ledger-1.jsonl" "$WORK/ledger-2.jsonl"

# Compare: the recording rule's series against the ledgers' prediction entries, counted by
# (model, group label as the metrics write it, decision). Waits (at most 30 s) for a scrape and
# a rule evaluation after the load ended.
python3 - "$WORK" "$PPORT" <<'PY'
import json, sys, time, urllib.parse, urllib.request
work, port = sys.argv[1], sys.argv[2]
names = {m: [g["name"] for g in json.load(open(f"models/{m}/manifest.json"))["groups"]] for m in ("sepsis", "readmission")}
ledger = {}
for i in range(3):
    for line in open(f"{work}/ledger-{i}.jsonl"):
        e = json.loads(line)
        if e["kind"] != "prediction":
            continue
        assert e["replica"] == f"vigil-{i}", e["replica"]
        group = ",".join(f"{n}={l}" for n, l in zip(names[e["model"]], e["group"]))
        d = {True: "positive", False: "negative", None: "none"}[e.get("decision")]
        key = (e["model"], group, d)
        ledger[key] = ledger.get(key, 0) + 1
def query(q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    return json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
total = sum(ledger.values())
deadline = time.time() + 30
while True:
    # One label per group field (docs/SERVER.md, Monitoring): the ledger's joint label rebuilt.
    series = {(r["metric"]["model"], ",".join(f"{n}={r['metric'].get(n, '')}" for n in names[r["metric"]["model"]]), r["metric"]["decision"]): int(float(r["value"][1]))
              for r in query("vigil:predictions_total:sum")}
    if series == ledger or time.time() > deadline:
        break
    time.sleep(0.5)
replicas = query("vigil:replicas:count")
per_replica = {r["metric"]["instance"]: int(float(r["value"][1])) for r in query("sum by (instance) (vigil_predictions_total)")}
print(f"ledgers: {total} predictions in {len(ledger)} (model, group, decision) series")
print(f"prometheus: {sum(series.values())} in {len(series)} series from vigil:predictions_total:sum; "
      f"replicas counted: {replicas[0]['value'][1] if replicas else 0}; per replica: {sorted(per_replica.values())}")
for key in sorted(set(ledger) | set(series)):
    mark = "ok" if ledger.get(key) == series.get(key) else "DIFFERS"
    print(f"  {mark:7} {key[0]:12} {key[2]:8} {ledger.get(key, 0):6} {series.get(key, 0):6}  {key[1]}")
if series != ledger:
    print("FAIL: the summed series differ from the ledgers"); sys.exit(1)
print("ok: the recording rules' sums over the 3 replicas equal the 3 ledgers' totals, series by series")
PY
