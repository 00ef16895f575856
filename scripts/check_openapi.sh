#!/usr/bin/env bash
# Checks docs/openapi.json, the HTTP contract of `vigil serve`, with tools pinned from PyPI
# (scripts/openapi/requirements.txt) in a venv under .build-openapi/:
#   - openapi-spec-validator: the document is valid OpenAPI 3.1 (must pass), and broken copies
#     of it are refused (negative controls: the validator is not passing everything);
#   - when a vigil binary exists ($VIGIL_BIN, else .build/debug/vigil, else .build/release/vigil):
#     starts `vigil serve` on loopback (any free port, models/readmission and models/sepsis, a
#     ledger, a client token and an admin token in a temporary folder), checks that
#     GET /openapi.json answers docs/openapi.json byte for byte (skipped while it is 404), sends
#     known requests (scores, histories, outcomes for their prediction ids, JSON and binary
#     inference, FHIR $score, CDS Hooks calls and feedback, promotion refusals, inference
#     requests that break one rule, ...) whose answers must have the expected status and match
#     the document, then runs schemathesis against it with the document: bounded (examples per
#     operation, a total time), loopback only, checking that every answer is no 5xx, has a
#     documented status, content type and headers, and matches its schema, that requests the
#     document calls invalid are refused, that undocumented methods get 405, and that
#     authentication is not ignored.
# Environment:
#   VIGIL_BIN                      the vigil binary (default: the debug build, then release)
#   OPENAPI_EXCLUDE_PATH_REGEX     operations whose path template matches are left out (of the
#                                  known requests and of schemathesis; default: none), e.g.
#                                  '^/(fhir|cds-services)' for a binary without those routes
#   OPENAPI_SCHEMATHESIS           0: stop after the known requests (what .ci/run runs, ~20 s)
#   OPENAPI_MAX_EXAMPLES           test cases per operation (default 20)
#   OPENAPI_MAX_TIME               seconds for the whole schemathesis run (default 240)
#   OPENAPI_CHECKS                 schemathesis checks (default below)
#   OPENAPI_SEED                   schemathesis seed (default 1, for reproducible runs)
#   OPENAPI_REPORT_DIR             schemathesis' log and JUnit report (default .build-openapi/report)
# Exit status: 0 when every step passed (a skipped step says so), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.build-openapi/venv
REQ=scripts/openapi/requirements.txt
SPEC=docs/openapi.json
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/requirements.txt"
fi

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

FAILED=()
SUMMARY=()
pass() { SUMMARY+=("pass  $1"); echo "pass  $1"; }
fail() { SUMMARY+=("FAIL  $1"); FAILED+=("$1"); echo "FAIL  $1"; }
skip() { SUMMARY+=("skip  $1"); echo "skip  $1"; }
finish() {
  echo
  echo "== check_openapi summary"
  printf '%s\n' "${SUMMARY[@]}"
  if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "${#FAILED[@]} failed"
    exit 1
  fi
  echo "all passed"
  exit 0
}

# ---- (a) the document is valid OpenAPI 3.1; broken copies are refused
if "$VENV/bin/openapi-spec-validator" "$SPEC" >"$TMP/validate.out" 2>&1; then
  pass "openapi-spec-validator $SPEC"
else
  cat "$TMP/validate.out"
  fail "openapi-spec-validator $SPEC"
fi
# Each negative control breaks one rule of OpenAPI 3.1 in a copy.
"$VENV/bin/python" - "$SPEC" "$TMP" <<'EOF'
import copy, json, sys
spec, out = json.load(open(sys.argv[1])), sys.argv[2]
def broken(name, edit):
    d = copy.deepcopy(spec)
    edit(d)
    json.dump(d, open(f"{out}/broken-{name}.json", "w"))
