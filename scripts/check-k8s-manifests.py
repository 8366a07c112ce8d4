#!/usr/bin/env python3
"""Offline checks of the rendered k8s/ manifests, run by scripts/check-k8s (with .tools/k8s's Python).

    check-k8s-manifests.py --k8s-version 1.35.0,1.36.0,1.37.0 [--prometheus URL] [--self-test] RENDERED.yaml...

Each RENDERED.yaml is one `kubectl kustomize` output; its file name (without .yaml) names it in
messages, and a name starting with "overlay-" is held to the rules of a deployable overlay (no
placeholder image). Checks:
  - built-in kinds validate against the Kubernetes OpenAPI schemas of every --k8s-version (a
    comma-separated list: every minor supported on the day), strictly (unknown fields are errors),
    with kubernetes-validate;
  - every custom resource validates against its CRD's openAPIV3Schema (k8s/schemas/<group>_<version>_<kind>.yaml,
    from the project that publishes the CRD: types, enums, required fields, patterns, unknown fields);
    a custom kind without a schema there is an error;
  - every key a HelmChart's valuesContent sets is a value of the chart (k8s/schemas/chart-values/<chart>.yaml,
    the keys of the chart's values.yaml, as deep as the chart defines mappings);
  - house rules: app.kubernetes.io/name on every object, requests and limits on every container,
    probes on every container that serves a port, non-root pods, no `replicas` on an HPA's target,
    ServiceMonitor → Service → port exists, HPA → Deployment exists, every Secret (and key) the
    manifests reference and every checkov waiver (check and object) is listed in k8s/README.md,
    every StatefulSet and every Deployment no HPA scales has a PodDisruptionBudget, every KRaft
    StatefulSet is a consistent quorum of its replicas (node ids from ordinals, one voter per pod,
    per-pod advertised listeners, replication factors and min.insync.replicas), and no
    StatefulSet's volumeClaimTemplates carry the common labels (immutable: a later label change
    would fail the apply);
  - the monitoring namespace's NetworkPolicies let Prometheus reach every target kube-prometheus-stack
    scrapes by default, as its values (k8s/base/monitoring/charts) enable them;
  - no rule or dashboard query uses what Prometheus 3 removed or reads differently (holt_winters, integer
    le/quantile matchers): promtool 3 is not obtainable here, scripts/check-k8s runs Debian's 2.42;
  - the PrometheusRule's spec.groups equal k8s/base/monitoring/rules/pipeline-rules.yaml's groups;
  - docs/SLI.md and docs/SLO.md name only recording rules that exist, and every SLI has a section;
  - every metric the rules file selects is the processor's (read from its source), recorded, or a
    named exporter's;
  - with --prometheus (a real Prometheus with the rules file loaded): every dashboard panel's PromQL
    parses (its query API answers 400 to a query that does not), names only metrics the processor
    exports (read from its source), recorded series or the named exporters' metrics, and the rules
    file's groups are all loaded.
With --self-test, breaks copies of the first render in each way listed in MUTATIONS and fails unless
every one is reported (proof that the checks above can fail).
Exits 1 after printing every problem found, 0 when there is none.
"""
import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import yaml
import kubernetes_validate
from kubernetes_validate.utils import VersionNotSupportedError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "k8s/base/monitoring/rules/pipeline-rules.yaml")
README = os.path.join(ROOT, "k8s/README.md")
DOCS = [os.path.join(ROOT, "docs/SLI.md"), os.path.join(ROOT, "docs/SLO.md")]
PROCESSOR_METRICS_SOURCE = os.path.join(ROOT, "Sources/Workloads/Processor/Pipeline/ProcessorMetrics.swift")
KPS_CHART = os.path.join(ROOT, "k8s/base/monitoring/charts/kube-prometheus-stack.yaml")

BUILTIN_GROUPS = {"v1", "apps/v1", "batch/v1", "autoscaling/v2", "networking.k8s.io/v1", "policy/v1",
                  "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# Metrics the dashboards and rules may use besides the processor's own and the recorded series.
EXTERNAL_METRICS = {
    "up", "ALERTS", "ALERTS_FOR_STATE",
    "kube_pod_container_status_restarts_total",                      # kube-state-metrics
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
}
DURATION = re.compile(r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$")

problems = []
notes = set()  # what was not checked, said on every run
README_TEXT = open(README).read() if os.path.exists(README) else ""


def problem(where, message):
    problems.append(f"{where}: {message}")


def kind_name(doc):
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{doc.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


# ---------------------------------------------------------------------------------------------
# Custom resources: each validates against its CRD's own openAPIV3Schema (k8s/schemas/, taken from
# the projects that publish the CRDs: enums, required fields, patterns, and unknown fields rejected
# as the API server's strict field validation does), then the house rules below.

SCHEMAS = os.path.join(ROOT, "k8s/schemas")
CHART_VALUES = os.path.join(SCHEMAS, "chart-values")


def schema_file(api_version, kind):
    """k8s/schemas/<group>_<version>_<kind>.yaml for a custom resource's apiVersion and kind."""
    group, _, version = (api_version or "").rpartition("/")
    return os.path.join(SCHEMAS, f"{group}_{version}_{(kind or '').lower()}.yaml")


def go_regex(pattern):
    """A CRD pattern is RE2; Python's re wants inline flags such as (?i) at the very start."""
    flags = "".join(re.findall(r"\(\?([a-z]+)\)", pattern))
    body = re.sub(r"\(\?[a-z]+\)", "", pattern)
    return f"(?{flags}){body}" if flags else body


def to_json_schema(node):
    """An OpenAPI v3 structural schema as JSON Schema: objects with properties reject unknown fields
    unless x-kubernetes-preserve-unknown-fields; int-or-string fields keep their anyOf."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("description", "format", "default"):
            continue
        if key == "pattern":
            out[key] = go_regex(value)
        elif key in ("properties", "patternProperties"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            out[key] = to_json_schema(value)
    if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


_validators = {}


def crd_validator(api_version, kind):
    path = schema_file(api_version, kind)
    if path not in _validators:
        try:
            with open(path) as f:
                schema = yaml.safe_load(f)
        except OSError:
            _validators[path] = None
        else:
            schema.pop("x-types", None)
            schema = to_json_schema(schema)
            jsonschema.Draft7Validator.check_schema(schema)
            _validators[path] = jsonschema.Draft7Validator(schema)
    return _validators[path]


def check_custom_resource(where, doc):
    """Validates a custom resource against its CRD's schema; False when there is no schema for it."""
    validator = crd_validator(doc.get("apiVersion"), doc.get("kind"))
    if validator is None:
        return False
    body = {k: v for k, v in doc.items() if k != "metadata"}
    for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.path))):
        location = ".".join(str(p) for p in error.path) or "(top)"
        problem(where, f"CRD schema: {location}: {error.message}")
    return True


