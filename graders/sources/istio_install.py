"""What ``istioctl install -f <IstioOperator>`` puts in a cluster, and what it prunes, as raw objects.

This is a model of the legacy gateway charts (manifests/charts/gateways/istio-ingress and
istio-egress at Istio 1.30), limited to what the course reasons about: names, namespaces, labels,
Service type and ports, container ports, and the unprivileged flag.

Labels: the component's ``label`` map becomes the chart value ``gateways.<chart>.labels``
(operator/pkg/render/manifest.go:189-190; component.go:82-84 turns a missing ``label`` into ``{}``),
and Helm merges user values over the chart's defaults ``app: istio-ingressgateway, istio:
ingressgateway`` (charts/gateways/istio-ingress/values.yaml:11-13) key by key: a key the learner
sets is replaced, a key they leave out is inherited.

Ownership and pruning (``install``): istioctl labels everything it applies with the owner labels of
operator/pkg/install/install.go:318-337 (``getOwnerLabels``) and, after applying, deletes objects
that carry the same owner labels and a component label but are no longer rendered
(install.go:228-285, ``prune``). The owner labels are the IstioOperator's ``metadata.name`` (left
out of the selector when the file has no name, so such a file matches every installation), its
namespace (``values.global.istioNamespace``, istio-system by default: render/manifest.go:380),
``istio.io/rev`` and the istioctl version: objects of another revision or installed by another
istioctl version are never pruned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graders.versions import ISTIO_VERSION

# Labels istioctl sets (operator/pkg/manifest/name.go; istio.io/rev from istio.io/api).
OWNER_LABEL = "install.operator.istio.io/owning-resource"
OWNER_NS_LABEL = "install.operator.istio.io/owning-resource-namespace"
COMPONENT_LABEL = "operator.istio.io/component"
VERSION_LABEL = "operator.istio.io/version"
MANAGED_LABEL = "operator.istio.io/managed"
REV_LABEL = "istio.io/rev"
# Kinds istioctl's prune lists (operator/pkg/uninstall/prune.go:64-79, NamespacedResources); the
# simulated cluster renders only Deployments and Services, the rest is listed for live objects.
PRUNED_KINDS = frozenset({"Deployment", "DaemonSet", "Service", "ConfigMap", "Pod", "Secret", "ServiceAccount",
                          "RoleBinding", "Role", "PodDisruptionBudget", "HorizontalPodAutoscaler", "EnvoyFilter"})

INGRESS_DEFAULT_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
EGRESS_DEFAULT_LABELS = {"app": "istio-egressgateway", "istio": "egressgateway"}
INGRESS_PORTS = [
    {"name": "status-port", "port": 15021, "targetPort": 15021},
    {"name": "http2", "port": 80, "targetPort": 8080},
    {"name": "https", "port": 443, "targetPort": 8443},
]
DEMO_EXTRA_INGRESS_PORTS = [
    {"name": "tcp", "port": 31400, "targetPort": 31400},
    {"name": "tls", "port": 15443, "targetPort": 15443},
]
EGRESS_PORTS = [
    {"name": "http2", "port": 80, "targetPort": 8080},
    {"name": "https", "port": 443, "targetPort": 8443},
]
# Which built-in gateways each profile enables (manifests/profiles/*.yaml).
PROFILE_GATEWAYS = {
    "default": {"ingress"}, "demo": {"ingress", "egress"}, "minimal": set(), "empty": set(),
    "remote": set(), "preview": {"ingress"}, "ambient": set(), "openshift": {"ingress"},
}
CONTROL_PLANE_PROFILES = {"default", "demo", "minimal", "preview", "ambient", "openshift"}


def _component_list(spec: Mapping, key: str) -> list[Mapping]:
    comps = spec.get("components") if isinstance(spec.get("components"), Mapping) else {}
    value = comps.get(key) if isinstance(comps, Mapping) else None
    return [c for c in value if isinstance(c, Mapping)] if isinstance(value, list) else []


def includes_control_plane(spec: Mapping) -> bool:
    profile = str(spec.get("profile") or "default")
    comps = spec.get("components") if isinstance(spec.get("components"), Mapping) else {}
    pilot = comps.get("pilot") if isinstance(comps, Mapping) and isinstance(comps.get("pilot"), Mapping) else {}
    if "enabled" in pilot:
        return bool(pilot["enabled"])
    return profile in CONTROL_PLANE_PROFILES


def outbound_policy(spec: Mapping) -> str | None:
    mesh = spec.get("meshConfig") if isinstance(spec.get("meshConfig"), Mapping) else {}
    otp = mesh.get("outboundTrafficPolicy") if isinstance(mesh.get("outboundTrafficPolicy"), Mapping) else {}
    mode = otp.get("mode")
    return str(mode) if mode else None


def _run_as_root(spec: Mapping, chart_key: str) -> bool:
    values = spec.get("values") if isinstance(spec.get("values"), Mapping) else {}
    gws = values.get("gateways") if isinstance(values.get("gateways"), Mapping) else {}
    chart = gws.get(chart_key) if isinstance(gws.get(chart_key), Mapping) else {}
    return bool(chart.get("runAsRoot", False))


def _gateway_objects(comp: Mapping, spec: Mapping, *, egress: bool, demo: bool, owner: Mapping[str, str]) -> list[dict]:
    name = str(comp.get("name") or ("istio-egressgateway" if egress else "istio-ingressgateway"))
    namespace = str(comp.get("namespace") or spec.get("namespace") or "istio-system")
    labels = dict(EGRESS_DEFAULT_LABELS if egress else INGRESS_DEFAULT_LABELS)
    if isinstance(comp.get("label"), Mapping):
        labels.update({str(k): str(v) for k, v in comp["label"].items()})
    k8s = comp.get("k8s") if isinstance(comp.get("k8s"), Mapping) else {}
    svc = k8s.get("service") if isinstance(k8s.get("service"), Mapping) else {}
    if isinstance(svc.get("ports"), list):
        ports = [dict(p) for p in svc["ports"] if isinstance(p, Mapping)]
    elif egress:
        ports = [dict(p) for p in EGRESS_PORTS]
    else:
        ports = [dict(p) for p in INGRESS_PORTS + (DEMO_EXTRA_INGRESS_PORTS if demo else [])]
    svc_type = str(svc.get("type") or ("ClusterIP" if egress else "LoadBalancer"))
    unprivileged = not _run_as_root(spec, "istio-egressgateway" if egress else "istio-ingressgateway")
    container_ports = [{"containerPort": p.get("targetPort", p.get("port")), "protocol": "TCP"} for p in ports
                       if isinstance(p.get("targetPort", p.get("port")), int)]
    container_ports.append({"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"})
    env = [{"name": "ISTIO_META_UNPRIVILEGED_POD", "value": "true"}] if unprivileged else []
    pod_labels = {**labels, "sidecar.istio.io/inject": "false"}
    replicas = k8s.get("replicaCount", 1) if isinstance(k8s.get("replicaCount", 1), int) else 1
    marker = {**owner, COMPONENT_LABEL: "EgressGateways" if egress else "IngressGateways"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, **marker}},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [{
                "name": "istio-proxy", "image": "auto", "args": ["proxy", "router", "--domain",
                                                                  "$(POD_NAMESPACE).svc.cluster.local"],
                "ports": container_ports, "env": env}]}},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, **marker}},
        "spec": {"type": svc_type, "selector": labels, "ports": ports},
    }
    return [deployment, service]


def _mapping(d: Any, *path: str) -> Mapping:
    for key in path:
        d = d.get(key) if isinstance(d, Mapping) else None
    return d if isinstance(d, Mapping) else {}


def owner_labels(iop: Mapping[str, Any]) -> dict[str, str]:
    """The labels istioctl puts on what it applies for ``iop`` and selects on when it prunes
    (install.go:318-337). Without a metadata.name there is no owning-resource label in the selector;
    the chart's own default (``unknown``) stays on the objects."""
    spec = _mapping(iop, "spec")
    values = _mapping(spec, "values")
    name = str(_mapping(iop, "metadata").get("name") or "")
    revision = str(spec.get("revision") or values.get("revision") or "default")
    labels = {MANAGED_LABEL: "Reconcile", VERSION_LABEL: ISTIO_VERSION,
              OWNER_NS_LABEL: str(_mapping(values, "global").get("istioNamespace") or "istio-system"),
              REV_LABEL: revision}
    if name:
        labels[OWNER_LABEL] = name
    return labels


