"""An in-process fake Kubernetes API server over real HTTP on 127.0.0.1.

Why a fake and not mocks: the graders must be tested through the REAL ``kubernetes`` client (its
kubeconfig loading, URL building, auth headers, error classes, timeouts), so the only thing
replaced is the server. The fake answers the subset of the API the course uses, shaped as a real
kube-apiserver answers it (discovery, ``Status`` error bodies, LIST items without kind/apiVersion
for built-in types, server-set metadata), and records every request so tests can assert which
verbs and paths a tool used.

Usage::

    with FakeApiServer() as api:                      # seeded with the course's baseline cluster
        kubeconfig = api.write_kubeconfig(tmp_path / "config")   # context "kind-istio-lab"
        api.add(gateway("bookinfo-gateway"))           # more objects, decorated like the API does
        api.forbid("pods")                             # 403 for list pods (any namespace)
        ... run code under test ...
        assert [r.verb for r in api.requests] == [...]

What a real cluster adds by itself, it adds too, so "only course objects here" checks meet what
kind shows them: every namespace gets the ServiceAccount ``default`` and the ConfigMap
``kube-root-ca.crt``; a Service with a selector gets an Endpoints of its name (its labels, no
owner) and an EndpointSlice it owns; a Deployment's roll-out writes an Event. Discovery serves
every namespaced kind a learner could create (and a few create-only ones, as a real server does).
LISTs page when asked (``limit``/``continue``; ``page_size`` makes the server page on its own) and
answer metadata only for ``Accept: ...;as=PartialObjectMetadataList``.

Simplifications (deliberate, documented): strategic-merge patches are applied as JSON merge
patches; server-side apply is create-or-replace of the applied fields; deletion is immediate
(no finalizers) and so is garbage collection of dependents (``cluster.deferred_gc = True`` leaves
them behind, as a real collector does for a moment); a Deployment's ReplicaSet and Pods appear,
Ready, when it is created or its spec changes (deleted pods are not recreated); no watches. Since Istio 1.21
``istioctl install`` stores no IstioOperator resource, so the install.istio.io CRD is absent
unless asked for (``operator_crd=True``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import yaml

from graders import versions

SEED_TIME = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
DEFAULT_TOKEN = "fake-token-for-tests"
DEFAULT_USER = "system:serviceaccount:default:course-grader"
NODE_NAME = f"{versions.CLUSTER_NAME}-control-plane"
ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")
KIND_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    builtin: bool = True
    subresources: tuple[tuple[str, tuple[str, ...]], ...] = ()
    verbs: tuple[str, ...] = ()  # () : every verb in _VERBS

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """``pods`` or ``gateways.networking.istio.io``, as API error messages name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
BUILTIN_TYPES = (
    ResourceType("", ("v1",), "namespaces", "Namespace", False, ("ns",), subresources=(("status", ("get",)),)),
    ResourceType("", ("v1",), "pods", "Pod", True, ("po",), subresources=(
        ("status", ("get", "patch", "update")), ("log", ("get",)), ("portforward", ("create", "get")))),
    ResourceType("", ("v1",), "services", "Service", True, ("svc",), subresources=(("status", ("get",)),)),
    ResourceType("", ("v1",), "serviceaccounts", "ServiceAccount", True, ("sa",)),
    ResourceType("", ("v1",), "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", ("v1",), "secrets", "Secret", True),
    ResourceType("", ("v1",), "endpoints", "Endpoints", True, ("ep",)),
    ResourceType("", ("v1",), "events", "Event", True, ("ev",)),
    ResourceType("", ("v1",), "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
    ResourceType("", ("v1",), "replicationcontrollers", "ReplicationController", True, ("rc",)),
    ResourceType("", ("v1",), "podtemplates", "PodTemplate", True),
    ResourceType("", ("v1",), "limitranges", "LimitRange", True, ("limits",)),
    ResourceType("", ("v1",), "resourcequotas", "ResourceQuota", True, ("quota",)),
    ResourceType("", ("v1",), "persistentvolumes", "PersistentVolume", False, ("pv",)),
    ResourceType("", ("v1",), "bindings", "Binding", True, verbs=("create",)),
    ResourceType("apps", ("v1",), "deployments", "Deployment", True, ("deploy",), subresources=(
        ("scale", ("get", "patch", "update")), ("status", ("get",)))),
    ResourceType("apps", ("v1",), "replicasets", "ReplicaSet", True, ("rs",)),
    ResourceType("apps", ("v1",), "statefulsets", "StatefulSet", True, ("sts",)),
    ResourceType("apps", ("v1",), "daemonsets", "DaemonSet", True, ("ds",)),
    ResourceType("apps", ("v1",), "controllerrevisions", "ControllerRevision", True),
    ResourceType("batch", ("v1",), "jobs", "Job", True),
    ResourceType("batch", ("v1",), "cronjobs", "CronJob", True, ("cj",)),
    ResourceType("discovery.k8s.io", ("v1",), "endpointslices", "EndpointSlice", True),
    ResourceType("events.k8s.io", ("v1",), "events", "Event", True, ("ev",)),
    ResourceType("networking.k8s.io", ("v1",), "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    ResourceType("networking.k8s.io", ("v1",), "ingresses", "Ingress", True, ("ing",)),
    ResourceType("policy", ("v1",), "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)),
    ResourceType("autoscaling", ("v2",), "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",)),
    ResourceType("coordination.k8s.io", ("v1",), "leases", "Lease", True),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "rolebindings", "RoleBinding", True),
    ResourceType("authorization.k8s.io", ("v1",), "localsubjectaccessreviews", "LocalSubjectAccessReview", True,
                 verbs=("create",)),
    ResourceType("apiextensions.k8s.io", ("v1",), "customresourcedefinitions", "CustomResourceDefinition", False,
                 ("crd", "crds")),
)
# Kinds whose objects share (group, plural) with another served kind: the events.k8s.io Event is the
# core Event seen through another API group, as on a real server.
SHARED_STORE = {("events.k8s.io", "events"): ("", "events")}
# The CRDs an Istio 1.30 install creates that the course touches (plural, kind, short names).
ISTIO_CRDS = (
    ("gateways", "Gateway", ("gw",)), ("virtualservices", "VirtualService", ("vs",)),
    ("destinationrules", "DestinationRule", ("dr",)), ("serviceentries", "ServiceEntry", ("se",)),
    ("sidecars", "Sidecar", ()),
)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    verb: str = ""  # list | get | create | update | patch | delete | deletecollection | discovery | portforward
    group: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    content_type: str = ""
    body: Any = None
    status: int = 0
    accept: str = ""


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Mapping | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, dict(details or {})

    def body(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            out["details"] = self.details
        return out


def not_found(rt: ResourceType | None = None, name: str | None = None) -> ApiError:
    if rt is None or name is None:
        return ApiError(404, "NotFound", "the server could not find the requested resource", {})
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


# ---------------------------------------------------------------------------------------------
# Label selectors, patches


def _split_requirements(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector syntax: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``notin``."""
    for req in _split_requirements(selector):
        if m := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", req):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            present = key in labels and labels[key] in values
            if present != (op == "in"):
                return False
        elif req.startswith("!"):
            if req[1:].strip() in labels:
                return False
        elif "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in req:
            key, value = (s.strip() for s in re.split(r"==?", req, maxsplit=1))
            if labels.get(key) != value:
                return False
        elif req not in labels:
            return False
    return True


def _field_selector_matches(selector: str, obj: Mapping) -> bool:
    md = obj.get("metadata", {})
    for req in _split_requirements(selector):
        neg = "!=" in req
        key, value = (s.strip() for s in re.split(r"!=|==?", req, maxsplit=1))
        fields = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace")}
        if key not in fields:
            raise ApiError(400, "BadRequest", f'field label not supported: {key}')
        if (fields[key] == value) == neg:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (null deletes a key, lists are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target: Any, ops: list) -> Any:
    """RFC 6902 add/remove/replace/test, enough for what tools send."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, op["value"])
            elif kind == "remove":
                parent.pop(idx)
            elif kind == "replace":
                parent[idx] = op["value"]
            elif kind == "test" and parent[idx] != op["value"]:
                raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
        else:
            if kind in ("add", "replace"):
                if kind == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"replace operation does not apply: missing path {op['path']}")
                parent[last] = op["value"]
            elif kind == "remove":
                if last not in parent:
                    raise ApiError(422, "Invalid", f"remove operation does not apply: missing path {op['path']}")
                del parent[last]
            elif kind == "test" and parent.get(last) != op["value"]:
                raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
    return doc


# ---------------------------------------------------------------------------------------------
# Seed data: the course's baseline, decorated as a live API server shows it


def _crd(group: str, plural: str, kind: str, short: Iterable[str], served: Iterable[str], storage: str,
         namespaced: bool = True) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app": "istio-pilot", "chart": "istio"}},
        "spec": {"group": group, "scope": "Namespaced" if namespaced else "Cluster",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List",
                           "shortNames": list(short), "categories": ["istio-io"]},
                 "versions": [{"name": v, "served": True, "storage": v == storage,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}
                              for v in served]},
    }


