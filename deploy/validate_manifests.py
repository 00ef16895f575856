"""Offline validation of deploy/'s manifests (run by deploy/validate.sh in its pinned venv).

- Kubernetes core kinds: kubernetes-validate's JSON schemas for one Kubernetes version, strict
  (unknown fields refused).
- ServiceMonitor, PrometheusRule: the prometheus-operator models of cloudcoil (pydantic,
  generated from the operator's CRDs); pydantic ignores unknown keys, so a key that does not
  survive the model's round trip is reported as unknown.
- ClusterServingRuntime, InferenceService: the KServe SDK's generated models (their
  openapi_types and attribute_map, with Kubernetes' own models for pod fields), walked strictly:
  unknown keys, wrong types and missing required fields are refused.
- Kustomization: YAML, apiVersion/kind, and every listed resource exists (no schema checked).
- PrometheusRule == deploy/prometheus/vigil-rules.yaml.
- Every `--flag` a manifest passes to vigil is one that `vigil serve --help` or
  `vigil score --help` lists (when a vigil binary is given).

Then negative controls: for each validator, a mutated copy of a real manifest (an unknown field,
a wrong type, a missing required field) must be refused, so that a pass means something.
"""

import copy
import glob
import importlib.util
import os
import re
import subprocess
import sys
import types

import yaml

K8S_VERSION = os.environ.get("K8S_VERSION", "1.33.0")
ROOT = os.path.dirname(os.path.abspath(__file__))


# ---- validators ------------------------------------------------------------------------------

def validate_core(doc):
    import kubernetes_validate
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def roundtrip_unknown(given, dumped, path=""):
    """Keys of `given` absent from `dumped` (pydantic dropped them: not in the schema)."""
    out = []
    if isinstance(given, dict):
        if not isinstance(dumped, dict):
            return [path or "/"]
        for k, v in given.items():
            if k not in dumped:
                out.append(f"{path}.{k}")
            else:
                out += roundtrip_unknown(v, dumped[k], f"{path}.{k}")
    elif isinstance(given, list) and isinstance(dumped, list):
        for i, (a, b) in enumerate(zip(given, dumped)):
            out += roundtrip_unknown(a, b, f"{path}[{i}]")
    return out


def validate_prometheus_operator(doc):
    from cloudcoil.models.prometheus_operator import v1
    cls = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}[doc["kind"]]
    obj = cls.model_validate(doc)
    dumped = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
    unknown = roundtrip_unknown(doc, dumped)
    if unknown:
        raise ValueError(f"unknown fields (not in the {doc['kind']} schema): {', '.join(unknown)}")


def kserve_models():
    if "kserve" not in sys.modules:
        # Only the generated models: kserve/__init__.py imports the whole model server.
        spec = importlib.util.find_spec("kserve")
        pkg = types.ModuleType("kserve")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["kserve"] = pkg
    import kserve.models as km
    import kubernetes.client.models as k8s
    return km, k8s


PRIMITIVES = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float), "object": (object,),
              "datetime": (str,), "date": (str,)}


def build(value, typ, path, km, k8s):
    m = re.fullmatch(r"[lL]ist\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            raise ValueError(f"{path}: must be a list ({typ})")
        return [build(v, m.group(1), f"{path}[{i}]", km, k8s) for i, v in enumerate(value)]
    m = re.fullmatch(r"dict\(str, (.+)\)", typ) or re.fullmatch(r"Dict\[str, (.+)\]", typ)
    if m:
        if not isinstance(value, dict):
            raise ValueError(f"{path}: must be a map ({typ})")
        return {k: build(v, m.group(1), f"{path}.{k}", km, k8s) for k, v in value.items()}
    if typ in PRIMITIVES:
        if typ in ("int", "float") and isinstance(value, bool) or not isinstance(value, PRIMITIVES[typ]):
            raise ValueError(f"{path}: {value!r} must be {typ}")
        return value
    cls = getattr(km, typ, None) or getattr(k8s, typ, None)
    if cls is None:
        raise ValueError(f"{path}: no model for type {typ}")
    if not isinstance(value, dict):
        raise ValueError(f"{path}: must be an object ({typ})")
    by_json = {j: a for a, j in cls.attribute_map.items()}
    kwargs = {}
    for k, v in value.items():
        if k not in by_json:
            raise ValueError(f"{path}.{k}: unknown field of {typ}")
        a = by_json[k]
        kwargs[a] = build(v, cls.openapi_types[a], f"{path}.{k}", km, k8s)
    try:
        return cls(**kwargs)  # the generated setters refuse a missing required field
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path} ({typ}): {e}")