def render(iop: Mapping[str, Any]) -> list[dict]:
    """Raw objects for one IstioOperator: istiod (when the profile has it) and its gateways, each
    labelled as istioctl labels it (owner labels and ``operator.istio.io/component``)."""
    spec = iop.get("spec") if isinstance(iop.get("spec"), Mapping) else {}
    owner = {OWNER_LABEL: "unknown", **owner_labels(iop)}
    pilot_labels = {"app": "istiod", "istio": "pilot", **owner, COMPONENT_LABEL: "Pilot"}
    # istio-discovery's deployment.yaml:7 and service.yaml: istiod, or istiod-<revision> for a revision.
    istiod = "istiod" if owner[REV_LABEL] == "default" else f"istiod-{owner[REV_LABEL]}"
    profile = str(spec.get("profile") or "default")
    demo = profile == "demo"
    enabled_defaults = PROFILE_GATEWAYS.get(profile, {"ingress"})
    out: list[dict] = []
    if includes_control_plane(spec):
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
        out.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": istiod, "namespace": "istio-system", "labels": pilot_labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "istiod", "istio": "pilot"}},
                     "template": {"metadata": {"labels": {"app": "istiod", "istio": "pilot"}},
                                  "spec": {"containers": [{"name": "discovery", "image": "pilot",
                                                           "ports": [{"containerPort": 15010},
                                                                     {"containerPort": 15012},
                                                                     {"containerPort": 15017}]}]}}},
        })
        out.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": istiod, "namespace": "istio-system", "labels": pilot_labels},
            "spec": {"type": "ClusterIP", "selector": {"app": "istiod", "istio": "pilot"}, "ports": [
                {"name": "grpc-xds", "port": 15010}, {"name": "https-dns", "port": 15012},
                {"name": "https-webhook", "port": 443, "targetPort": 15017},
                {"name": "http-monitoring", "port": 15014}]},
        })
    for key, egress, default_name in (("ingressGateways", False, "istio-ingressgateway"),
                                      ("egressGateways", True, "istio-egressgateway")):
        comps = {str(c.get("name") or default_name): c for c in _component_list(spec, key)}
        if ("egress" if egress else "ingress") in enabled_defaults:
            comps.setdefault(default_name, {"name": default_name, "enabled": True})
            comps[default_name] = {"enabled": True, **comps[default_name]}
        for comp in comps.values():
            # A listed gateway is installed unless it says enabled: false.
            if comp.get("enabled") is False:
                continue
            out.extend(_gateway_objects(comp, spec, egress=egress, demo=demo, owner=owner))
    return out