def istio_crds() -> list[dict]:
    return [_crd(ISTIO_GROUP, plural, kind, short, ISTIO_VERSIONS, "v1") for plural, kind, short in ISTIO_CRDS]


def gateway_api_crds() -> list[dict]:
    """h10-gwapi (issue #15): the standard-channel Gateway API CRDs the course reads (v1.5.1 serves v1 and v1beta1)."""
    group = "gateway.networking.k8s.io"
    return [_crd(group, "gatewayclasses", "GatewayClass", ("gc",), ("v1", "v1beta1"), "v1", namespaced=False),
            _crd(group, "gateways", "Gateway", ("gtw",), ("v1", "v1beta1"), "v1"),
            _crd(group, "httproutes", "HTTPRoute", (), ("v1", "v1beta1"), "v1"),
            _crd(group, "referencegrants", "ReferenceGrant", ("refgrant",), ("v1", "v1beta1"), "v1")]


def operator_crd() -> dict:
    return _crd("install.istio.io", "istiooperators", "IstioOperator", ("iop", "io"), ("v1alpha1",), "v1alpha1")


def _coredns() -> list[dict]:
    labels = {"k8s-app": "kube-dns"}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                      "name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.1", "args": ["-conf",
                                                                                                     "/etc/coredns/Corefile"],
                      "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}]}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
         "spec": {"selector": labels, "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                                                {"name": "metrics", "port": 9153, "protocol": "TCP",
                                                 "targetPort": 9153}]}},
    ]


def course_objects(*, istio: bool = True, with_operator_crd: bool = False, gateway_api: bool = False) -> list[dict]:
    """The objects ``cluster up`` leaves in a kind cluster, before the API server decorates them.

    Read from the course's own files through the simulated source, so the fake and the simulated
    cluster can never drift apart. ``gateway_api``: also the Gateway API CRDs `cluster up` installs and
    the GatewayClasses istiod then creates (h13-gwapi); without it the fake is a cluster from before them.
    """
    from graders.sources.simulated import baseline_objects, render_operators

    out: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                       for n in KIND_SYSTEM_NAMESPACES]
    out += _coredns()
    if istio:
        out += istio_crds()
    if istio and with_operator_crd:
        out.append(operator_crd())
    if istio and gateway_api:
        out += gateway_api_crds()
    seen: set[tuple[str, str, str]] = set()
    for raw in render_operators(baseline_objects()):
        obj = copy.deepcopy(raw.obj)
        is_iop = obj.get("kind") == "IstioOperator"
        rendered = "(rendered)" in raw.origin
        if (is_iop and not (istio and with_operator_crd)) or (rendered and not istio):
            continue
        if obj.get("kind") == "GatewayClass" and not (istio and gateway_api):
            continue
        if is_iop:
            obj.setdefault("metadata", {})["namespace"] = "istio-system"
        md = obj.setdefault("metadata", {})
        key = (obj["kind"], md.get("namespace", ""), md["name"])
        if key not in seen:
            seen.add(key)
            out.append(obj)
    return out


def gateway(name: str, namespace: str = "default", *, hosts: Iterable[str] = ("*",), port: int = 80,
            protocol: str = "HTTP", selector: Mapping[str, str] | None = None, api_version: str = "v1") -> dict:
    """A Gateway as a learner writes it (the API server adds metadata when it is stored)."""
    return {"apiVersion": f"{ISTIO_GROUP}/{api_version}", "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": dict(selector or {"istio": "ingressgateway"}),
                     "servers": [{"port": {"number": port, "name": f"{protocol.lower()}-{port}", "protocol": protocol},
                                  "hosts": list(hosts)}]}}


def virtual_service(name: str, namespace: str = "default", *, hosts: Iterable[str] = ("*",),
                    gateways: Iterable[str] = ("bookinfo-gateway",),
                    routes: Iterable[tuple[str, str, int]] = (("/productpage", "productpage", 9080),),
                    api_version: str = "v1") -> dict:
    """A VirtualService with one http route per (uri prefix, destination host, port)."""
    return {"apiVersion": f"{ISTIO_GROUP}/{api_version}", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"hosts": list(hosts), "gateways": list(gateways),
                     "http": [{"match": [{"uri": {"prefix": prefix}}],
                               "route": [{"destination": {"host": host, "port": {"number": port}}}]}
                              for prefix, host, port in routes]}}


def bookinfo_routing(namespace: str = "default", port: int = 80) -> list[dict]:
    """The lab 1 answer: a Gateway on ``port`` and a VirtualService sending /productpage to Bookinfo."""
    return [gateway("bookinfo-gateway", namespace, port=port),
            virtual_service("bookinfo", namespace,
                            routes=[(p, "productpage", 9080) for p in ("/productpage", "/static", "/api/v1/products")])]


# ---------------------------------------------------------------------------------------------
# The store


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