broken("no-info", lambda d: d.pop("info"))
broken("bad-openapi-version", lambda d: d.update(openapi="3.1.x"))
broken("dangling-ref", lambda d: d["paths"]["/v2"]["get"]["responses"]["200"]["content"]["application/json"].update(schema={"$ref": "#/components/schemas/NoSuchSchema"}))
broken("response-without-description", lambda d: d["paths"]["/v1/models"]["get"]["responses"]["200"].pop("description"))
broken("path-parameter-not-required", lambda d: d["paths"]["/v2/models/{name}"]["parameters"][0].update(required=False))
broken("bad-parameter-location", lambda d: d["paths"]["/v1/models/{name}/score"]["post"]["parameters"][0].update({"in": "body"}))
EOF
for b in "$TMP"/broken-*.json; do
  name=$(basename "$b" .json)
  if "$VENV/bin/openapi-spec-validator" "$b" >/dev/null 2>&1; then
    fail "negative control $name: openapi-spec-validator accepted a broken copy"
  else
    pass "negative control $name refused"
  fi
done

# ---- (b) against a running server
BIN="${VIGIL_BIN:-}"
if [ -z "$BIN" ]; then
  for b in .build/debug/vigil .build/release/vigil; do [ -x "$b" ] && BIN="$b" && break; done
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  skip "server checks: no vigil binary (set VIGIL_BIN, or build .build/debug/vigil)"
  finish
fi

"$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))' >"$TMP/token"
"$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))' >"$TMP/admin-token"
chmod 600 "$TMP/token" "$TMP/admin-token"
TOKEN=$(cat "$TMP/token")
ADMIN_TOKEN=$(cat "$TMP/admin-token")
"$BIN" serve --model models/readmission --model models/sepsis --host 127.0.0.1 --port 0 \
  --ledger "$TMP/ledger.jsonl" --replica-id openapi-check \
  --auth-token-file "$TMP/token" --admin-token-file "$TMP/admin-token" \
  >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVER_PID=$!
PORT=
for _ in $(seq 600); do
  if grep -q '^vigil serve: ready on ' "$TMP/serve.out" 2>/dev/null; then
    PORT=$(sed -n 's/^vigil serve: ready on .*tcp:127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/serve.out" | head -1)
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$PORT" ]; then
  cat "$TMP/serve.out" "$TMP/serve.err"
  fail "vigil serve did not print its ready line with a tcp:127.0.0.1:PORT address"
  finish
fi
BASE="http://127.0.0.1:$PORT"
pass "vigil serve ($BIN) ready on $BASE"

# GET /openapi.json is docs/openapi.json byte for byte (while the route is being added: skip on 404;
# unless it answered 200, the operation is left out of the schemathesis run).
EXCLUDE="${OPENAPI_EXCLUDE_PATH_REGEX:-}"
status=$(curl -sS -o "$TMP/served-openapi.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/openapi.json") || status=000
case "$status" in
  200)
    if cmp -s "$SPEC" "$TMP/served-openapi.json"; then
      pass "GET /openapi.json equals $SPEC byte for byte"
    else
      cmp "$SPEC" "$TMP/served-openapi.json" || true
      fail "GET /openapi.json differs from $SPEC"
    fi ;;
  404)
    skip "GET /openapi.json answers 404 (the route is not in this binary yet; left out of schemathesis)"
    EXCLUDE="${EXCLUDE:+$EXCLUDE|}^/openapi\\.json\$" ;;
  *)
    fail "GET /openapi.json answered $status, not 200 (or 404 while the route is not built; left out of schemathesis)"
    EXCLUDE="${EXCLUDE:+$EXCLUDE|}^/openapi\\.json\$" ;;
esac

# Known requests (a fuzzer seldom builds a valid record, reuses a prediction id, or breaks one
# rule of an otherwise valid request): each must get the expected status, and its answer must
# match the document (status, content type, required headers, schema).
if VIGIL_BASE="$BASE" VIGIL_TOKEN="$TOKEN" VIGIL_ADMIN_TOKEN="$ADMIN_TOKEN" \
     "$VENV/bin/python" - "$SPEC" <<'EOF'
