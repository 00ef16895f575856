#!/usr/bin/env bash
# The README's change-control example end to end (retrain -> validate and compare in a
# change-control folder -> sign -> shadow on live traffic -> compare from the ledger ->
# promote), on copies in $WORK; the repository's packages are not touched. Run by hand from
# the repository root after `swift build` (or with vigil on PATH); it needs the training data
# (../shared/data or VIGIL_DATA_DIR) and `pip install numpy pandas scipy scikit-learn xgboost
# onnxruntime onnx` at the versions of models/training/requirements.txt.
set -euo pipefail
ROOT=$(pwd)
WORK=${WORK:-/tmp/vigil-lifecycle}
ROWS=${ROWS:-4000}
export PATH="$ROOT/.build/debug:$PATH"
PLAN="$ROOT/models/plans/readmission-quarterly.json"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"

echo "== 1. retrain: readmission 1.1.0 (XGBoost) and the full held-out test split"
python3 "$ROOT/models/training/train_readmission_xgb.py" --name readmission --version 1.1.0 --out "$WORK/cand" > train.log
python3 "$ROOT/models/training/write_test_split.py" readmission "$WORK/test.csv"
cp -r "$ROOT/models/readmission" prod

echo "== 2-3. validate and compare, filed as one change-control folder"
vigil change-control --baseline prod --candidate cand --input test.csv --label label --plan "$PLAN" --out cc || echo "change-control exit $?"
(cd cc && sha256sum -c --quiet SHA256SUMS && echo "SHA256SUMS: every file checks")

echo "== 4. sign (production was signed at its own approval)"
vigil ledger keygen --out keys
mkdir trusted && cp keys/ledger-signing.pub trusted/qa.pub
vigil sign --package prod --key keys/ledger-signing.key --signer "Quinn A" --role "quality assurance" --meaning "approved for production"
vigil sign --package cand --key keys/ledger-signing.key --signer "Quinn A" --role "quality assurance" \
    --meaning "approved for production" --change-control cc
vigil verify-signature --package cand --trusted-keys trusted --change-control cc

echo "== 5. shadow on live traffic ($ROWS requests with outcomes), then compare from the ledger"
head -c 32 /dev/urandom | base64 > admin.token && chmod 600 admin.token
vigil serve --model prod --shadow cand --socket vigil.sock --ledger ledger.jsonl \
    --trusted-keys trusted --require-signed --admin-token-file admin.token > serve.log 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S vigil.sock ] && break; sleep 0.1; done
python3 "$ROOT/scripts/send_cohort.py" vigil.sock test.csv "$ROWS"
sleep 2
curl -s --unix-socket vigil.sock http://vigil/v1/models/readmission/monitor | python3 -c "
import json, sys
m = json.load(sys.stdin)
for name, r in (('production', m), ('shadow', m['shadow'])):
    o = r['overall']
    print(f\"{name} {r['model']['version']}: {o['predictions']} predictions, TPR {o['rates']['tpr']['value']:.3f}, FPR {o['rates']['fpr']['value']:.3f}\")"
vigil compare --baseline prod --candidate cand --ledger ledger.jsonl --plan "$PLAN" --json shadow.json --html shadow.html || echo "compare exit $?"

echo "== 6. promote the shadow without restart"
curl -s --unix-socket vigil.sock -H "Authorization: Bearer $(cat admin.token)" \
    -d '{"shadow": true, "actor": "Quinn A, QA"}' http://vigil/v1/admin/models/readmission/promote; echo
kill -TERM $pid; wait $pid || true
trap - EXIT
vigil ledger verify --ledger ledger.jsonl | head -1
echo "ledger: $(grep -c '"role":"shadow"' ledger.jsonl) shadow entries, $(grep -c '"kind":"deployment"' ledger.jsonl) deployment"