class FakeCluster:
    """Objects by (group, plural) and (namespace, name), with the server-side behaviour tests rely on."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.store: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self.clock = SEED_TIME
        self.rv = 1000
        self.deferred_gc = False  # True: deleting an owner leaves its dependents (with a dangling owner) behind
        self.ip_counter = 10

    # -- resource types --------------------------------------------------------------------
    def resource_types(self) -> list[ResourceType]:
        out = list(BUILTIN_TYPES)
        for crd in self.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), {}).values():
            spec = crd["spec"]
            names = spec["names"]
            out.append(ResourceType(spec["group"], tuple(v["name"] for v in spec["versions"] if v.get("served")),
                                    names["plural"], names["kind"], spec.get("scope") == "Namespaced",
                                    tuple(names.get("shortNames", [])), builtin=False))
        return out

    def resource(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self.resource_types():
            if rt.group == group and rt.plural == plural and version in rt.versions:
                return rt
        return None

    def resource_for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, version = _group_version(api_version)
        for rt in self.resource_types():
            if rt.group == group and rt.kind == kind and version in rt.versions:
                return rt
        return None

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for rt in self.resource_types():
            if rt.group:
                versions_ = out.setdefault(rt.group, [])
                versions_ += [v for v in rt.versions if v not in versions_]
        return out

    # -- helpers ----------------------------------------------------------------------------
    def _tick(self) -> str:
        self.clock += timedelta(seconds=1)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def bucket(self, rt: ResourceType) -> dict[tuple[str, str], dict]:
        key = (rt.group, rt.plural)
        return self.store.setdefault(SHARED_STORE.get(key, key), {})

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict | None:
        return self.bucket(rt).get((namespace if rt.namespaced else "", name))

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[dict]:
        items = [o for (ns, _), o in self.bucket(rt).items() if namespace is None or ns == namespace]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    # -- writes -----------------------------------------------------------------------------
    def create(self, rt: ResourceType, obj: dict, namespace: str | None = None, *, dry_run: bool = False) -> dict:
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md.get("name"), str) or not md["name"]:
            if md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(422, "Invalid", f"{rt.kind} \"\" is invalid: metadata.name: Required value: name or "
                               "generateName is required", {"kind": rt.kind, "group": rt.group})
        if rt.namespaced:
            body_ns = md.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                               "namespace sent on the request")
            md["namespace"] = ns = namespace or body_ns or "default"
            ns_rt = self.resource("", "v1", "namespaces")
            if ns_rt and self.get(ns_rt, "", ns) is None:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                               {"name": ns, "kind": "namespaces", "group": ""})
        else:
            md.pop("namespace", None)
            ns = ""
        if self.get(rt, ns, md["name"]) is not None:
            raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{md["name"]}" already exists',
                           {"name": md["name"], "group": rt.group, "kind": rt.plural})
        obj["apiVersion"] = obj.get("apiVersion") or (f"{rt.group}/{rt.versions[0]}" if rt.group else "v1")
        obj["kind"] = rt.kind
        md["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rt.qualified}/{ns}/{md['name']}/{self.rv}"))
        md["creationTimestamp"] = self._tick()
        md["resourceVersion"] = self._next_rv()
        md.pop("deletionTimestamp", None)
        if rt.kind in ("Deployment", "ReplicaSet") or not rt.builtin:
            md["generation"] = 1
        self._default(rt, obj)
        if dry_run:
            return obj
        self.bucket(rt)[(ns, md["name"])] = obj
        self._after_write(rt, obj)
        return obj

    def replace(self, rt: ResourceType, namespace: str, name: str, obj: dict, *, dry_run: bool = False,
                check_version: bool = True) -> dict:
        old = self.get(rt, namespace, name)
        if old is None:
            raise not_found(rt, name)
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if md.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        sent_rv = md.get("resourceVersion")
        if check_version and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object '
                           "has been modified; please apply your changes to the latest version and try again",
                           {"name": name, "group": rt.group, "kind": rt.plural})
        for key in ("uid", "creationTimestamp", "namespace", "ownerReferences"):
            if key in old["metadata"] and (key != "ownerReferences" or key not in md):
                md[key] = old["metadata"][key]
        md["name"] = name
        md["resourceVersion"] = self._next_rv()
        if "generation" in old["metadata"]:
            changed = obj.get("spec") != old.get("spec")
            md["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
        obj["kind"] = rt.kind
        obj["apiVersion"] = obj.get("apiVersion") or old["apiVersion"]
        if "status" in old and "status" not in obj:
            obj["status"] = copy.deepcopy(old["status"])
        self._default(rt, obj)
        if dry_run:
            return obj
        self.bucket(rt)[(namespace if rt.namespaced else "", name)] = obj
        self._after_write(rt, obj, old)
        return obj

    def delete(self, rt: ResourceType, namespace: str, name: str, *, dry_run: bool = False) -> dict:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        if rt.kind == "Namespace" and name in ("default", "kube-system", "kube-public"):
            raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                           {"name": name, "kind": "namespaces", "group": ""})
        if not dry_run:
            del self.bucket(rt)[(namespace if rt.namespaced else "", name)]
            self._after_delete(rt, obj)
        return obj

    # -- server-side defaults and controllers -------------------------------------------------
    def _default(self, rt: ResourceType, obj: dict) -> None:
        spec = obj.setdefault("spec", {}) if rt.kind in ("Service", "Deployment", "Pod") else None
        if rt.kind == "Namespace":
            obj.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = \
                obj["metadata"]["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif rt.kind == "Service" and spec is not None:
            spec.setdefault("type", "ClusterIP")
            if "clusterIP" not in spec:
                self.ip_counter += 1
                spec["clusterIP"] = f"10.96.{self.ip_counter // 250}.{self.ip_counter % 250 + 1}"
            spec["clusterIPs"] = [spec["clusterIP"]]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("sessionAffinity", "None")
            spec.setdefault("internalTrafficPolicy", "Cluster")
            used = {p.get("nodePort") for s in self.bucket(rt).values() for p in s["spec"].get("ports", [])}
            for i, p in enumerate(spec.get("ports", [])):
                p.setdefault("protocol", "TCP")
                p.setdefault("targetPort", p.get("port"))
                if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in p:
                    p["nodePort"] = next(n for n in range(30100 + i, 32768) if n not in used)
                    used.add(p["nodePort"])
            if spec["type"] in ("NodePort", "LoadBalancer"):
                spec.setdefault("externalTrafficPolicy", "Cluster")
            obj["status"] = {"loadBalancer": {}}
        elif rt.kind == "Deployment" and spec is not None:
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("strategy", {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
            for c in spec.get("template", {}).get("spec", {}).get("containers", []):
                c.setdefault("imagePullPolicy", "IfNotPresent")
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                for p in c.get("ports", []):
                    p.setdefault("protocol", "TCP")

    def _after_write(self, rt: ResourceType, obj: dict, old: dict | None = None) -> None:
        if rt.kind == "Deployment" and (old is None or old.get("spec") != obj.get("spec")):
            self._roll_out(obj)
        elif rt.kind == "Namespace" and old is None:
            self._populate_namespace(obj["metadata"]["name"])
        elif rt.kind == "Service" and rt.group == "":
            self._sync_endpoints(obj)

    def _system(self, group: str, plural: str, obj: dict) -> dict | None:
        """Create ``obj`` as a controller would, unless it is already there."""
        rt = next(t for t in BUILTIN_TYPES if (t.group, t.plural) == (group, plural))
        md = obj["metadata"]
        if md.get("name") and self.get(rt, md.get("namespace", ""), md["name"]) is not None:
            return None
        return self.create(rt, obj, md.get("namespace"))

    def _populate_namespace(self, ns: str) -> None:
        """What every namespace of a real cluster holds from its first second: the ServiceAccount
        ``default`` (serviceaccount controller) and the ConfigMap ``kube-root-ca.crt`` (root-ca-cert-publisher)."""
        self._system("", "serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                             "metadata": {"name": "default", "namespace": ns}})
        self._system("", "configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                         "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to "
                                         "verify the kube-apiserver when using internal endpoints such as the "
                                         "internal service IP or kubernetes.default.svc. No other usage is "
                                         "guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIfake\n-----END CERTIFICATE-----\n"}})

    def _sync_endpoints(self, svc: dict) -> None:
        """The endpoints and endpointslice controllers: a Service with a selector gets an Endpoints of
        its name carrying its labels (no ownerReferences) and an EndpointSlice it owns."""
        md = svc["metadata"]
        if not (svc.get("spec") or {}).get("selector"):
            return
        labels = dict(md.get("labels") or {})
        ep_rt = self.resource("", "v1", "endpoints")
        assert ep_rt is not None
        ep = self.get(ep_rt, md["namespace"], md["name"])
        if ep is None:
            self._system("", "endpoints", {"apiVersion": "v1", "kind": "Endpoints",
                                           "metadata": {"name": md["name"], "namespace": md["namespace"],
                                                        "labels": labels}, "subsets": []})
        else:
            ep["metadata"]["labels"] = labels
        slice_rt = self.resource("discovery.k8s.io", "v1", "endpointslices")
        assert slice_rt is not None
        mine = [o for o in self.list(slice_rt, md["namespace"])
                if any(r.get("uid") == md["uid"] for r in o["metadata"].get("ownerReferences", []))]
        slice_labels = {**labels, "kubernetes.io/service-name": md["name"],
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
        if mine:
            mine[0]["metadata"]["labels"] = slice_labels
            return
        suffix = hashlib.sha256(md["uid"].encode()).hexdigest()[:5]
        self._system("discovery.k8s.io", "endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4", "endpoints": [],
            "metadata": {"name": f"{md['name']}-{suffix}", "namespace": md["namespace"], "labels": slice_labels,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": md["name"],
                                              "uid": md["uid"], "controller": True, "blockOwnerDeletion": True}]}})

    def _event(self, namespace: str, involved: dict, reason: str, message: str) -> None:
        """An Event, as controllers record them (they expire after an hour on a real cluster)."""
        md = involved["metadata"]
        self._system("", "events", {
            "apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": reason, "message": message,
            "metadata": {"name": f"{md['name']}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {"kind": involved.get("kind"), "name": md["name"], "namespace": namespace,
                               "uid": md.get("uid"), "apiVersion": involved.get("apiVersion")},
            "source": {"component": "deployment-controller"}, "count": 1})

    def _after_delete(self, rt: ResourceType, obj: dict) -> None:
        md = obj["metadata"]
        if rt.kind == "Namespace":
            for bucket in list(self.store.values()):
                for key in [k for k in bucket if k[0] == md["name"]]:
                    del bucket[key]
        elif rt.kind == "CustomResourceDefinition":
            self.store.pop((obj["spec"]["group"], obj["spec"]["names"]["plural"]), None)
        elif rt.kind == "Service" and rt.group == "":  # the endpoints controller removes its Endpoints
            ep_rt = self.resource("", "v1", "endpoints")
            ep = self.get(ep_rt, md.get("namespace", ""), md["name"]) if ep_rt else None
            if ep is not None and not ep["metadata"].get("ownerReferences") and (obj.get("spec") or {}).get("selector"):
                del self.bucket(ep_rt)[(md["namespace"], md["name"])]
        if self.deferred_gc:  # a real cluster's garbage collector takes a moment: dependents still there
            return
        # Garbage collection: objects owned (transitively) by the deleted one.
        owned = [(g_p, key, o) for g_p, bucket in self.store.items() for key, o in bucket.items()
                 if any(r.get("uid") == md.get("uid") for r in o["metadata"].get("ownerReferences", []))]
        for (group, plural), key, o in owned:
            self.store[(group, plural)].pop(key, None)
            child = next(t for t in self.resource_types() if (t.group, t.plural) == (group, plural))
            self._after_delete(child, o)

    def _roll_out(self, dep: dict) -> None:
        """What the Deployment and ReplicaSet controllers and the kubelet would do, at once."""
        md, spec = dep["metadata"], dep["spec"]
        rs_rt, pod_rt = self.resource("apps", "v1", "replicasets"), self.resource("", "v1", "pods")
        assert rs_rt is not None and pod_rt is not None
        for key, rs in list(self.bucket(rs_rt).items()):
            if any(r.get("uid") == md["uid"] for r in rs["metadata"].get("ownerReferences", [])):
                del self.bucket(rs_rt)[key]
                self._after_delete(rs_rt, rs)
        template = spec.get("template", {})
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
        pod_hash = "".join("bcdfghjklmnpqrstvwxz2456789"[int(digest[i:i + 2], 16) % 27] for i in range(0, 20, 2))
        rs_name = f"{md['name']}-{pod_hash}"
        replicas = int(spec.get("replicas", 1))
        labels = {**template.get("metadata", {}).get("labels", {}), "pod-template-hash": pod_hash}

        def owner(kind: str, o: dict, api_version: str) -> dict:
            return {"apiVersion": api_version, "kind": kind, "name": o["metadata"]["name"],
                    "uid": o["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

        rs = self.create(rs_rt, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": md["namespace"], "labels": labels,
                         "ownerReferences": [owner("Deployment", dep, "apps/v1")]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {**spec.get("selector", {}).get(
                "matchLabels", {}), "pod-template-hash": pod_hash}}, "template": copy.deepcopy(template)},
        }, md["namespace"])
        rs["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                        "fullyLabeledReplicas": replicas, "observedGeneration": 1}
        for i in range(replicas):
            suffix = hashlib.sha256(f"{rs_name}/{i}".encode()).hexdigest()
            suffix = "".join("bcdfghjklmnpqrstvwxz2456789"[int(suffix[j:j + 2], 16) % 27] for j in range(0, 10, 2))
            pod_spec = copy.deepcopy(template.get("spec", {}))
            pod_spec.update({"nodeName": NODE_NAME, "restartPolicy": pod_spec.get("restartPolicy", "Always"),
                             "schedulerName": "default-scheduler", "dnsPolicy": "ClusterFirst"})
            pod_spec["serviceAccountName"] = pod_spec.get("serviceAccountName", "default")
            pod = self.create(pod_rt, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{rs_name}-{suffix}", "namespace": md["namespace"], "labels": dict(labels),
                             "ownerReferences": [owner("ReplicaSet", rs, "apps/v1")]},
                "spec": pod_spec,
            }, md["namespace"])
            self.ip_counter += 1
            self.set_pod_status(pod, ready=True, ip=f"10.244.0.{self.ip_counter % 250 + 2}")
        when = md["creationTimestamp"]
        dep["status"] = {"observedGeneration": md.get("generation", 1), "replicas": replicas,
                         "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                         "conditions": [
                             {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                              "message": "Deployment has minimum availability.",
                              "lastUpdateTime": when, "lastTransitionTime": when},
                             {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                              "message": f'ReplicaSet "{rs_name}" has successfully progressed.',
                              "lastUpdateTime": when, "lastTransitionTime": when}]}
        if replicas == 0:
            for k in ("readyReplicas", "availableReplicas", "updatedReplicas"):
                dep["status"].pop(k)
        self._event(md["namespace"], dep, "ScalingReplicaSet", f"Scaled up replica set {rs_name} to {replicas}")

    def set_pod_status(self, pod: dict, *, ready: bool, ip: str | None = None) -> None:
        when = pod["metadata"]["creationTimestamp"]
        state = "True" if ready else "False"
        containers = pod["spec"].get("containers", [])
        pod["status"] = {
            "phase": "Running", "hostIP": "172.18.0.2", "hostIPs": [{"ip": "172.18.0.2"}],
            "podIP": ip or pod.get("status", {}).get("podIP", "10.244.0.99"), "qosClass": "BestEffort",
            "startTime": when,
            "conditions": [{"type": t, "status": "True" if t in ("PodScheduled", "Initialized",
                                                                 "PodReadyToStartContainers") else state,
                            "lastProbeTime": None, "lastTransitionTime": when}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                     "PodScheduled")],
            "containerStatuses": [{"name": c.get("name", f"c{i}"), "image": c.get("image", ""), "ready": ready,
                                   "started": True, "restartCount": 0, "imageID": "",
                                   "containerID": f"containerd://{uuid.uuid4().hex}",
                                   "state": {"running": {"startedAt": when}}}
                                  for i, c in enumerate(containers)],
        }
        pod["status"]["podIPs"] = [{"ip": pod["status"]["podIP"]}]


# ---------------------------------------------------------------------------------------------
# HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: avoid 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _dispatch(self) -> None:
        self.server.fake.handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients giving up is normal
            super().handle_error(request, client_address)


class _Server(_QuietServer):
    allow_reuse_address = True
    fake: FakeApiServer


class _Text(str):
    """A plain-text answer (a container log) instead of a JSON object."""


@dataclass
class _Route:
    group: str
    version: str
    rt: ResourceType | None
    namespace: str | None
    name: str | None
    subresource: str | None
    discovery: bool = False
    path: str = ""


class _LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) served from a daemon thread; ``with`` starts/stops it."""

    _httpd: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _run(self, httpd: ThreadingHTTPServer) -> Self:
        self._httpd = httpd
        # A short poll interval: shutdown() waits for it.
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        assert self._httpd is not None, f"start the {type(self).__name__} first"
        return "127.0.0.1", int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.address[1]}"