import csv, json, os, re, struct, sys
import jsonschema, referencing, requests
from referencing.jsonschema import DRAFT202012
doc = json.load(open(sys.argv[1]))
base, token, admin = os.environ["VIGIL_BASE"], os.environ["VIGIL_TOKEN"], os.environ["VIGIL_ADMIN_TOKEN"]
exclude = os.environ.get("OPENAPI_EXCLUDE_PATH_REGEX", "")
registry = referencing.Registry().with_resource("urn:doc", referencing.Resource.from_contents(doc, default_specification=DRAFT202012))
session = requests.Session()
session.trust_env = False  # loopback only: no proxy from the environment
failures = 0

def deref(x):
    while "$ref" in x:
        node = doc
        for k in x["$ref"].lstrip("#/").split("/"): node = node[k]
        x = node
    return x

def validate(schema, value):
    # Every "#/..." reference is to the document (also those inside an inline schema).
    schema = json.loads(json.dumps(schema).replace('"$ref": "#/', '"$ref": "urn:doc#/'))
    v = jsonschema.Draft202012Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())
    return [f"at /{'/'.join(map(str, e.absolute_path))}: {e.message[:160]}" for e in list(v.iter_errors(value))[:3]]

def call(expect, method, path, template, body=None, raw=None, headers=None, auth=token):
    global failures
    if exclude and re.search(exclude, template):
        print(f"skip  {method} {path} (OPENAPI_EXCLUDE_PATH_REGEX)")
        return None
    h = {"Authorization": f"Bearer {auth}"} if auth else {}
    h.update(headers or {})
    r = session.request(method, base + path, json=body if raw is None else None, data=raw, headers=h, timeout=30)
    problems = []
    if r.status_code != expect:
        problems.append(f"status {r.status_code}, expected {expect}")
    resp = doc["paths"][template][method.lower()]["responses"].get(str(r.status_code))
    if resp is None:
        problems.append(f"status {r.status_code} is not documented")
    else:
        resp = deref(resp)
        media = r.headers.get("Content-Type", "").split(";")[0].strip()
        content = {k.split(";")[0].strip(): v for k, v in resp.get("content", {}).items()}
        if media not in content:
            problems.append(f"Content-Type {r.headers.get('Content-Type')!r} is not documented")
        elif media.endswith("json"):
            try:
                problems += ["body " + p for p in validate(content[media]["schema"], r.json())]
            except ValueError as e:
                problems.append(f"body is not JSON ({e})")
        elif media == "application/octet-stream":
            n = int(r.headers.get("Inference-Header-Content-Length", "-1"))
            if not 0 <= n <= len(r.content):
                problems.append("no usable Inference-Header-Content-Length")
            else:
                problems += ["JSON part " + p for p in validate({"$ref": "#/components/schemas/InferenceResponse"}, json.loads(r.content[:n]))]
        for name, header in resp.get("headers", {}).items():
            if deref(header).get("required") and name not in r.headers:
                problems.append(f"header {name} missing")
    if problems:
        failures += 1
        print(f"FAIL  {method} {path}: " + "; ".join(problems) + f" (answer: {r.text[:160].strip()!r})")
    else:
        print(f"pass  {method} {path} -> {r.status_code}")
    return r

def records(model, drop, text):
    out = []
    for row in csv.DictReader(open(f"models/{model}/test_cohort.csv")):
        out.append({k: v if k in text else (float(v) if v != "" else None) for k, v in row.items() if k not in drop})
        if len(out) == 20: break
    return out