def validate_kserve(doc):
    km, k8s = kserve_models()
    typ = {"ClusterServingRuntime": "V1alpha1ClusterServingRuntime", "InferenceService": "V1beta1InferenceService"}[doc["kind"]]
    expected = {"ClusterServingRuntime": "serving.kserve.io/v1alpha1", "InferenceService": "serving.kserve.io/v1beta1"}[doc["kind"]]
    if doc.get("apiVersion") != expected:
        raise ValueError(f"apiVersion {doc.get('apiVersion')!r} is not {expected}")
    if not doc.get("spec"):
        raise ValueError("spec is required")
    build(doc, typ, doc["kind"], km, k8s)


def validate_kustomization(doc, folder):
    if doc.get("apiVersion") != "kustomize.config.k8s.io/v1beta1":
        raise ValueError(f"apiVersion {doc.get('apiVersion')!r}")
    for r in doc.get("resources", []):
        if not os.path.exists(os.path.join(folder, r)):
            raise ValueError(f"resource {r} does not exist")


VALIDATORS = {
    "ServiceMonitor": ("cloudcoil-models-prometheus-operator", validate_prometheus_operator),
    "PrometheusRule": ("cloudcoil-models-prometheus-operator", validate_prometheus_operator),
    "ClusterServingRuntime": ("kserve SDK models", validate_kserve),
    "InferenceService": ("kserve SDK models", validate_kserve),
}


def validate(doc, folder):
    kind = doc.get("kind")
    if kind == "Kustomization":
        validate_kustomization(doc, folder)
        return "kustomization (files only)"
    if kind in VALIDATORS:
        name, f = VALIDATORS[kind]
        f(doc)
        return name
    validate_core(doc)
    return f"kubernetes-validate {K8S_VERSION} strict"


# ---- flags -------------------------------------------------------------------------------------

def vigil_flags(binary):
    flags = {}
    for cmd in ("serve", "score"):
        text = subprocess.run([binary, cmd, "--help"], capture_output=True, text=True, check=True).stdout
        flags[cmd] = set(re.findall(r"(--[a-z][a-z0-9-]*)", text))
    return flags


def container_argv(doc):
    """(subcommand, args) of every vigil container in a manifest."""
    out = []

    def walk(o):
        if isinstance(o, dict):
            image = str(o.get("image", ""))
            if "vigil" in image and "args" in o:
                command = o.get("command") or []
                args = [str(a) for a in o["args"]]
                if command and command[0].endswith("/vigil"):
                    out.append((args[0], args[1:]))
                elif not command:
                    out.append(("serve", args))  # the image's entrypoint is `vigil serve`
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(doc)
    return out


# ---- main ----------------------------------------------------------------------------------------