class FakeApiServer(_LoopbackServer):
    """The fake server: start it (or use ``with``), point a kubeconfig at ``url``, inspect ``requests``."""

    def __init__(self, objects: Iterable[dict] | None = None, *, istio: bool = True, operator_crd: bool = False,
                 token: str | None = DEFAULT_TOKEN, user: str = DEFAULT_USER):
        self.cluster = FakeCluster()
        self.token = token
        self.user = user
        self.requests: list[RecordedRequest] = []
        self.forbidden: list[tuple[str, str, str, str | None]] = []  # (verb, group, resource, namespace)
        self.portforward_backends: dict[tuple[str | None, int], tuple[str, int] | None] = {}
        self.delay = 0.0  # seconds to wait before every answer: a slow API server
        self.page_size: int | None = None  # the most items one LIST answer holds (None: what the client asks)
        self.container_logs: dict[tuple[str, str, str], str] = {}  # (namespace, pod, container) -> text
        seed = course_objects(istio=istio, with_operator_crd=operator_crd) if objects is None else list(objects)
        for obj in seed:
            self.add(obj)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        return self._run(httpd)

    # -- test-facing helpers ------------------------------------------------------------------
    def add(self, obj: dict) -> dict:
        """Store an object as if it had been created through the API (server-set fields added)."""
        with self.cluster.lock:
            rt = self.cluster.resource_for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            if rt is None:
                raise ValueError(f"the fake API server does not serve {obj.get('apiVersion')} {obj.get('kind')}")
            return self.cluster.create(rt, obj, obj.get("metadata", {}).get("namespace"))

    def set_log(self, namespace: str, pod: str, container: str, text: str) -> None:
        """What GET .../pods/<pod>/log?container=<container> answers (tailLines honoured)."""
        self.container_logs[(namespace, pod, container)] = text

    def add_all(self, objs: Iterable[dict]) -> list[dict]:
        return [self.add(o) for o in objs]

    def objects(self, kind: str | None = None, namespace: str | None = None) -> list[dict]:
        """Stored objects (copies, with kind/apiVersion), optionally one kind / one namespace."""
        with self.cluster.lock:
            out = []
            for rt in self.cluster.resource_types():
                if (kind is None or rt.kind == kind) and (rt.group, rt.plural) not in SHARED_STORE:
                    out += [copy.deepcopy(o) for o in self.cluster.list(rt, namespace)]
            return out

    def find(self, kind: str, namespace: str, name: str) -> dict | None:
        return next((o for o in self.objects(kind, namespace or None) if o["metadata"]["name"] == name), None)

    def remove_istio(self) -> None:
        """Delete the Istio CRDs (and so every Istio resource): networking.istio.io answers 404."""
        with self.cluster.lock:
            rt = self.cluster.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            assert rt is not None
            for crd in self.cluster.list(rt):
                if crd["spec"]["group"].endswith("istio.io"):
                    self.cluster.delete(rt, "", crd["metadata"]["name"])

    def forbid(self, resource: str, group: str = "", verb: str = "list", namespace: str | None = None) -> None:
        """Answer 403 for ``verb`` on ``resource`` (``"*"`` for every verb), as RBAC would."""
        self.forbidden.append((verb, group, resource, namespace))

    def set_ready(self, namespace: str, deployment: str, ready: bool) -> None:
        """Mark every pod of a Deployment (not) Ready, and its status counts to match."""
        with self.cluster.lock:
            dep_rt = self.cluster.resource("apps", "v1", "deployments")
            pod_rt = self.cluster.resource("", "v1", "pods")
            assert dep_rt and pod_rt
            dep = self.cluster.get(dep_rt, namespace, deployment)
            if dep is None:
                raise KeyError(f"no Deployment {namespace}/{deployment}")
            prefix = f"{deployment}-"
            n = 0
            for pod in self.cluster.list(pod_rt, namespace):
                refs = pod["metadata"].get("ownerReferences", [])
                if any(r["kind"] == "ReplicaSet" and r["name"].startswith(prefix) for r in refs):
                    self.cluster.set_pod_status(pod, ready=ready)
                    n += 1
            for k in ("readyReplicas", "availableReplicas"):
                if ready:
                    dep["status"][k] = n
                else:
                    dep["status"].pop(k, None)

    def set_portforward_backend(self, address: tuple[str, int] | None, pod_port: int | None = None,
                                pod: str | None = None) -> None:
        """Where a port-forward to ``pod``:``pod_port`` (None: any) connects; None: nothing listens there."""
        self.portforward_backends[(pod, pod_port or 0)] = address

    def write_kubeconfig(self, path: str | Path, context: str = f"kind-{versions.CLUSTER_NAME}",
                         extra: Mapping[str, str] | None = None, current: str | None = None) -> str:
        """A kubeconfig with ``context`` (and ``extra`` name -> server URL contexts) pointing here."""
        return write_kubeconfig_for(path, {context: self.url, **(extra or {})}, current or context,
                                    self.token or "unused")

    def clear_requests(self) -> None:
        self.requests.clear()

    def calls(self, verb: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if verb is None or r.verb == verb]

    # -- request handling -----------------------------------------------------------------------
    def handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        rec = RecordedRequest(h.command, parts.path, query, content_type=h.headers.get("Content-Type", ""),
                              accept=h.headers.get("Accept", ""))
        self.requests.append(rec)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if self.delay:
            time.sleep(self.delay)
        try:
            if self.token and h.headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            route = self._route(parts.path)
            if route.rt is not None:
                rec.group, rec.resource, rec.namespace, rec.name = (route.rt.group, route.rt.plural,
                                                                     route.namespace, route.name)
            if route.subresource == "portforward" and h.headers.get("Upgrade", "").lower() == "websocket":
                rec.verb = "portforward"
                self._check_forbidden("create", route, rec, sub="portforward")
                self._portforward(h, route, query)
                rec.status = 101
                return
            status, body = self._serve(h.command, route, query, raw, rec)
        except ApiError as err:
            status, body = err.code, err.body()
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as err:
            status, body = 400, ApiError(400, "BadRequest", f"the fake API server could not process the request: "
                                                            f"{err}").body()
        rec.status = status
        text = isinstance(body, _Text)
        data = body.encode() if text else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "text/plain" if text else "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Audit-Id", str(uuid.uuid4()))
        h.end_headers()
        h.wfile.write(data)

    def _route(self, path: str) -> _Route:
        segs = [s for s in path.split("/") if s]
        if not segs or segs[0] not in ("api", "apis", "version"):
            raise not_found()
        if segs[0] == "version":
            return _Route("", "", None, None, None, None, discovery=True, path=path)
        if segs[0] == "api":
            if len(segs) <= 2:
                return _Route("", segs[1] if len(segs) == 2 else "", None, None, None, None, discovery=True,
                              path=path)
            group, version, rest = "", segs[1], segs[2:]
        else:
            if len(segs) <= 3:
                return _Route(segs[1] if len(segs) > 1 else "", segs[2] if len(segs) > 2 else "", None, None, None,
                              None, discovery=True, path=path)
            group, version, rest = segs[1], segs[2], segs[3:]
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise not_found()
        rt = self.cluster.resource(group, version, plural)
        if rt is None or (namespace is not None and not rt.namespaced):
            raise not_found()
        return _Route(group, version, rt, namespace, name, sub)

    def _check_forbidden(self, verb: str, route: _Route, rec: RecordedRequest, sub: str | None = None) -> None:
        rt = route.rt
        assert rt is not None
        resource = f"{rt.plural}/{sub}" if sub else rt.plural
        for f_verb, f_group, f_res, f_ns in self.forbidden:
            if f_verb in ("*", verb) and f_group == rt.group and f_res == resource and \
                    (f_ns is None or f_ns == route.namespace):
                scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
                what = f'{rt.qualified} "{route.name}"' if route.name else rt.qualified
                raise ApiError(403, "Forbidden", f'{what} is forbidden: User "{self.user}" cannot {verb} resource '
                               f'"{resource}" in API group "{rt.group}" {scope}',
                               {**({"name": route.name} if route.name else {}), "group": rt.group, "kind": rt.plural})

    def _serve(self, method: str, route: _Route, query: dict[str, str], raw: bytes,
               rec: RecordedRequest) -> tuple[int, dict]:
        c = self.cluster
        if route.discovery:
            rec.verb = "discovery"
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                               "resource")
            return 200, self._discovery(route)
        rt = route.rt
        assert rt is not None
        if route.subresource and route.subresource not in dict(rt.subresources):
            raise not_found()
        if query.get("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by the fake API server")
        dry_run = query.get("dryRun") == "All"
        ct = rec.content_type.split(";")[0].strip()
        body: Any = None
        if raw:
            body = yaml.safe_load(raw) if ct == "application/apply-patch+yaml" else json.loads(raw)
        rec.body = body
        ns = route.namespace or ""
        with c.lock:
            if method == "GET":
                rec.verb = "get" if route.name else "list"
                # RBAC authorizes a subresource on its own (`get pods/log`), not through `get pods`.
                self._check_forbidden(rec.verb, route, rec, sub=route.subresource)
                if route.name:
                    obj = c.get(rt, ns, route.name)
                    if obj is None:
                        raise not_found(rt, route.name)
                    if route.subresource == "log":
                        return 200, self._log(ns, route.name, query)
                    if "as=PartialObjectMetadata;" in rec.accept + ";":  # metadata only, as for lists
                        return 200, {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                     "metadata": copy.deepcopy(obj["metadata"])}
                    return 200, self._out(obj, route, full=True)
                items = c.list(rt, route.namespace)
                if "labelSelector" in query:
                    items = [o for o in items if label_selector_matches(
                        query["labelSelector"], o["metadata"].get("labels") or {})]
                if "fieldSelector" in query:
                    items = [o for o in items if _field_selector_matches(query["fieldSelector"], o)]
                items, meta = self._page(items, query)
                if "as=PartialObjectMetadataList" in rec.accept:  # names and labels only, never the data
                    return 200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                                 "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                            "metadata": copy.deepcopy(o["metadata"])} for o in items]}
                list_version = f"{rt.group}/{route.version}" if rt.group else route.version
                return 200, {"kind": f"{rt.kind}List", "apiVersion": list_version, "metadata": meta,
                             "items": [self._out(o, route, full=not rt.builtin) for o in items]}
            if method == "POST":
                rec.verb = "create"
                self._check_forbidden("create", route, rec)
                if route.name:
                    raise ApiError(405, "MethodNotAllowed", "POST is not allowed on a named resource")
                return 201, self._out(c.create(rt, body, route.namespace, dry_run=dry_run), route, full=True)
            if not route.name:
                if method == "DELETE":
                    rec.verb = "deletecollection"
                    self._check_forbidden("deletecollection", route, rec)
                    items = c.list(rt, route.namespace)
                    if "labelSelector" in query:
                        items = [o for o in items if label_selector_matches(
                            query["labelSelector"], o["metadata"].get("labels") or {})]
                    for o in items:
                        c.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], dry_run=dry_run)
                    return 200, {"kind": f"{rt.kind}List", "apiVersion": f"{rt.group}/{route.version}".lstrip("/"),
                                 "metadata": {"resourceVersion": str(c.rv)},
                                 "items": [self._out(o, route, full=True) for o in items]}
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
            if method == "PUT":
                rec.verb = "update"
                self._check_forbidden("update", route, rec)
                return 200, self._out(c.replace(rt, ns, route.name, body, dry_run=dry_run), route, full=True)
            if method == "PATCH":
                rec.verb = "patch"
                self._check_forbidden("patch", route, rec)
                return self._patch(rt, route, ns, ct, body, query, dry_run)
            if method == "DELETE":
                rec.verb = "delete"
                self._check_forbidden("delete", route, rec)
                obj = c.delete(rt, ns, route.name, dry_run=dry_run)
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": route.name, "group": rt.group, "kind": rt.plural,
                                         "uid": obj["metadata"]["uid"]}}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _page(self, items: list[dict], query: Mapping[str, str]) -> tuple[list[dict], dict]:
        """``limit``/``continue`` paging as the API server does it (``page_size`` caps every page, as a
        server may return fewer items than asked for)."""
        import base64

        meta: dict = {"resourceVersion": str(self.cluster.rv)}
        limit = int(query.get("limit") or 0)
        if self.page_size:
            limit = min(limit, self.page_size) if limit else self.page_size
        start = 0
        if query.get("continue"):
            try:
                start = int(json.loads(base64.b64decode(query["continue"]))["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data") from None
        if not limit and not start:
            return items, meta
        end = start + limit if limit else len(items)
        if end < len(items):
            meta["continue"] = base64.b64encode(json.dumps({"start": end, "rv": meta["resourceVersion"]})
                                                .encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        return items[start:end], meta

    def _patch(self, rt: ResourceType, route: _Route, ns: str, ct: str, body: Any, query: Mapping[str, str],
               dry_run: bool) -> tuple[int, dict]:
        c = self.cluster
        assert route.name is not None
        current = c.get(rt, ns, route.name)
        if ct == "application/apply-patch+yaml":
            if not query.get("fieldManager"):
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                               "value: is required for apply patch")
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the apply patch must be an object")
            if current is None:
                body.setdefault("metadata", {})["name"] = route.name
                return 201, self._out(c.create(rt, body, route.namespace, dry_run=dry_run), route, full=True)
            applied = copy.deepcopy(body)
            applied.setdefault("metadata", {}).pop("resourceVersion", None)
            applied["metadata"] = {**current["metadata"], **applied["metadata"]}
            return 200, self._out(c.replace(rt, ns, route.name, applied, dry_run=dry_run), route, full=True)
        if current is None:
            raise not_found(rt, route.name)
        if ct in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            patched = merge_patch(current, body)
        elif ct == "application/json-patch+json":
            patched = json_patch(current, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: application/json-patch+json, "
                           f"application/merge-patch+json, application/apply-patch+yaml (got {ct!r})")
        return 200, self._out(c.replace(rt, ns, route.name, patched, dry_run=dry_run, check_version=False), route,
                              full=True)

    def _log(self, namespace: str, pod: str, query: dict[str, str]) -> _Text:
        text = self.container_logs.get((namespace, pod, query.get("container", "")))
        if text is None:
            raise ApiError(400, "BadRequest", f'container "{query.get("container")}" in pod "{pod}" has no log '
                                              "in the fake API server")
        lines = text.splitlines(keepends=True)
        tail = int(query.get("tailLines") or 0)
        return _Text("".join(lines[-tail:] if tail else lines))

    def _out(self, obj: dict, route: _Route, *, full: bool) -> dict:
        """The object as served at the requested version; LIST items of built-in kinds lack kind/apiVersion."""
        out = dict(obj)  # shallow: only kind/apiVersion change, and json.dumps copies the rest
        rt = route.rt
        assert rt is not None
        if not full:
            out.pop("kind", None)
            out.pop("apiVersion", None)
        else:
            out["apiVersion"] = f"{rt.group}/{route.version}" if rt.group else route.version
        return out

    def _discovery(self, route: _Route) -> dict:
        c = self.cluster
        types = c.resource_types()
        if route.group == "" and route.version == "":
            return self._top_level(route.path)
        if route.group == "" and route.version == "v1":
            return self._resource_list("v1", [t for t in types if t.group == ""])
        groups = c.groups()
        if route.group not in groups and route.group != "":
            raise not_found()
        if route.version == "":
            return self._api_group(route.group, groups[route.group])
        if route.version not in groups.get(route.group, []):
            raise not_found()
        return self._resource_list(f"{route.group}/{route.version}",
                                   [t for t in types if t.group == route.group and route.version in t.versions])

    def _top_level(self, path: str) -> dict:
        path = path.rstrip("/")
        if path == "/version":
            major, minor, _ = versions.KUBERNETES_VERSION.split(".")
            return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                    "minCompatibilityMajor": major, "minCompatibilityMinor": str(int(minor) - 1),
                    "gitVersion": f"v{versions.KUBERNETES_VERSION}",
                    "gitCommit": "66452049f3d692768c39c797b21b793dce80314e", "gitTreeState": "clean",
                    "buildDate": "2025-12-17T12:41:23Z", "goVersion": "go1.25.5", "compiler": "gc",
                    "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "172.18.0.2:6443"}]}
        groups = self.cluster.groups()
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self._api_group(g, vs, with_kind=False) for g, vs in groups.items()]}

    @staticmethod
    def _api_group(group: str, group_versions: list[str], with_kind: bool = True) -> dict:
        preferred = "v1" if "v1" in group_versions else group_versions[0]
        out = {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in group_versions],
               "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred}}
        return {"kind": "APIGroup", "apiVersion": "v1", **out} if with_kind else out

    @staticmethod
    def _resource_list(group_version: str, types: list[ResourceType]) -> dict:
        resources = []
        for t in types:
            entry = {"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
                     "verbs": list(t.verbs or _VERBS)}
            if t.short_names:
                entry["shortNames"] = list(t.short_names)
            resources.append(entry)
            for sub, verbs in t.subresources:
                resources.append({"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                                  "kind": "Scale" if sub == "scale" else t.kind, "verbs": list(verbs)})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}

    # -- port-forward (WebSocket, v4.channel.k8s.io) ----------------------------------------------
    def _portforward(self, h: _Handler, route: _Route, query: Mapping[str, str]) -> None:
        from websockets.frames import Opcode
        from websockets.server import ServerProtocol

        h.close_connection = True
        pod = self.cluster.get(route.rt, route.namespace or "", route.name or "") if route.rt else None
        if pod is None:
            raise not_found(route.rt, route.name)
        ports = [int(p) for p in query.get("ports", "").split(",") if p]
        if len(ports) != 1:
            raise ApiError(400, "BadRequest", "the fake port-forward supports exactly one port per request")
        port = ports[0]
        proto = ServerProtocol(subprotocols=["v4.channel.k8s.io"])
        raw = h.requestline + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.headers.items()) + "\r\n"
        proto.receive_data(raw.encode())
        request = proto.events_received()[0]
        proto.send_response(proto.accept(request))
        sock = h.connection
        le = port.to_bytes(2, "little")
        proto.send_binary(b"\x00" + le)
        proto.send_binary(b"\x01" + le)
        sock.sendall(b"".join(proto.data_to_send()))
        backend_addr = self.portforward_backends.get((route.name, port),
                                                     self.portforward_backends.get((None, port),
                                                                                   self.portforward_backends.get(
                                                                                       (None, 0))))
        backend: socket.socket | None = None
        try:
            if backend_addr is None:
                raise ConnectionRefusedError
            backend = socket.create_connection(backend_addr, timeout=2)
        except OSError:
            uid = pod["metadata"]["uid"]
            proto.send_binary(b"\x01" + (
                f"error forwarding port {port} to pod {uid}, uid : failed to execute portforward in network "
                f'namespace "/var/run/netns/cni-{uid[:8]}": failed to connect to localhost:{port} inside namespace '
                f'"{uid[:12]}", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused').encode())
            proto.send_close(1000)
            sock.sendall(b"".join(proto.data_to_send()))
            return
        _bridge(sock, backend, proto, Opcode)

    # convenience for tests asserting read-only behaviour
    def write_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]