readmission = records("readmission", {"label", "reference_risk"}, {"encounter_id", "race", "gender"})
sepsis = records("sepsis", {"label", "reference_risk", "patient_id"}, {"row_id"})
call(200, "GET", "/v2/health/live", "/v2/health/live", auth=None)
call(200, "GET", "/v2/health/ready", "/v2/health/ready", auth=None)
call(200, "GET", "/v2", "/v2")
call(401, "GET", "/v2", "/v2", auth=None)
call(401, "GET", "/v1/models", "/v1/models", auth="not-the-token")
for m in ("readmission", "sepsis"):
    call(200, "GET", f"/v2/models/{m}", "/v2/models/{name}")
    call(200, "GET", f"/v2/models/{m}/ready", "/v2/models/{name}/ready")
call(404, "GET", "/v2/models/no-such-model", "/v2/models/{name}")
call(200, "GET", "/v1/models", "/v1/models")
one = call(200, "POST", "/v1/models/readmission/score", "/v1/models/{name}/score", body=readmission[0])
call(200, "POST", "/v1/models/readmission/score?explain=3", "/v1/models/{name}/score", body=readmission[1:10])
batch = call(200, "POST", "/v1/models/sepsis/score?explain=all", "/v1/models/{name}/score", body=sepsis)
call(400, "POST", "/v1/models/readmission/score", "/v1/models/{name}/score", body=dict(readmission[0], unknown_key=1))
history = {"history": {"entity": "p1", "start": 0, "at": 3, "static": {"Age": 61, "Gender": 1, "HospAdmTime": -3.5},
                       "observations": [{"input": "HR", "time": 3, "value": 88, "unit": "/min"}]}}
call(200, "POST", "/v1/models/sepsis/score", "/v1/models/{name}/score", body=history)
call(400, "POST", "/v1/models/sepsis/score", "/v1/models/{name}/score", body={"history": dict(history["history"], unknown_key=1)})
call(400, "POST", "/v1/models/readmission/score?explain=0", "/v1/models/{name}/score", body=readmission[0])
pid = one.json().get("prediction_id", "") if one is not None and one.ok else ""
call(200, "POST", "/v1/models/readmission/outcomes", "/v1/models/{name}/outcomes", body={"prediction_id": pid, "label": 1})
call(409, "POST", "/v1/models/readmission/outcomes", "/v1/models/{name}/outcomes", body={"prediction_id": pid, "label": 0})
if batch is not None and batch.ok:
    call(200, "POST", "/v1/models/sepsis/outcomes", "/v1/models/{name}/outcomes",
         body=[{"prediction_id": r["prediction_id"], "label": i % 2 == 0} for i, r in enumerate(batch.json())])
call(404, "POST", "/v1/models/sepsis/outcomes", "/v1/models/{name}/outcomes", body={"prediction_id": "no-such-prediction", "label": 1})
for m in ("readmission", "sepsis"):
    call(200, "GET", f"/v1/models/{m}/monitor", "/v1/models/{name}/monitor")
example = doc["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]["examples"]["readmission"]["value"]
call(200, "POST", "/v2/models/readmission/infer", "/v2/models/{name}/infer", body=example)
call(200, "POST", "/v2/models/readmission/infer", "/v2/models/{name}/infer", body=dict(example, parameters={"attribution": True}))
call(400, "POST", "/v2/models/readmission/infer", "/v2/models/{name}/infer", body=dict(example, unknown_key=1))
features = example["inputs"][0]["data"]
header = json.dumps({"inputs": [{"name": "x", "shape": [1, len(features)], "datatype": "FP64", "parameters": {"binary_data_size": 8 * len(features)}}],
                     "parameters": {"binary_data_output": True}}).encode()
call(200, "POST", "/v2/models/readmission/infer", "/v2/models/{name}/infer", raw=header + struct.pack(f"<{len(features)}d", *features),
     headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))})
# Requests the document calls invalid (each breaks one rule of InferenceRequest): must be refused.
first, rest = example["inputs"][0], example["inputs"][1:]
for what, body in [
    ("id not a string", dict(example, id=5)),
    ("outputs not an array", dict(example, outputs="risk")),
    ("outputs[0].parameters not an object", dict(example, outputs=[{"name": "risk", "parameters": 3}])),
    ("inputs[0].parameters not an object", dict(example, inputs=[dict(first, parameters=5)] + rest)),
    ("id tensor datatype FP16", dict(example, inputs=[first] + rest[:-1] + [dict(rest[-1], datatype="FP16")])),
]:
    print(f"      invalid request: {what}")
    call(400, "POST", "/v2/models/readmission/infer", "/v2/models/{name}/infer", body=body)