Key = tuple[str, str, str]  # kind, namespace, name


def key(obj: Mapping) -> Key:
    md = _mapping(obj, "metadata")
    return str(obj.get("kind", "")), str(md.get("namespace") or ""), str(md.get("name") or "")


def _labels(obj: Mapping) -> Mapping:
    return _mapping(obj, "metadata", "labels")


def pruned(existing: Sequence[Mapping], iop: Mapping[str, Any], rendered: Sequence[Mapping]) -> set[Key]:
    """Keys (kind, namespace, name) of ``existing`` objects that installing ``iop`` deletes: they carry
    its owner labels and a component label but it no longer renders them (install.go:228-285)."""
    selector = owner_labels(iop)
    keep = {key(o) for o in rendered}
    out = set()
    for obj in existing:
        labels = _labels(obj)
        prunable = isinstance(obj.get("kind"), str) and obj["kind"] in PRUNED_KINDS and COMPONENT_LABEL in labels
        if prunable and key(obj) not in keep and all(labels.get(k) == v for k, v in selector.items()):
            out.add(key(obj))
    return out


def _needs_node_ports(svc: Mapping) -> bool:
    return _mapping(svc, "spec").get("type") in ("NodePort", "LoadBalancer")


def keep_node_ports(old: Mapping, new: dict) -> dict:
    """``new`` as the API server stores it over ``old``: a Service re-applied without nodePorts keeps
    the ones it had, port by port name, while both types need node ports (Kubernetes'
    ``patchAllocatedValues``, pkg/registry/core/service/storage/storage.go)."""
    if not (_needs_node_ports(old) and _needs_node_ports(new)):
        return new
    def ports_of(svc: Mapping) -> list[Mapping]:
        value = _mapping(svc, "spec").get("ports")
        return [p for p in value if isinstance(p, Mapping)] if isinstance(value, list) else []

    def node_port(p: Mapping) -> int | None:
        value = p.get("nodePort")
        return value if isinstance(value, int) and not isinstance(value, bool) and value else None

    before = {str(p.get("name")): node_port(p) for p in ports_of(old) if node_port(p)}
    ports = [dict(p) for p in ports_of(new)]
    used = {node_port(p) for p in ports} - {None}
    for p in ports:
        kept = before.get(str(p.get("name")))
        if node_port(p) is None and kept is not None and kept not in used:
            p["nodePort"] = kept
    return {**new, "spec": {**_mapping(new, "spec"), "ports": ports}}


def install(existing: Sequence[Mapping], iop: Mapping[str, Any]) -> tuple[list[dict], set[Key]]:
    """What ``istioctl install -f`` does to a cluster holding ``existing``: (objects it applies, keys it
    prunes). An object it renders replaces the one with the same kind, namespace and name, whoever
    installed it (server-side apply with force): a second IstioOperator that renders istiod or
    istio-system/istio-ingressgateway takes them over with its own values."""
    by_key = {key(o): o for o in existing}
    applied = []
    for obj in render(iop):
        old = by_key.get(key(obj))
        applied.append(keep_node_ports(old, obj) if old is not None and obj["kind"] == "Service" else obj)
    return applied, pruned(existing, iop, applied)