def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else ""
    files = sorted(glob.glob(os.path.join(ROOT, "kubernetes", "*.yaml")) + glob.glob(os.path.join(ROOT, "kserve", "*.yaml")))
    failures = 0
    docs = []
    for path in files:
        rel = os.path.relpath(path, os.path.dirname(ROOT))
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                name = f"{rel}: {doc.get('kind')}/{doc.get('metadata', {}).get('name', '-')}"
                try:
                    tool = validate(doc, os.path.dirname(path))
                    print(f"ok    {name}  [{tool}]")
                    docs.append((rel, doc))
                except Exception as e:  # report every manifest, then fail
                    failures += 1
                    print(f"FAIL  {name}: {str(e)[:600]}")

    # The PrometheusRule holds exactly the recording rules Prometheus is given.
    with open(os.path.join(ROOT, "prometheus", "vigil-rules.yaml")) as f:
        rules = yaml.safe_load(f)
    with open(os.path.join(ROOT, "kubernetes", "prometheusrule.yaml")) as f:
        cr = yaml.safe_load(f)
    if cr["spec"] != rules:
        failures += 1
        print("FAIL  kubernetes/prometheusrule.yaml: its groups differ from prometheus/vigil-rules.yaml")
    else:
        print("ok    kubernetes/prometheusrule.yaml == prometheus/vigil-rules.yaml")

    # The flags the manifests pass exist.
    if binary:
        flags = vigil_flags(binary)
        checked = 0
        for rel, doc in docs:
            for cmd, args in container_argv(doc):
                for a in args:
                    if a.startswith("--"):
                        checked += 1
                        if a.split("=")[0] not in flags.get(cmd, set()):
                            failures += 1
                            print(f"FAIL  {rel}: vigil {cmd} has no flag {a}")
        print(f"ok    {checked} vigil flags in the manifests are in `vigil serve|score --help`")
    else:
        print("skip  vigil flags (no vigil binary given)")

    # Negative controls: each validator must refuse a broken copy of a real manifest.
    by_kind = {d["kind"]: d for _, d in docs}
    controls = []
    sts = copy.deepcopy(by_kind["StatefulSet"]); sts["spec"]["template"]["spec"]["containers"][0]["bogusField"] = 1
    controls.append(("StatefulSet with an unknown container field", sts))
    sts2 = copy.deepcopy(by_kind["StatefulSet"]); sts2["spec"]["replicas"] = "three"
    controls.append(("StatefulSet with replicas: 'three'", sts2))
    job = copy.deepcopy(by_kind["Job"]); del job["spec"]["template"]["spec"]["containers"][0]["name"]
    controls.append(("Job whose container has no name", job))
    sm = copy.deepcopy(by_kind["ServiceMonitor"]); sm["spec"]["endpoints"][0]["scrapeEvery"] = "15s"
    controls.append(("ServiceMonitor with an unknown endpoint field", sm))
    sm2 = copy.deepcopy(by_kind["ServiceMonitor"]); sm2["spec"]["endpoints"][0]["interval"] = 15
    controls.append(("ServiceMonitor with interval: 15 (not a duration string)", sm2))
    pr = copy.deepcopy(by_kind["PrometheusRule"]); pr["spec"]["groups"][0]["rules"][0]["recrd"] = "x"
    controls.append(("PrometheusRule with a misspelt key", pr))
    csr = copy.deepcopy(by_kind["ClusterServingRuntime"]); csr["spec"]["supportedModelFormats"][0]["autoselect"] = True
    controls.append(("ClusterServingRuntime with a misspelt key", csr))
    csr2 = copy.deepcopy(by_kind["ClusterServingRuntime"]); del csr2["spec"]["containers"][0]["name"]
    controls.append(("ClusterServingRuntime whose container has no name", csr2))
    isvc = copy.deepcopy(by_kind["InferenceService"]); isvc["spec"]["predictor"]["minReplicas"] = "2"
    controls.append(("InferenceService with minReplicas: '2'", isvc))
    refused = 0
    for name, doc in controls:
        try:
            validate(doc, ROOT)
            failures += 1
            print(f"FAIL  negative control accepted: {name}")
        except Exception as e:
            refused += 1
            print(f"ok    negative control refused: {name} ({str(e).splitlines()[0][:120]})")
    print(f"{len(docs)} manifests validated, {refused}/{len(controls)} negative controls refused, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