# FHIR R4 and CDS Hooks: a sepsis stay (Patient, ICU Encounter, one heart rate).
patient = {"resourceType": "Patient", "id": "pt1", "gender": "male", "birthDate": "1960-01-01"}
encounter = {"resourceType": "Encounter", "id": "enc1", "status": "in-progress",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ACUTE"},
             "period": {"start": "2026-12-01T00:00:00Z"},
             "extension": [{"url": "http://vigil.dev/fhir/StructureDefinition/hospital-admission-offset", "valueDecimal": -3.5}]}
observation = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
               "subject": {"reference": "Patient/pt1"}, "effectiveDateTime": "2026-12-01T03:00:00Z",
               "valueQuantity": {"value": 95, "system": "http://unitsofmeasure.org", "code": "/min"}}
bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:0b9e7d36-0000-4000-8000-000000000001", "resource": patient},
                                                                  {"resource": encounter}, {"resource": observation}]}
fhir = {"Content-Type": "application/fhir+json"}
call(200, "POST", "/fhir/sepsis/$score", "/fhir/{name}/$score", body=bundle, headers=fhir)
call(200, "POST", "/fhir/sepsis/$score?provenance=true", "/fhir/{name}/$score", body=bundle, headers=fhir)
call(400, "POST", "/fhir/sepsis/$score", "/fhir/{name}/$score", body=patient, headers=fhir)
call(404, "POST", "/fhir/no-such-model/$score", "/fhir/{name}/$score", body=bundle, headers=fhir)
call(422, "POST", "/fhir/sepsis/$score", "/fhir/{name}/$score", body=dict(bundle, entry=bundle["entry"][1:]), headers=fhir)
call(200, "GET", "/cds-services", "/cds-services")
hook = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": {"userId": "Practitioner/1", "patientId": "pt1", "encounterId": "enc1"},
        "prefetch": {"patient": patient, "encounter": encounter, "observations": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": observation}]}}}
cards = call(200, "POST", "/cds-services/sepsis", "/cds-services/{id}", body=hook)
call(412, "POST", "/cds-services/sepsis", "/cds-services/{id}", body={k: v for k, v in hook.items() if k != "prefetch"})
# Without the Encounter the risk is not computed: the answer is still a card (info), with a uuid.
call(200, "POST", "/cds-services/sepsis", "/cds-services/{id}", body=dict(hook, prefetch={k: v for k, v in hook["prefetch"].items() if k != "encounter"}))
call(404, "POST", "/cds-services/no-such-service", "/cds-services/{id}", body=hook)
card = (cards.json().get("cards") or [{}])[0].get("uuid", "") if cards is not None and cards.ok else ""
call(200, "POST", "/cds-services/sepsis/feedback", "/cds-services/{id}/feedback",
     body={"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-12-04T10:15:00Z",
                         "overrideReason": {"reason": {"system": "urn:vigil:override-reason", "code": "clinical-assessment"}, "userComment": "check"}}]})
call(404, "POST", "/cds-services/sepsis/feedback", "/cds-services/{id}/feedback",
     body={"feedback": [{"card": "00000000-0000-8000-8000-000000000000", "outcome": "accepted", "outcomeTimestamp": "2026-12-04T10:15:00Z"}]})
