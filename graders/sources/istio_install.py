"""What ``istioctl install -f <IstioOperator>`` puts in a cluster, as raw objects.

This is a model of the legacy gateway charts (manifests/charts/gateways/istio-ingress and
istio-egress at Istio 1.30), limited to what the course reasons about: names, namespaces, labels,
Service type and ports, container ports, and the unprivileged flag. It reproduces the inherited
label trap faithfully: the component's ``label`` map is merged OVER the chart defaults
``app: istio-ingressgateway, istio: ingressgateway`` rather than replacing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def _gateway_objects(comp: Mapping, spec: Mapping, *, egress: bool, demo: bool, origin_name: str) -> list[dict]:
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
    marker = {"install.operator.istio.io/owning-resource": origin_name}
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


def render(iop: Mapping[str, Any]) -> list[dict]:
    """Raw objects for one IstioOperator: istiod (when the profile has it) and its gateways."""
    spec = iop.get("spec") if isinstance(iop.get("spec"), Mapping) else {}
    md = iop.get("metadata") if isinstance(iop.get("metadata"), Mapping) else {}
    origin_name = str(md.get("name") or "installed-state")
    profile = str(spec.get("profile") or "default")
    demo = profile == "demo"
    enabled_defaults = PROFILE_GATEWAYS.get(profile, {"ingress"})
    out: list[dict] = []
    if includes_control_plane(spec):
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
        out.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod", "istio": "pilot"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "istiod", "istio": "pilot"}},
                     "template": {"metadata": {"labels": {"app": "istiod", "istio": "pilot"}},
                                  "spec": {"containers": [{"name": "discovery", "image": "pilot",
                                                           "ports": [{"containerPort": 15010},
                                                                     {"containerPort": 15012},
                                                                     {"containerPort": 15017}]}]}}},
        })
        out.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod", "istio": "pilot"}},
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
            out.extend(_gateway_objects(comp, spec, egress=egress, demo=demo, origin_name=origin_name))
    return out
