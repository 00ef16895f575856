#!/usr/bin/env bash
# promtool on a real run (issue 17): a `vigil serve` on a temporary Unix socket scores 1,000
# readmission rows with their outcomes (scripts/send_cohort.py), its /metrics is scraped and
# linted (`promtool check metrics`), the rules are checked (`promtool check rules`) and tested
# on the scraped series (`promtool test rules`, the test written by make_rule_test.py), and the
# Grafana dashboard's queries are checked to name only series and rules that exist. .ci/run
# calls it; it installs Debian's prometheus package (promtool) when missing. Loopback only,
# under a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/prometheus/tools.sh
echo "$(promtool --version 2>&1 | head -1)"
promtool check rules deploy/prometheus/vigil-rules.yaml

WORK="$(mktemp -d /tmp/vigil-promtool.XXXXXX)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN" serve --model models/readmission --socket "$WORK/vigil.sock" --ledger "$WORK/ledger.jsonl" > "$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 200); do [ -S "$WORK/vigil.sock" ] && break; sleep 0.05; done
[ -S "$WORK/vigil.sock" ] || { cat "$WORK/serve.log"; echo "FAIL: vigil serve did not start"; exit 1; }
python3 scripts/send_cohort.py "$WORK/vigil.sock" models/readmission/test_cohort.csv 1000
curl -sf --unix-socket "$WORK/vigil.sock" http://vigil/metrics > "$WORK/metrics.txt"
echo "scraped $(grep -vc '^#' "$WORK/metrics.txt") samples"
promtool check metrics < "$WORK/metrics.txt"
echo "promtool check metrics: ok"
cp deploy/prometheus/vigil-rules.yaml "$WORK/vigil-rules.yaml"
python3 deploy/prometheus/make_rule_test.py "$WORK/metrics.txt" > "$WORK/vigil-rules.test.yaml"
promtool test rules "$WORK/vigil-rules.test.yaml"
[ -f deploy/grafana/check_dashboard.py ] && python3 deploy/grafana/check_dashboard.py deploy/grafana/vigil.json deploy/prometheus/vigil-rules.yaml "$WORK/metrics.txt"