call(200, "GET", "/v1/models/sepsis/card", "/v1/models/{name}/card")
call(200, "GET", "/v1/ledger/head", "/v1/ledger/head")
call(200, "GET", "/metrics", "/metrics")
call(401, "POST", "/v1/admin/models/sepsis/promote", "/v1/admin/models/{name}/promote", body={"shadow": True, "actor": "check"})
call(409, "POST", "/v1/admin/models/sepsis/promote", "/v1/admin/models/{name}/promote", body={"shadow": True, "actor": "check"}, auth=admin)
call(422, "POST", "/v1/admin/models/sepsis/promote", "/v1/admin/models/{name}/promote", body={"package": "models/readmission", "actor": "check"}, auth=admin)
r = session.delete(base + "/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30)
if r.status_code == 405 and "GET" in r.headers.get("Allow", ""):
    print("pass  DELETE /v2 -> 405 with Allow")
else:
    failures += 1
    print(f"FAIL  DELETE /v2 -> {r.status_code}, Allow {r.headers.get('Allow')!r}")
sys.exit(1 if failures else 0)
EOF
then
  pass "known requests answer as documented"
else
  fail "known requests (FAIL lines above)"
fi

if [ "${OPENAPI_SCHEMATHESIS:-1}" = "0" ]; then
  skip "schemathesis (OPENAPI_SCHEMATHESIS=0: the quick check .ci/run makes; run without it for the fuzzer)"
  finish
fi
# schemathesis, with the tokens per security scheme (bearerAuth: client token, adminBearer: admin).
cat >"$TMP/schemathesis.toml" <<EOF
[auth.openapi.bearerAuth]
bearer = "$TOKEN"

[auth.openapi.adminBearer]
bearer = "$ADMIN_TOKEN"

# The document answers some invalid requests 413 (more than 10,000 rows or tensor elements) and
# a CDS call without prefetch 412.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "409", "412", "413", "415", "422"]
EOF
chmod 600 "$TMP/schemathesis.toml"
REPORT_DIR="${OPENAPI_REPORT_DIR:-.build-openapi/report}"
CHECKS="${OPENAPI_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,ignored_auth}"
ST_ARGS=(run "$SPEC" --url "$BASE/" --checks "$CHECKS"
  --max-examples "${OPENAPI_MAX_EXAMPLES:-20}" --max-time "${OPENAPI_MAX_TIME:-240}"
  --phases examples,coverage,fuzzing --workers 1 --request-timeout 20 --max-redirects 0
  --seed "${OPENAPI_SEED:-1}" --generation-database none --suppress-health-check all
  --continue-on-failure --no-color --report junit --report-dir "$REPORT_DIR")
if [ -n "$EXCLUDE" ]; then
  ST_ARGS+=(--exclude-path-regex "$EXCLUDE")
  echo "note  schemathesis leaves out paths matching $EXCLUDE"
fi
LOG="$REPORT_DIR/schemathesis.log"
mkdir -p "$REPORT_DIR"
echo "run   schemathesis (at most ${OPENAPI_MAX_TIME:-240} s; full output in $LOG)"
# No proxy may take loopback requests elsewhere.
if env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy NO_PROXY='*' \
     "$VENV/bin/schemathesis" --config-file "$TMP/schemathesis.toml" "${ST_ARGS[@]}" >"$LOG" 2>&1; then
  grep -E '^  [0-9]+ generated' "$LOG" || true
  pass "schemathesis against $BASE"
else
  # The failures, one line each part (operation, check, answer, reproduction), cut short.
  sed -n '/^=* FAILURES =*$/,/^=* WARNINGS =*$/p;/^=* SUMMARY =*$/,$p' "$LOG" \
    | grep -E '^(_+ .* _+|- ST[0-9]+ .*|    (Received|Documented|Expected|Invalid component|Unsupported method).*|\[[0-9]{3}\].*|    `.*`|    curl .*|Failures:|  ❌ .*|API Operations:|  (Selected|Tested): .*|Test cases:|  [0-9]+ generated.*)$' \
    | cut -c1-240 || true
  fail "schemathesis against $BASE (see above; all of it in $LOG)"
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  cat "$TMP/serve.err"
  fail "vigil serve exited during the run"
fi
finish
