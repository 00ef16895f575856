#!/usr/bin/env python3
"""deploy/grafana/check_dashboard.py DASHBOARD.json RULES.yaml METRICS.txt

Checks the Grafana dashboard offline: valid JSON with the fields Grafana needs (uid, title,
panels each with a unique id, a type, a gridPos and at least one target), and every name a
query reads is either a recording rule of RULES.yaml or a series family of a real scrape
(METRICS.txt, with its _bucket/_count/_sum), so that no panel silently shows "No data" after a
rename. Standard library only (the rules file is read for `record:` lines).
"""
import json
import re
import sys

dash_path, rules_path, metrics_path = sys.argv[1:4]
dash = json.load(open(dash_path, encoding="utf-8"))
problems = []
for key in ("uid", "title", "panels", "schemaVersion"):
    if key not in dash:
        problems.append(f"missing '{key}'")
records = set(re.findall(r"^\s*-\s*record:\s*(\S+)", open(rules_path, encoding="utf-8").read(), re.M))
families = set()
for line in open(metrics_path, encoding="utf-8"):
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
    if m and not line.startswith("#"):
        name = m.group(1)
        families.add(name)
        families.add(re.sub(r"_(bucket|count|sum)$", "", name))
families |= {"vigil_replica_info", "vigil_rejected_total", "vigil_request_errors_total"}  # present once they happen
keywords = {"sum", "by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "topk", "bottomk",
            "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "label_values", "clamp_min", "ln", "bool"}
ids = set()
queries = 0
for p in dash.get("panels", []):
    pid = p.get("id")
    if pid in ids:
        problems.append(f"panel id {pid} twice")
    ids.add(pid)
    for key in ("type", "title", "gridPos", "targets"):
        if key not in p:
            problems.append(f"panel {pid}: missing '{key}'")
    if not p.get("targets"):
        problems.append(f"panel {pid}: no query")
    for t in p.get("targets", []):
        expr = t.get("expr", "")
        queries += 1
        stripped = re.sub(r'\{[^}]*\}', "", re.sub(r'"[^"]*"', '""', expr))
        stripped = re.sub(r"\[[^\]]*\]", "", stripped)
        for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped):
            if name in keywords or name.startswith("$") or re.fullmatch(r"\d+", name):
                continue
            if name not in records and name not in families and not name.startswith(("decision", "model", "route", "status", "reason")):
                problems.append(f"panel {pid} ({p.get('title')}): '{name}' is neither a recording rule nor a scraped series")
if problems:
    print("\n".join("FAIL: " + x for x in problems))
    sys.exit(1)
print(f"{dash_path}: {len(ids)} panels, {queries} queries, every name a recording rule of {rules_path} or a scraped series: ok")
