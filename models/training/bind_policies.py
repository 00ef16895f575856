#!/usr/bin/env python3
"""Bind each package's policy.json to the package's own model file (docs/FORMATS.md, `model`).

For every package folder given (default: every models/<name>/ with a manifest.json), this adds

    "model": {"name": <manifest name>, "version": <manifest version>, "sha256": <model file's SHA-256>}

to policy.json, right after its "version" line, and changes nothing else in the file: the rest of
its bytes stay as they were, so the diff is the binding alone. Deterministic and idempotent:

- the model file's SHA-256 must equal the manifest's (else the package is inconsistent: refused);
- a policy already bound to this model file is left alone;
- a policy bound to another model file is refused, naming both hashes (refit it instead);
- a policy whose fitted_on.scores names a model SHA-256 prefix that is not this model file's is
  bound as asked but reported, since the risks it was fitted on may have come from another file.

With --check nothing is written; the exit status is 1 when any policy is unbound or bound to
another model. Standard library only.

Run from the repository root:  python3 models/training/bind_policies.py [--check] [package ...]
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def binding_lines(name: str, version: str, sha: str, indent: str) -> str:
    inner = indent * 2
    return (f'{indent}"model": {{\n'
            f'{inner}"name": {json.dumps(name)},\n'
            f'{inner}"version": {json.dumps(version)},\n'
            f'{inner}"sha256": "{sha}"\n'
            f'{indent}}},\n')


def bind(pkg: Path, check: bool) -> bool:
    """Binds (or checks) one package; returns True when its policy is bound to its model."""
    man = json.loads((pkg / "manifest.json").read_text(encoding="utf-8"))
    model_file = pkg / man["model"]["file"]
    sha = sha256_file(model_file)
    if sha != man["model"]["sha256"].lower():
        raise SystemExit(f"FAIL {pkg}: {model_file.name} has sha256 {sha} but manifest.json says "
                         f"{man['model']['sha256']}; fix the package before binding its policy")
    policy_path = pkg / "policy.json"
    text = policy_path.read_text(encoding="utf-8")
    pol = json.loads(text)
    scores = str(pol.get("fitted_on", {}).get("scores", ""))
    m = re.search(r"sha256 ([0-9a-f]{6,64})", scores)
    if m and not sha.startswith(m.group(1)):
        print(f"note {pkg.name}: fitted_on.scores says the risks came from a model with sha256 "
              f"{m.group(1)}..., not this model file ({sha}); binding it to the package's model file")
    if "model" in pol:
        bound = pol["model"].get("sha256") if isinstance(pol["model"], dict) else None
        if bound != sha:
            print(f"FAIL {pkg.name}: {policy_path} is bound to a model with sha256 {bound}, but "
                  f"{model_file} has sha256 {sha}; refit the policy for this model")
            return False
        print(f"ok   {pkg.name}: already bound to {model_file.name} (sha256 {sha})")
        return True
    if check:
        print(f"FAIL {pkg.name}: {policy_path} names no model")
        return False
    # Insert after the top-level "version" line, with the file's own indentation.
    line = re.search(r'^([ \t]+)"version": *"(?:[^"\\]|\\.)*",\n', text, re.M)
    if not line:
        raise SystemExit(f"FAIL {pkg}: no top-level \"version\" line in policy.json to put the binding after")
    at = line.end()
    new_text = text[:at] + binding_lines(man["name"], man["version"], sha, line.group(1)) + text[at:]
    new_pol = json.loads(new_text)
    expected = dict(pol)
    expected["model"] = {"name": man["name"], "version": man["version"], "sha256": sha}
    if new_pol != expected:
        raise SystemExit(f"FAIL {pkg}: the inserted binding did not read back as expected")
    policy_path.write_text(new_text, encoding="utf-8")
    print(f"bound {pkg.name}: policy.json -> {man['name']} {man['version']} {model_file.name} (sha256 {sha})")
    return True


def main() -> None:
    args = sys.argv[1:]
    check = "--check" in args
    names = [a for a in args if a != "--check"]
    pkgs = [Path(n) for n in names] if names else sorted(
        p for p in MODELS_DIR.iterdir() if (p / "manifest.json").exists())
    ok = True
    for p in pkgs:
        if not (p / "policy.json").exists():
            print(f"skip {p}: no policy.json")
            continue
        ok = bind(p, check) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