def check_duration(where, value, path):
    if value is not None and not DURATION.match(str(value)):
        problem(where, f"{path} must be a duration such as 30s or 5m, not {value!r}")


def check_chart_values(where, chart, values, pinned=None):
    """Every key valuesContent sets is a key of the chart's values.yaml, as deep as the chart defines
    mappings (k8s/schemas/chart-values/<chart>.yaml; null there marks a free-form value)."""
    path = os.path.join(CHART_VALUES, f"{chart}.yaml")
    try:
        with open(path) as f:
            known = yaml.safe_load(f)
    except OSError:
        problem(where, f"no list of the {chart} chart's values keys ({os.path.relpath(path, ROOT)}): add one from the chart's values.yaml")
        return

    def walk(mine, theirs, prefix):
        for key, value in mine.items():
            if key not in theirs:
                problem(where, f"spec.valuesContent: {prefix}{key} is not a value of the {chart} chart "
                        f"{known.get('version')} (k8s/schemas/chart-values/{chart}.yaml): misspelt, or moved in another chart version?")
            elif isinstance(theirs[key], dict) and isinstance(value, dict):
                walk(value, theirs[key], f"{prefix}{key}.")

    if known.get("keys") is None:
        notes.add(f"the {chart} chart's values keys are not checked: {os.path.relpath(path, ROOT)} lists none")
        return
    if str(known.get("version")) != str(pinned):
        notes.add(f"the {chart} chart's values keys are those of {known.get('version')}, not of the pinned {pinned} "
                  f"(not obtainable here): {os.path.relpath(path, ROOT)}")
    walk(values, known["keys"], "")


def check_helmchart(where, doc):
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    if not spec.get("version"):
        problem(where, "spec.version must pin the chart version")
    limit = spec.get("backOffLimit")
    if not isinstance(limit, int) or limit > 10:
        problem(where, "spec.backOffLimit must be set, and small (the controller's default is 1000 attempts)")
    check_duration(where, spec.get("timeout"), "spec.timeout")
    if "valuesContent" in spec:
        try:
            values = yaml.safe_load(spec["valuesContent"])
        except yaml.YAMLError as e:
            problem(where, f"spec.valuesContent is not YAML: {e}")
            return
        if not isinstance(values, dict):
            problem(where, "spec.valuesContent must be a YAML mapping")
            return
        check_chart_values(where, spec.get("chart"), values, spec.get("version"))
        if spec.get("chart") == "kube-prometheus-stack":
            check_kps_values(where, values)


def check_kps_values(where, values):
    ps = ((values.get("prometheus") or {}).get("prometheusSpec") or {})
    for key in ("serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues",
                "ruleSelectorNilUsesHelmValues", "probeSelectorNilUsesHelmValues"):
        if ps.get(key) is not False:
            problem(where, f"prometheus.prometheusSpec.{key} must be false (pick up resources outside the release)")
    for component in ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy"):
        if (values.get(component) or {}).get("enabled") is not False:
            problem(where, f"{component}.enabled must be false on K3s (no such endpoint to scrape)")
    admin = ((values.get("grafana") or {}).get("admin") or {})
    if not admin.get("existingSecret"):
        problem(where, "grafana.admin.existingSecret must name the generated admin Secret (never admin/admin)")


