#!/usr/bin/env python3
"""Validates what Vigil writes for EHRs against the standards' own validators, on a real server.

Run by scripts/check_fhir.sh (which starts `vigil serve --model models/sepsis` on loopback):
    check_fhir.py --base http://127.0.0.1:PORT --vigil .build/debug/vigil

- Builds a FHIR R4 Bundle (Patient, ICU Encounter, LOINC Observations) for each stay of
  Tests/Fixtures/pipeline/sepsis_events.csv that starts at ICULOS 1, posts it to
  /fhir/sepsis/$score at the stay's last hour, and requires
  - every RiskAssessment, the `?provenance=true` Bundle and its Provenance, and every
    OperationOutcome (for six broken Bundles) to validate with fhir.resources' R4B models
    (pydantic, unknown elements refused);
  - each RiskAssessment's probabilityDecimal to equal, exactly, the risk `vigil score --events`
    gives the same stay's last hour (the declared pipeline on the raw rows);
- CDS Hooks 2.0: discovery, a patient-view card response per stay and a feedback body checked
  with jsonschema against scripts/fhir/cds_hooks_schema.json (written from the spec's logical
  models), the card's summary under 140 characters, and feedback accepted by the service.
Exits non-zero on the first class of failure, printing what failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.riskassessment import RiskAssessment
import jsonschema

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "Tests" / "Fixtures" / "pipeline" / "sepsis_events.csv"
SCHEMAS = json.loads((Path(__file__).parent / "cds_hooks_schema.json").read_text())
sys.path.insert(0, str(ROOT / "models" / "training"))
sys.dont_write_bytecode = True
import sepsis_pipeline as SP  # noqa: E402  (the LOINC codes and UCUM units the package declares)


def post(base: str, path: str, body, content_type="application/fhir+json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), json.loads(e.read())


def get(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.loads(r.read())


def stays() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    with open(EVENTS) as f:
        for row in csv.DictReader(f):
            out.setdefault(row["patient_id"], []).append(row)
    return {k: v for k, v in out.items() if v[0]["ICULOS"] == "1"}


def hour_time(h: int) -> str:
    return f"2026-12-{1 + h // 24:02d}T{h % 24:02d}:30:00Z"


def bundle(rows: list[dict], stay: str) -> dict:
    last = rows[-1]
    age = int(float(last["Age"]))
    entries = [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{int(stay[1:]):012d}",
                "resource": {"resourceType": "Patient", "id": stay, "gender": "male" if float(last["Gender"]) == 1 else "female",
                             "birthDate": f"{2026 - age - 1}-12-31"}},
               {"resource": {"resourceType": "Encounter", "id": f"enc-{stay}", "status": "in-progress",
                             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ACUTE"},
                             "subject": {"reference": f"Patient/{stay}"},
                             "period": {"start": "2026-12-01T00:00:00Z"},
                             "extension": [{"url": SP.HOSP_OFFSET_URL, "valueDecimal": float(last["HospAdmTime"])}]}}]
    k = 0
    for r in rows:
        h = int(r["ICULOS"]) - 1
        for name, (unit, code, display) in SP.RAW.items():
            if r[name] == "":
                continue
            k += 1
            value, u = float(r[name]), unit
            if name == "FiO2":            # LOINC 3150-0 is reported in %; Vigil converts
                value, u = value * 100, "%"
            entries.append({"resource": {
                "resourceType": "Observation", "id": f"{stay}-o{k}", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                "subject": {"reference": f"Patient/{stay}"}, "effectiveDateTime": hour_time(h),
                "valueQuantity": {"value": value, "unit": u, "system": "http://unitsofmeasure.org", "code": u}}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def reference_risks(vigil: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "r.jsonl"
        subprocess.run([vigil, "score", "--model", str(ROOT / "models" / "sepsis"), "--events", "--input", str(EVENTS),
                        "--output", str(out), "--quiet"], check=True)
        return {json.loads(l)["id"]: json.loads(l)["risk"] for l in out.read_text().splitlines()}


def fail(msg: str) -> None:
    print(f"FAIL  {msg}")
    sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--vigil", required=True)
    args = ap.parse_args()
    ref = reference_risks(args.vigil)
    all_stays = stays()
    checked = 0
    for stay, rows in all_stays.items():
        at = hour_time(int(rows[-1]["ICULOS"]) - 1)
        status, ctype, ra = post(args.base, f"/fhir/sepsis/$score?at={at}", bundle(rows, stay))
        if status != 200 or not ctype.startswith("application/fhir+json"):
            fail(f"{stay}: {status} {ctype} {json.dumps(ra)[:300]}")
        RiskAssessment.model_validate(ra)
        want = ref[f"{stay}:h{rows[-1]['ICULOS']}"]
        got = ra["prediction"][0]["probabilityDecimal"]
        if got != want:
            fail(f"{stay}: RiskAssessment {got!r} != vigil score --events {want!r}")
        checked += 1
    print(f"ok    {checked} RiskAssessments valid (fhir.resources R4B) and equal to vigil score --events, exactly")

    stay, rows = next(iter(all_stays.items()))
    status, _, b = post(args.base, "/fhir/sepsis/$score?provenance=true", bundle(rows, stay))
    Bundle.model_validate(b)
    RiskAssessment.model_validate(b["entry"][0]["resource"])
    Provenance.model_validate(b["entry"][1]["resource"])
    if status != 200 or b["entry"][1]["resource"]["target"][0]["reference"] != b["entry"][0]["fullUrl"]:
        fail(f"provenance bundle: {status} {json.dumps(b)[:300]}")
    print("ok    ?provenance=true: Bundle, RiskAssessment and Provenance valid; Provenance.target is the RiskAssessment")

    good = bundle(rows, stay)
    broken = {
        "not a Bundle": {"resourceType": "Patient"},
        "not JSON": b"{oops",
        "no Encounter": {**good, "entry": [e for e in good["entry"] if e["resource"]["resourceType"] != "Encounter"]},
        "no Patient": {**good, "entry": [e for e in good["entry"] if e["resource"]["resourceType"] != "Patient"]},
        "unconvertible unit": json.loads(json.dumps(good).replace('"code": "mg/dL"', '"code": "umol/L"')),
        "time without zone": json.loads(json.dumps(good).replace(":30:00Z", ":30:00")),
    }
    for what, body in broken.items():
        status, ctype, oo = post(args.base, "/fhir/sepsis/$score", body)
        if status < 400 or status >= 500 or not ctype.startswith("application/fhir+json"):
            fail(f"{what}: {status} {ctype}")
        OperationOutcome.model_validate(oo)
        if not all(i.get("diagnostics") for i in oo["issue"]):
            fail(f"{what}: an issue without diagnostics")
    status, _, oo = post(args.base, "/fhir/nosuchmodel/$score", good)
    OperationOutcome.model_validate(oo)
    print(f"ok    {len(broken) + 1} broken requests answered 4xx with a valid OperationOutcome")

    def schema(name):
        return {"$defs": SCHEMAS["$defs"], **SCHEMAS[name]}
    disc = get(args.base, "/cds-services")
    jsonschema.validate(disc, schema("discovery"))
    cards = 0
    for i, (stay, rows) in enumerate(all_stays.items()):
        b = bundle(rows, stay)
        res = [e["resource"] for e in b["entry"]]
        call = {"hook": "patient-view", "hookInstance": f"6f7e4c1a-0000-4000-8000-{i:012d}",
                "context": {"userId": "Practitioner/example", "patientId": stay, "encounterId": f"enc-{stay}"},
                "prefetch": {"patient": res[0], "encounter": res[1],
                             "observations": {"resourceType": "Bundle", "type": "searchset",
                                              "entry": [{"resource": r} for r in res[2:]]}}}
        status, _, resp = post(args.base, "/cds-services/sepsis", call, "application/json")
        if status != 200:
            fail(f"cds {stay}: {status} {resp}")
        jsonschema.validate(resp, schema("response"))
        cards += len(resp["cards"])
        if i == 0:
            fb = {"feedback": [{"card": resp["cards"][0]["uuid"], "outcome": "overridden",
                                "overrideReason": {"reason": resp["cards"][0]["overrideReasons"][0], "userComment": "checked"},
                                "outcomeTimestamp": "2026-12-04T10:15:00Z"}]}
            jsonschema.validate(fb, schema("feedback"))
            status, _, _ = post(args.base, "/cds-services/sepsis/feedback", fb, "application/json")
            if status != 200:
                fail(f"feedback: {status}")
    print(f"ok    CDS Hooks: discovery, {cards} cards and a feedback body valid against the spec's logical models; feedback accepted")


if __name__ == "__main__":
    main()