def _bridge(sock: socket.socket, backend: socket.socket, proto: Any, opcode: Any) -> None:
    """Copy bytes between the WebSocket data channel 0 and the backend TCP connection."""
    backend.setblocking(True)
    try:
        while True:
            readable, _, _ = select.select([sock, backend], [], [], 10)
            if not readable:
                break
            if sock in readable:
                data = sock.recv(65536)
                if not data:
                    break
                proto.receive_data(data)
                closed = False
                for frame in proto.events_received():
                    if frame.opcode == opcode.BINARY and frame.data[:1] == b"\x00" and len(frame.data) > 1:
                        backend.sendall(frame.data[1:])
                    elif frame.opcode == opcode.CLOSE:
                        closed = True
                sock.sendall(b"".join(proto.data_to_send()))
                if closed:
                    break
            if backend in readable:
                data = backend.recv(65536)
                if not data:
                    proto.send_close(1000)
                    sock.sendall(b"".join(proto.data_to_send()))
                    break
                proto.send_binary(b"\x00" + data)
                sock.sendall(b"".join(proto.data_to_send()))
    except OSError:
        pass
    finally:
        backend.close()


def dead_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def write_kubeconfig_for(path: str | Path, servers: Mapping[str, str], current: str | None = None,
                         token: str = DEFAULT_TOKEN) -> str:
    """A kubeconfig with one context per (name -> server URL), e.g. for a dead server."""
    cfg = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in servers.items()],
        "users": [{"name": n, "user": {"token": token}} for n in servers],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in servers],
        "current-context": current or next(iter(servers)),
    }
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def served_objects(api: FakeApiServer, kinds: Iterable[str] = ("Namespace", "Pod", "Deployment", "Service",
                                                               "Gateway", "VirtualService", "DestinationRule",
                                                               "ServiceEntry")) -> list[dict]:
    """What ``kubectl get <kinds> -A -o yaml`` would show (items with kind/apiVersion)."""
    out = []
    for kind in kinds:
        out += api.objects(kind)
    return out