def check_servicemonitor(where, doc, services):
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    # The Service it selects exists in the rendered set and has the named port.
    names = ((spec.get("namespaceSelector") or {}).get("matchNames")) or [doc["metadata"].get("namespace")]
    want = ((spec.get("selector") or {}).get("matchLabels")) or {}
    matched = [s for s in services if s["metadata"].get("namespace") in names
               and all((s["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]
    if not matched:
        problem(where, f"selects no Service (labels {want} in {names})")
    for i, ep in enumerate(spec.get("endpoints") or []):
        port = ep.get("port") if isinstance(ep, dict) else None
        for s in matched:
            if port and port not in [p.get("name") for p in s["spec"].get("ports", [])]:
                problem(where, f"spec.endpoints[{i}].port {port!r} is not a port of {kind_name(s)}")


# What Prometheus 3 (the version kube-prometheus-stack runs) refuses or reads differently in a rule or
# query that Prometheus 2's promtool accepts. promtool 3 is not obtainable on the machines here
# (Debian ships 2.42; nothing else can be downloaded), so these are checked by name:
PROMETHEUS3_CHANGES = [
    (re.compile(r"\bholt_winters\s*\("), "holt_winters() was removed in Prometheus 3 (double_exponential_smoothing() "
     "replaces it, behind --enable-feature=promql-experimental-functions)"),
    (re.compile(r'\b(le|quantile)\s*=~?\s*"[+-]?[0-9]+"'), "Prometheus 3 normalises le and quantile label values to "
     'floats when scraping classic histograms and summaries (le="1" is stored as le="1.0"): match the float form'),
]


def check_prometheus3(where, expr):
    for pattern, message in PROMETHEUS3_CHANGES:
        if pattern.search(str(expr)):
            problem(where, f"{message}: {expr}")


def check_prometheusrule(where, doc, rules_groups):
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    for g in spec.get("groups") or []:
        if not isinstance(g, dict):
            continue
        for r in g.get("rules") or []:
            if not isinstance(r, dict):
                continue
            check_prometheus3(f"{where}: rule {r.get('alert') or r.get('record')}", r.get("expr", ""))
            if ("record" in r) == ("alert" in r):
                problem(where, f"group {g.get('name')}: a rule needs exactly one of record and alert: {r}")
    if doc["metadata"].get("name") == "gpu-pipeline" and spec.get("groups") != rules_groups:
        problem(where, "spec.groups differ from k8s/base/monitoring/rules/pipeline-rules.yaml: run scripts/render-rules")


# ---------------------------------------------------------------------------------------------
# House rules

def pod_spec(doc):
    spec = doc.get("spec") or {}
    if doc["kind"] in WORKLOADS:
        return ((spec.get("template") or {}).get("spec")) or {}
    return None


def check_house_rules(where, doc, deployable, secret_docs):
    meta = doc.get("metadata") or {}
    if "app.kubernetes.io/name" not in (meta.get("labels") or {}):
        problem(where, "metadata.labels needs app.kubernetes.io/name")
    # A checkov waiver must be listed, with this object, in k8s/README.md's waiver table.
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("checkov.io/skip"):
            check_id = str(value).split("=", 1)[0]
            # The deploy step names a Job after its content (kafka-topics-<12 hex>): the README lists the base name.
            base = re.sub(r"-[0-9a-f]{12}$", "", str(meta.get("name"))) if doc.get("kind") == "Job" else meta.get("name")
            obj = f"{meta.get('namespace')}/{base}"
            if not any(check_id in line and obj in line for line in README_TEXT.splitlines()):
                problem(where, f"checkov waiver {check_id} is not listed for {obj} in k8s/README.md")
    ps = pod_spec(doc)
    if ps is None:
        return
    template_labels = (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    if "app.kubernetes.io/name" not in template_labels:
        problem(where, "the pod template's labels need app.kubernetes.io/name")
    psc = ps.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        problem(where, "pod securityContext.runAsNonRoot must be true")
    for c in (ps.get("initContainers") or []) + (ps.get("containers") or []):
        cw = f"{where} container {c.get('name')}"
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    problem(cw, f"resources.{part}.{r} is required")
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(cw, "securityContext.allowPrivilegeEscalation must be false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problem(cw, "securityContext.capabilities.drop must include ALL")
        if c.get("ports") and not (c.get("readinessProbe") and c.get("livenessProbe")):
            problem(cw, "a container that serves a port needs a readinessProbe and a livenessProbe")
        image = c.get("image", "")
        if deployable and ("registry.invalid" in image or "set-by-overlay" in image):
            problem(cw, f"image {image!r} is still the base's placeholder: the overlay must set it")
        for env in (c.get("env") or []) + (c.get("envFrom") or []):
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef")) or env.get("secretRef")
            if ref:
                secret_docs.add((meta.get("namespace"), ref.get("name"), ref.get("key", "")))
    for volume in ps.get("volumes") or []:
        if "secret" in volume:
            secret_docs.add((meta.get("namespace"), volume["secret"].get("secretName"), ""))


def check_hpa_targets(name, docs):
    for hpa in (d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        targets = [d for d in docs if d.get("kind") == ref.get("kind")
                   and d["metadata"].get("name") == ref.get("name")
                   and d["metadata"].get("namespace") == hpa["metadata"].get("namespace")]
        where = f"{name}: {kind_name(hpa)}"
        if not targets:
            problem(where, f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not in the manifests")
        for t in targets:
            if "replicas" in (t.get("spec") or {}):
                problem(f"{name}: {kind_name(t)}", "has `replicas` but an HPA owns it: leave it out")
            for c in pod_spec(t).get("containers") or []:
                if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                    problem(f"{name}: {kind_name(t)}", f"container {c.get('name')} has no CPU request: the HPA cannot scale on CPU")


COMMON_LABELS = ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")


def selects(selector, labels):
    """Whether a label selector (matchLabels, and In/NotIn/Exists/DoesNotExist expressions) selects `labels`."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def check_disruption_budgets(name, docs):
    """A drain or upgrade must not evict every pod of a stateful or single-owner workload at once:
    every StatefulSet, and every Deployment no HPA scales, has a PodDisruptionBudget selecting its
    pods. StatefulSets' volumeClaimTemplates are immutable: the common labels stay out of them."""
    scaled = {(d["metadata"].get("namespace"), d["spec"]["scaleTargetRef"].get("name"))
              for d in docs if d.get("kind") == "HorizontalPodAutoscaler"}
    budgets = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    for d in docs:
        if d.get("kind") not in ("StatefulSet", "Deployment"):
            continue
        ns = d["metadata"].get("namespace")
        if d["kind"] == "Deployment" and (ns, d["metadata"].get("name")) in scaled:
            continue
        labels = ((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not any(b["metadata"].get("namespace") == ns and selects((b.get("spec") or {}).get("selector"), labels) for b in budgets):
            problem(f"{name}: {kind_name(d)}", "has no PodDisruptionBudget selecting its pods (a drain could evict them all at once)")
        for i, vct in enumerate(d["spec"].get("volumeClaimTemplates") or []):
            for key in COMMON_LABELS:
                if key in ((vct.get("metadata") or {}).get("labels") or {}):
                    problem(f"{name}: {kind_name(d)}", f"volumeClaimTemplates[{i}] carries the common label {key}: they are immutable, "
                            "so changing it later fails the apply (k8s/base/common-labels.yaml keeps them out)")


def check_kafka_quorum(name, docs):
    """Every KRaft StatefulSet (KAFKA_PROCESS_ROLES with controller) is a quorum of its replicas: node.id
    from the pod's ordinal, one voter per pod at <pod>.<headless Service>:<controller port>, each pod
    advertising its own name, replication factors min(replicas, 3) and min.insync.replicas 2 from 3
    brokers (1 below), an odd count, and a PodDisruptionBudget that keeps a majority of the voters."""
    for d in docs:
        if d.get("kind") != "StatefulSet":
            continue
        ps = pod_spec(d)
        for c in ps.get("containers") or []:
            env = {e.get("name"): e for e in c.get("env") or []}
            if "controller" not in str((env.get("KAFKA_PROCESS_ROLES") or {}).get("value", "")):
                continue
            where = f"{name}: {kind_name(d)} container {c.get('name')}"
            meta, spec = d["metadata"], d["spec"]
            ns, replicas, service = meta.get("namespace"), spec.get("replicas", 1), spec.get("serviceName")
            value = lambda key: str((env.get(key) or {}).get("value", ""))  # noqa: E731
            field = lambda key: (((env.get(key) or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")  # noqa: E731
            if replicas % 2 == 0:
                problem(where, f"{replicas} KRaft voters: an even quorum survives no more failures than one voter fewer; use 1 or 3")
            if field("KAFKA_NODE_ID") != "metadata.labels['apps.kubernetes.io/pod-index']":
                problem(where, "KAFKA_NODE_ID must come from the pod's ordinal (fieldRef metadata.labels['apps.kubernetes.io/pod-index']), "
                        "not one value for every pod")
            headless = [s for s in docs if s.get("kind") == "Service" and s["metadata"].get("name") == service
                        and s["metadata"].get("namespace") == ns and (s.get("spec") or {}).get("clusterIP") == "None"]
            if not headless:
                problem(where, f"serviceName {service!r} is not a headless Service in {ns}: the pods' names do not resolve")
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
            controller_port = ports.get("controller")
            host = lambda i: f"{meta.get('name')}-{i}.{service}.{ns}.svc.cluster.local"  # noqa: E731
            want = ",".join(f"{i}@{host(i)}:{controller_port}" for i in range(replicas))
            if value("KAFKA_CONTROLLER_QUORUM_VOTERS") != want:
                problem(where, f"the controller quorum voters are {value('KAFKA_CONTROLLER_QUORUM_VOTERS')!r}; "
                        f"with {replicas} replica(s) they must be {want!r}")
            if field("POD_NAME") != "metadata.name" or f"$(POD_NAME).{service}.{ns}.svc" not in value("KAFKA_ADVERTISED_LISTENERS"):
                problem(where, f"each pod must advertise its own name: KAFKA_ADVERTISED_LISTENERS through $(POD_NAME).{service}.{ns}.svc "
                        "with POD_NAME from metadata.name")
            factor, isr = min(replicas, 3), (2 if replicas >= 3 else 1)
            for key in ("KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
                if value(key) != str(factor):
                    problem(where, f"{key} is {value(key)!r}: {factor} with {replicas} broker(s)")
            for key in ("KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
                if value(key) != str(isr):
                    problem(where, f"{key} is {value(key)!r}: {isr} with {replicas} broker(s)")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            for b in docs:
                if b.get("kind") == "PodDisruptionBudget" and b["metadata"].get("namespace") == ns \
                        and selects((b.get("spec") or {}).get("selector"), labels):
                    bspec = b["spec"]
                    down = bspec["maxUnavailable"] if "maxUnavailable" in bspec else replicas - bspec.get("minAvailable", 0)
                    if replicas >= 3 and (not isinstance(down, int) or down > replicas - (replicas // 2 + 1)):
                        problem(f"{name}: {kind_name(b)}", f"lets {down} of {replicas} KRaft voters go at once: the quorum needs {replicas // 2 + 1}")


# What kube-prometheus-stack scrapes by default besides its own parts in its namespace (which the
# namespace's allow-same-namespace policy covers): (values key, enabled by default, what, where,
# port). Where is "node" (the node's own address: only an ipBlock reaches it) or (namespace, pod labels).
KPS_DEFAULT_TARGETS = [
    ("kubelet", True, "kubelet and cAdvisor", "node", 10250),
    ("kubeApiServer", True, "the API server", "node", 6443),
    ("nodeExporter", True, "node-exporter (host network)", "node", 9100),
    ("coreDns", True, "CoreDNS", ("kube-system", {"k8s-app": "kube-dns"}), 9153),
    ("kubeDns", False, "kube-dns (dnsmasq sidecar)", ("kube-system", {"k8s-app": "kube-dns"}), 10054),
    ("kubeEtcd", True, "etcd", "node", 2381),
    ("kubeControllerManager", True, "the controller manager", "node", 10257),
    ("kubeScheduler", True, "the scheduler", "node", 10259),
    ("kubeProxy", True, "kube-proxy", "node", 10249),
]
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"}


def kps_values():
    try:
        with open(KPS_CHART) as f:
            chart = yaml.safe_load(f)
        return yaml.safe_load(chart["spec"]["valuesContent"]) or {}
    except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
        problem("scrape targets", f"cannot read the kube-prometheus-stack values from {KPS_CHART}: {e}")
        return {}


def peer_reaches(peer, where):
    if where == "node":
        return "ipBlock" in peer
    ns, labels = where
    if "ipBlock" in peer or "namespaceSelector" not in peer:
        return False  # a bare podSelector is the policy's own namespace; ipBlocks are for addresses outside pods
    return selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns}) and selects(peer.get("podSelector"), labels)


def check_scrape_policies(name, docs):
    """Every target kube-prometheus-stack scrapes by default, as its values enable it, is reachable
    from the Prometheus pods through the monitoring namespace's egress policies (port and peer)."""
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy" and d["metadata"].get("namespace") == "monitoring"
                and "Egress" in ((d.get("spec") or {}).get("policyTypes") or [])]
    if not policies:
        return
    values = kps_values()
    mine = [p for p in policies if selects(p["spec"].get("podSelector"), PROMETHEUS_POD)]
    for key, default, what, where, port in KPS_DEFAULT_TARGETS:
        if not (values.get(key) or {}).get("enabled", default):
            continue
        allowed = any(
            (not rule.get("ports") or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in rule["ports"]))
            and (not rule.get("to") or any(peer_reaches(peer, where) for peer in rule["to"]))
            for policy in mine for rule in policy["spec"].get("egress") or [])
        if not allowed:
            place = "the nodes" if where == "node" else f"{where[0]} pods {where[1]}"
            problem(f"{name}: monitoring NetworkPolicies", f"Prometheus cannot reach {what} ({key}, TCP {port} on {place}), which "
                    "kube-prometheus-stack scrapes as its values stand: allow it, or disable the target in the chart's values")


# ---------------------------------------------------------------------------------------------
# Dashboards, PromQL and the SLI/SLO docs

def dashboard_exprs(name, docs):
    out = []
    for d in docs:
        if d.get("kind") != "ConfigMap" or (d["metadata"].get("labels") or {}).get("grafana_dashboard") != "1":
            continue
        for file, text in (d.get("data") or {}).items():
            where = f"{name}: {kind_name(d)} {file}"
            try:
                dash = json.loads(text)
            except json.JSONDecodeError as e:
                problem(where, f"not JSON: {e}")
                continue
            for key in ("uid", "title", "panels"):
                if key not in dash:
                    problem(where, f"dashboard has no {key}")
            for p in dash.get("panels") or []:
                if p.get("type") in ("text", "row"):
                    continue
                if not p.get("targets"):
                    problem(where, f"panel {p.get('title')!r} has no query")
                for t in p.get("targets") or []:
                    if not t.get("expr"):
                        problem(where, f"panel {p.get('title')!r} target {t.get('refId')} has no expr")
                    else:
                        out.append((f"{where} panel {p.get('title')!r}", t["expr"]))
                        check_prometheus3(f"{where} panel {p.get('title')!r}", t["expr"])
    return out


GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h", "${__rate_interval}": "1m",
                     "$__interval_ms": "30000", "$__range_s": "3600"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan", "atan2"}


def metric_names(expr):
    """The metric names an expression selects (strings, label matchers, ranges, grouping lists and
    function calls removed): good enough to catch a misspelt metric."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS or re.match(r"^[0-9]", word):
            continue
        names.add(word)
    return names


def processor_metrics():
    try:
        source = open(PROCESSOR_METRICS_SOURCE).read()
    except OSError as e:
        problem("processor metrics", f"cannot read {PROCESSOR_METRICS_SOURCE}: {e}")
        return set()
    names = set()
    for name, kind in re.findall(r'family\("([a-z_:]+)",\s*"([a-z]+)"', source):
        names.add(name)
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    # Per-GPU gauges go through a helper: perGPU("name", "help") { ... }
    names.update(re.findall(r'perGPU\("([a-z_:]+)"', source))
    if not names:
        problem("processor metrics", f"found no metric family in {PROCESSOR_METRICS_SOURCE}")
    return names


def check_metric_names(exprs, known):
    for where, expr in exprs:
        query = expr
        for var, value in GRAFANA_VARIABLES.items():
            query = query.replace(var, value)
        for name in sorted(metric_names(query) - known):
            problem(where, f"unknown metric {name!r} (not exported by the processor, recorded, or a known exporter's)")


def check_promql(url, exprs, known, rules_groups):
    for where, expr in exprs:
        query = expr
        for var, value in GRAFANA_VARIABLES.items():
            query = query.replace(var, value)
        request = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = json.load(response)
            if body.get("status") != "success":
                problem(where, f"query failed: {body}")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except ValueError:
                pass
            problem(where, f"PromQL does not parse: {detail}\n    {expr}")
        except OSError as e:
            problem(where, f"Prometheus at {url} did not answer: {e}")
            return
    # The rules file itself loaded as the sandbox's Prometheus will load it.
    try:
        with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=10) as response:
            loaded = {g["name"] for g in json.load(response)["data"]["groups"]}
        missing = {g["name"] for g in rules_groups} - loaded
        if missing:
            problem("rules file", f"Prometheus did not load the groups {sorted(missing)}")
    except (OSError, KeyError, ValueError) as e:
        problem("rules file", f"cannot list the loaded rules: {e}")


def check_docs(recorded, rules_groups):
    sli_families = {r.split(":")[1] for r in recorded if r.startswith("sli:")}
    for path in DOCS:
        rel = os.path.relpath(path, ROOT)
        try:
            text = open(path).read()
        except OSError as e:
            problem(rel, f"missing: {e}")
            continue
        # Exact names, and families written with a trailing * (sli:data_completeness:ratio_*).
        named = set(re.findall(r"\b(?:sli|slo|pipeline):[a-z0-9_]+:[a-z0-9_]*\*?", text))
        for name in sorted(named):
            exists = (any(r.startswith(name[:-1]) for r in recorded) if name.endswith("*") else name in recorded)
            if not exists:
                problem(rel, f"names {name}, which is not a recording rule in {os.path.relpath(RULES, ROOT)}")
        if path.endswith("SLI.md"):
            if not named:
                problem(rel, "names no SLI recording rule")
            for family in sorted(sli_families):
                if not re.search(rf"^#+ .*`?{family}`?", text, re.M) and f"sli:{family}:" not in text:
                    problem(rel, f"has no section for the SLI {family} (recorded as sli:{family}:*)")
        if path.endswith("SLO.md"):
            alerts = {r["alert"] for g in rules_groups for r in g["rules"] if "alert" in r and g["name"] == "pipeline-slo-alerts"}
            for alert in sorted(alerts):
                if alert not in text:
                    problem(rel, f"does not mention the burn-rate alert {alert}")


# ---------------------------------------------------------------------------------------------

def check_render(name, docs, k8s_version, rules_groups):
    """Every per-object check of one render; returns its dashboards' (where, expr) pairs."""
    deployable = name.startswith("overlay-")
    services = [d for d in docs if d.get("kind") == "Service"]
    secrets = set()
    seen = set()
    for doc in docs:
        where = f"{name}: {kind_name(doc)}"
        key = (doc.get("apiVersion"), kind_name(doc))
        if key in seen:
            problem(where, "appears twice")
        seen.add(key)
        api = doc.get("apiVersion")
        if api in BUILTIN_GROUPS:
            for version in k8s_version.split(","):
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    location = ".".join(str(p) for p in e.path)
                    problem(where, f"schema (Kubernetes {version}): {location}: {e.message}")
                except kubernetes_validate.SchemaNotFoundError as e:
                    problem(where, f"no schema in Kubernetes {version}: {e}")
                except VersionNotSupportedError:
                    problem(where, f"kubernetes-validate has no schemas for Kubernetes {version}: upgrade it (pip) or drop that minor")
        elif not check_custom_resource(where, doc):
            problem(where, f"custom kind {api} {doc.get('kind')} has no CRD schema in k8s/schemas "
                    f"({os.path.relpath(schema_file(api, doc.get('kind')), ROOT)}): add its CRD's openAPIV3Schema")
        elif api == "helm.cattle.io/v1" and doc.get("kind") == "HelmChart":
            check_helmchart(where, doc)
        elif api == "monitoring.coreos.com/v1" and doc.get("kind") == "ServiceMonitor":
            check_servicemonitor(where, doc, services)
        elif api == "monitoring.coreos.com/v1" and doc.get("kind") == "PrometheusRule":
            check_prometheusrule(where, doc, rules_groups)
        check_house_rules(where, doc, deployable, secrets)
    check_hpa_targets(name, docs)
    check_disruption_budgets(name, docs)
    check_kafka_quorum(name, docs)
    check_scrape_policies(name, docs)
    for ns, secret, key in sorted(secrets):
        if f"{ns}/{secret}" not in README_TEXT or (key and f"`{key}`" not in README_TEXT):
            what = f"key `{key}`" if key else "the Secret"
            problem(f"{name}: Secret {ns}/{secret}", f"{what} is referenced but not documented in k8s/README.md")
    return dashboard_exprs(name, docs)


def find(docs, kind, name):
    return next(d for d in docs if d.get("kind") == kind and d["metadata"].get("name") == name)


def container(docs, kind, name):
    return pod_spec(find(docs, kind, name))["containers"][0]


def set_dashboard_expr(docs, expr):
    cm = find(docs, "ConfigMap", "dashboard-pipeline-lag")
    file = next(iter(cm["data"]))
    dash = json.loads(cm["data"][file])
    dash["panels"][0]["targets"][0]["expr"] = expr
    cm["data"][file] = json.dumps(dash)


# Each mutation of a good render, and the text the checks must then report: proves every check can fail.
MUTATIONS = [
    ("an unknown field in a Deployment", lambda d: container(d, "Deployment", "processor").update(livenessProb={}),
     "'livenessProb' was unexpected"),
    ("a wrong type in a built-in object", lambda d: find(d, "Service", "processor")["spec"]["ports"][0].update(port="8080"),
     "is not of type 'integer'"),
    ("a missing memory limit", lambda d: container(d, "Deployment", "processor")["resources"]["limits"].pop("memory"),
     "resources.limits.memory is required"),
    ("a server without probes", lambda d: container(d, "Deployment", "processor").pop("readinessProbe"),
     "needs a readinessProbe"),
    ("a root pod", lambda d: pod_spec(find(d, "Deployment", "producer"))["securityContext"].update(runAsNonRoot=False),
     "runAsNonRoot must be true"),
    ("replicas on the HPA's target", lambda d: find(d, "Deployment", "producer")["spec"].update(replicas=2),
     "an HPA owns it"),
    ("an HPA aiming at nothing", lambda d: find(d, "HorizontalPodAutoscaler", "producer")["spec"]["scaleTargetRef"].update(name="x"),
     "is not in the manifests"),
    ("a placeholder image in an overlay", lambda d: container(d, "Deployment", "producer").update(image="registry.invalid/gpu-pipeline/producer:set-by-overlay"),
     "still the base's placeholder"),
    ("an object without its name label", lambda d: find(d, "Service", "mongodb")["metadata"]["labels"].pop("app.kubernetes.io/name"),
     "needs app.kubernetes.io/name"),
    ("an undocumented Secret", lambda d: container(d, "Deployment", "processor")["env"][0]["valueFrom"]["secretKeyRef"].update(name="nowhere"),
     "app/nowhere"),
    ("an unlisted checkov waiver", lambda d: find(d, "Service", "processor")["metadata"].setdefault("annotations", {}).update({"checkov.io/skip1": "CKV_K8S_99=x"}),
     "waiver CKV_K8S_99 is not listed"),
    ("a HelmChart with an unknown field", lambda d: find(d, "HelmChart", "loki")["spec"].update(chartt="loki"),
     "'chartt' was unexpected"),
    ("a HelmChart with failurePolicy retry (not in the CRD's enum)", lambda d: find(d, "HelmChart", "loki")["spec"].update(failurePolicy="retry"),
     "'retry' is not one of ['abort', 'reinstall']"),
    ("chart values with a key the chart does not have", lambda d: find(d, "HelmChart", "kube-prometheus-stack")["spec"].update(
        valuesContent=find(d, "HelmChart", "kube-prometheus-stack")["spec"]["valuesContent"].replace("prometheusOperator:", "prometheusOperater:")),
     "prometheusOperater is not a value of the kube-prometheus-stack chart"),
    ("chart values with a misspelt prometheusSpec key", lambda d: find(d, "HelmChart", "kube-prometheus-stack")["spec"].update(
        valuesContent=find(d, "HelmChart", "kube-prometheus-stack")["spec"]["valuesContent"].replace("retentionSize:", "retentionSizeLimit:")),
     "prometheus.prometheusSpec.retentionSizeLimit is not a value"),
    ("chart values with a nested key the chart does not have", lambda d: find(d, "HelmChart", "alloy")["spec"].update(
        valuesContent=find(d, "HelmChart", "alloy")["spec"]["valuesContent"].replace("configMap:", "configmap:")),
     "alloy.configmap is not a value of the alloy chart"),
    ("a HelmChart without backOffLimit", lambda d: find(d, "HelmChart", "alloy")["spec"].pop("backOffLimit"),
     "backOffLimit must be set"),
    ("a HelmChart with a string backOffLimit", lambda d: find(d, "HelmChart", "alloy")["spec"].update(backOffLimit="3"),
     "spec.backOffLimit: '3' is not of type 'integer'"),
    ("kube-prometheus-stack scraping etcd", lambda d: find(d, "HelmChart", "kube-prometheus-stack")["spec"].update(
        valuesContent=find(d, "HelmChart", "kube-prometheus-stack")["spec"]["valuesContent"].replace("kubeEtcd:\n  enabled: false", "kubeEtcd:\n  enabled: true")),
     "kubeEtcd.enabled must be false"),
    ("a ServiceMonitor naming a missing port", lambda d: find(d, "ServiceMonitor", "processor")["spec"]["endpoints"][0].update(port="metrics"),
     "'metrics' is not a port"),
    ("a ServiceMonitor with a bad interval", lambda d: find(d, "ServiceMonitor", "processor")["spec"]["endpoints"][0].update(interval="15x"),
     "spec.endpoints.0.interval: '15x' does not match"),
    ("a ServiceMonitor with a scheme outside the CRD's enum", lambda d: find(d, "ServiceMonitor", "processor")["spec"]["endpoints"][0].update(scheme="tcp"),
     "'tcp' is not one of ['http', 'https']"),
    ("a ServiceMonitor without selector", lambda d: find(d, "ServiceMonitor", "processor")["spec"].pop("selector"),
     "'selector' is a required property"),
    ("a PrometheusRule that drifted from the rules file", lambda d: find(d, "PrometheusRule", "gpu-pipeline")["spec"]["groups"][0]["rules"][0].update(expr="up"),
     "differ from k8s/base/monitoring/rules/pipeline-rules.yaml"),
    ("a rule with both record and alert", lambda d: find(d, "PrometheusRule", "gpu-pipeline")["spec"]["groups"][0]["rules"][0].update(alert="X"),
     "exactly one of record and alert"),
    ("a rule whose `for` is not a duration", lambda d: find(d, "PrometheusRule", "gpu-pipeline")["spec"]["groups"][0]["rules"][0].update({"for": "5 minutes"}),
     "'5 minutes' does not match"),
    ("a rule Prometheus 3 refuses (holt_winters)", lambda d: find(d, "PrometheusRule", "gpu-pipeline")["spec"]["groups"][0]["rules"][0].update(
        expr="holt_winters(up[10m], 0.5, 0.5)"), "holt_winters() was removed in Prometheus 3"),
    ("a histogram query with an integer le (Prometheus 3 stores 1.0)", lambda d: find(d, "PrometheusRule", "gpu-pipeline")["spec"]["groups"][0]["rules"][0].update(
        expr='sum(rate(processor_batch_seconds_bucket{le="1"}[5m]))'), "normalises le and quantile"),
    ("a StatefulSet without a PodDisruptionBudget", lambda d: d.remove(find(d, "PodDisruptionBudget", "kafka")),
     "StatefulSet/platform/kafka: has no PodDisruptionBudget"),
    ("Kafka scaled to 3 without its quorum", lambda d: find(d, "StatefulSet", "kafka")["spec"].update(replicas=3),
     "with 3 replica(s) they must be '0@kafka-0.kafka-broker.platform.svc.cluster.local:9093,1@kafka-1"),
    ("Kafka with one node id for every pod", lambda d: next(e for e in container(d, "StatefulSet", "kafka")["env"] if e["name"] == "KAFKA_NODE_ID").update(
        value="1", valueFrom=None) or next(e for e in container(d, "StatefulSet", "kafka")["env"] if e["name"] == "KAFKA_NODE_ID").pop("valueFrom"),
     "KAFKA_NODE_ID must come from the pod's ordinal"),
    ("common labels in a volumeClaimTemplate", lambda d: find(d, "StatefulSet", "mongodb")["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"].update(
        {"app.kubernetes.io/part-of": "gpu-pipeline"}), "carries the common label app.kubernetes.io/part-of"),
    ("Prometheus kept from CoreDNS's metrics", lambda d: d.remove(find(d, "NetworkPolicy", "prometheus-scrape-coredns")),
     "Prometheus cannot reach CoreDNS (coreDns, TCP 9153"),
    ("a custom kind nobody checks", lambda d: d.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"app.kubernetes.io/name": "w"}}}),
     "has no CRD schema in k8s/schemas"),
    ("a dashboard query that does not parse", lambda d: set_dashboard_expr(d, 'sum(processor_consumer_lag_records{job="processor"}'),
     "PromQL does not parse"),
    ("a dashboard query with a misspelt metric", lambda d: set_dashboard_expr(d, 'sum(processor_consumer_lags{job="processor"})'),
     "unknown metric 'processor_consumer_lags'"),
]


def self_test(path, k8s_version, rules_groups, prometheus, known):
    """Applies each mutation to a copy of a good overlay render and checks the problem is reported."""
    import copy
    global problems
    with open(path) as f:
        good = [d for d in yaml.safe_load_all(f) if d]
    failures = []
    for title, mutate, expected in MUTATIONS:
        docs = copy.deepcopy(good)
        mutate(docs)
        problems = []
        if "parse" in title and not prometheus:
            continue  # needs a real Prometheus
        exprs = check_render("overlay-selftest", docs, k8s_version, rules_groups)
        check_metric_names(exprs, known)
        if prometheus and "dashboard" in title:
            check_promql(prometheus, exprs, known, rules_groups)
        if not any(expected in p for p in problems):
            failures.append(f"self-test: {title}: expected a problem containing {expected!r}, got {problems or 'none'}")
    problems = failures
    if not failures:
        print(f"check-k8s-manifests: self-test ok: every broken render was reported")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k8s-version", required=True)
    parser.add_argument("--prometheus", help="base URL of a Prometheus with the rules file loaded")
    parser.add_argument("--self-test", action="store_true",
                        help="break a copy of the first render in each way the checks know and expect each reported")
    parser.add_argument("rendered", nargs="+")
    args = parser.parse_args()

    with open(RULES) as f:
        rules_groups = yaml.safe_load(f)["groups"]
    recorded = {r["record"] for g in rules_groups for r in g["rules"] if "record" in r}
    known = processor_metrics() | recorded | EXTERNAL_METRICS
    prometheus = args.prometheus.rstrip("/") if args.prometheus else None

    if args.self_test:
        self_test(args.rendered[0], args.k8s_version, rules_groups, prometheus, known)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        return 0

    exprs = []
    counts = {}
    for path in args.rendered:
        name = os.path.basename(path).removesuffix(".yaml")
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        counts[name] = len(docs)
        exprs += check_render(name, docs, args.k8s_version, rules_groups)

    check_docs(recorded, rules_groups)
    for g in rules_groups:
        for r in g["rules"]:
            for name in sorted(metric_names(str(r["expr"])) - known):
                problem(f"rules file: {r.get('alert') or r.get('record')}",
                        f"unknown metric {name!r} (not exported by the processor, recorded, or a known exporter's)")
    # The same dashboards appear in several renders: check each expression once.
    unique = list({expr: (where, expr) for where, expr in exprs}.values())
    check_metric_names(unique, known)
    if prometheus:
        check_promql(prometheus, unique, known, rules_groups)

    summary = ", ".join(f"{n} ({c} objects)" for n, c in counts.items())
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"check-k8s-manifests: {len(problems)} problem(s) in {summary}", file=sys.stderr)
        return 1
    for note in sorted(notes):
        print(f"check-k8s-manifests: note: {note}")
    print(f"check-k8s-manifests: ok: {summary}; {len(set(e for _, e in exprs))} dashboard queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