__all__ = [
    "FakeApiServer", "FakeGateway", "RecordedRequest", "bookinfo_routing", "course_objects", "dead_url", "gateway",
    "label_selector_matches", "served_objects", "virtual_service", "write_kubeconfig_for",
]


# ---------------------------------------------------------------------------------------------
# An HTTP server imitating what an Istio ingress gateway answers (istio-request-outcomes.md)


class FakeGateway(_LoopbackServer):
    """Answers like an ingress gateway: ``routes`` maps a path prefix to an outcome for requests
    whose Host is in ``hosts``; anything else gets Envoy's 404 NR (empty body). Outcomes:
    ``app`` (200 from Bookinfo), ``app-404`` (the application's own 404), ``nc`` (503, empty:
    cluster_not_found), ``uh`` (503 ``no healthy upstream``). Upstream answers carry
    ``x-envoy-upstream-service-time``; local replies do not. ``requests`` records (method, Host, path).
    """

    def __init__(self, routes: Mapping[str, str] | None = None, hosts: Iterable[str] = ("*",)):
        self.routes = dict(routes if routes is not None else {"/productpage": "app"})
        self.hosts = tuple(hosts)
        self.requests: list[tuple[str, str, str]] = []

    def answer(self, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
        host_ok = "*" in self.hosts or host.split(":")[0] in self.hosts
        outcome = next((o for prefix, o in sorted(self.routes.items(), key=lambda kv: -len(kv[0]))
                        if path.startswith(prefix)), None) if host_ok else None
        upstream = {"x-envoy-upstream-service-time": "7"}
        if outcome == "app":
            body = b"<!DOCTYPE html><html><head><title>Simple Bookstore App</title></head><body>...</body></html>"
            return 200, {"content-type": "text/html; charset=utf-8", **upstream}, body
        if outcome == "app-404":
            return 404, {"content-type": "text/html; charset=utf-8", **upstream}, b"<h1>Not Found</h1>"
        if outcome == "uh":
            return 503, {"content-type": "text/plain"}, b"no healthy upstream"
        if outcome == "nc":
            return 503, {}, b""
        return 404, {}, b""

    def start(self) -> Self:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def version_string(self) -> str:
                return "istio-envoy"  # Envoy overwrites Server on every response, local or proxied

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                host = self.headers.get("Host", "")
                gateway.requests.append((self.command, host, self.path))
                status, headers, body = gateway.answer(host, self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_HEAD = do_POST = do_GET

        return self._run(_QuietServer(("127.0.0.1", 0), Handler))


STATE_RECORD_FIELDS = ("namespaces", "pods", "deployments", "services", "gateways", "virtual_services",
                       "destination_rules", "service_entries", "istio_operators")


def state_records(state: Any) -> dict:
    """A State's records (and Istio flag, load-finding codes) without where each was read from:
    origins differ between the live, snapshot and simulated sources by design, the model must not."""
    from dataclasses import replace

    out: dict = {"istio_installed": state.istio_installed,
                 "findings": sorted(f.code for f in state.load_findings)}
    for name in STATE_RECORD_FIELDS:
        records = [replace(r, meta=replace(r.meta, origin="")) for r in getattr(state, name)]
        out[name] = sorted(records, key=repr)
    return out
