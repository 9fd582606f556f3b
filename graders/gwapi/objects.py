"""Raw gateway.networking.k8s.io objects -> frozen records (GatewayClass, Gateway, HTTPRoute, ReferenceGrant).

Defaults are applied as the v1.5.1 CRDs' OpenAPI defaults would on ``kubectl apply`` (what istiod then
reads): ``allowedRoutes.namespaces.from: Same``, parentRef group/kind Gateway, a rule without matches
gets ``PathPrefix /``, a match without path gets ``PathPrefix /``, header and query matches are
``Exact``, a backend's weight is 1 and its kind Service. ``status`` is kept (live and snapshot
mode read what istiod wrote) so the analyzer can compare it with the prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graders.gwapi import GATEWAY_KIND, GROUP
from graders.objects import Invalid, RawObject, _frozen, _get, _labels, _mappings, _port_number, parse_meta
from graders.state import EMPTY, Meta


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class GatewayClass:
    meta: Meta
    controller: str


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    protocol: str
    hostname: str | None = None
    allowed_from: str = "Same"  # Same | All | Selector
    ns_selector: Mapping[str, str] | None = None  # matchLabels of from: Selector
    ns_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, operator, values)
    kinds: tuple[tuple[str, str], ...] = ()  # allowedRoutes.kinds as (group, kind); () = protocol defaults
    tls_mode: str | None = None


@dataclass(frozen=True)
class ListenerStatus:
    name: str
    attached_routes: int
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class ApiGateway:
    meta: Meta
    class_name: str
    listeners: tuple[Listener, ...]
    addresses: tuple[tuple[str, str], ...] = ()  # spec.addresses as (type or "", value)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    generation: int = 1
    status_read: bool = False  # True when the object carried a status block (live, snapshot)
    conditions: tuple[Condition, ...] = ()
    listener_status: tuple[ListenerStatus, ...] = ()
    status_addresses: tuple[str, ...] = ()

    def listener(self, name: str) -> Listener | None:
        return next((ln for ln in self.listeners if ln.name == name), None)


@dataclass(frozen=True)
class ParentRef:
    name: str
    namespace: str  # defaulted to the route's namespace
    group: str = GROUP
    kind: str = "Gateway"
    section: str | None = None
    port: int | None = None

    def describe(self) -> str:
        out = f"{self.namespace}/{self.name}"
        if self.section:
            out += f" sectionName {self.section}"
        if self.port:
            out += f" port {self.port}"
        return out if (self.group, self.kind) == (GROUP, "Gateway") else f"{self.kind}.{self.group} {out}"


@dataclass(frozen=True)
class BackendRef:
    name: str
    namespace: str | None = None  # None: the route's namespace
    group: str = ""
    kind: str = "Service"
    port: int | None = None
    weight: int = 1


@dataclass(frozen=True)
class ValueMatch:
    name: str
    type: str  # Exact | RegularExpression
    value: str


@dataclass(frozen=True)
class RouteMatch:
    path_type: str = "PathPrefix"  # Exact | PathPrefix | RegularExpression
    path: str = "/"
    headers: tuple[ValueMatch, ...] = ()
    query: tuple[ValueMatch, ...] = ()
    method: str | None = None

    @property
    def catch_all(self) -> bool:
        """Istio's IsCatchAllRoute on the Envoy route: prefix ``/`` (or regex ``.*``), no header or
        query matcher (a method is a header matcher in Envoy)."""
        if self.headers or self.query or self.method:
            return False
        return (self.path_type == "PathPrefix" and self.path.rstrip("/") == "") or \
            (self.path_type == "RegularExpression" and self.path == ".*")

    def describe(self) -> str:
        parts = [f"{self.path_type} {self.path}"]
        if self.method:
            parts.append(f"method {self.method}")
        parts += [f"header {h.name} {h.type} {h.value}" for h in self.headers]
        parts += [f"query {q.name} {q.type} {q.value}" for q in self.query]
        return ", ".join(parts)


@dataclass(frozen=True)
class Redirect:
    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    status_code: int = 302  # CRD default
    path: tuple[str, str] | None = None  # (ReplaceFullPath | ReplacePrefixMatch, value)


@dataclass(frozen=True)
class RouteRule:
    index: int
    name: str | None
    matches: tuple[RouteMatch, ...]
    backends: tuple[BackendRef, ...] = ()
    redirect: Redirect | None = None
    filters: tuple[str, ...] = ()  # filter types, in order


@dataclass(frozen=True)
class RouteParentStatus:
    ref: ParentRef
    controller: str
    conditions: tuple[Condition, ...] = ()

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)


@dataclass(frozen=True)
class HTTPRoute:
    meta: Meta
    parent_refs: tuple[ParentRef, ...]
    hostnames: tuple[str, ...] = ()
    rules: tuple[RouteRule, ...] = ()
    generation: int = 1
    status_read: bool = False
    status_parents: tuple[RouteParentStatus, ...] = ()


@dataclass(frozen=True)
class ReferenceGrant:
    meta: Meta
    sources: tuple[tuple[str, str, str], ...]  # from: (group, kind, namespace)
    targets: tuple[tuple[str, str, str | None], ...]  # to: (group, kind, name or None for all)


# --- parsing ------------------------------------------------------------------------------------
def _conditions(obj: Mapping, path: str) -> tuple[Condition, ...]:
    out = []
    for c in _get(obj, path, list, []):
        if isinstance(c, Mapping) and isinstance(c.get("type"), str):
            out.append(Condition(c["type"], str(c.get("status", "Unknown")), str(c.get("reason", "")),
                                 str(c.get("message", ""))))
    return tuple(out)


def _str(d: Mapping, key: str, where: str, default: Any = None) -> Any:
    return _get(d, key, str, default, where)


def parse_gateway_class(raw: RawObject) -> GatewayClass:
    meta = parse_meta(raw, "GatewayClass", namespaced=False)
    controller = _str(raw.obj, "spec.controllerName", "")
    if not controller:
        raise Invalid("spec.controllerName", "is required", "set spec.controllerName: istio.io/gateway-controller")
    return GatewayClass(meta, controller)


def _listener(item: Mapping, w: str) -> Listener:
    name = _str(item, "name", w)
    if not name:
        raise Invalid(f"{w}name", "is required")
    protocol = _str(item, "protocol", w)
    if not protocol:
        raise Invalid(f"{w}protocol", "is required", "set protocol: HTTP (or HTTPS, TLS)")
    ns = _get(item, "allowedRoutes.namespaces", dict, {}, w)
    sel = ns.get("selector") if isinstance(ns.get("selector"), Mapping) else None
    exprs = []
    if sel is not None:
        for _, e, ew in _mappings(sel, "matchExpressions", f"{w}allowedRoutes.namespaces.selector."):
            values = tuple(str(v) for v in _get(e, "values", list, [], ew))
            exprs.append((_str(e, "key", ew, ""), _str(e, "operator", ew, ""), values))
    kinds = tuple((_str(k, "group", kw, GROUP), _str(k, "kind", kw, ""))
                  for _, k, kw in _mappings(item, "allowedRoutes.kinds", w))
    return Listener(
        name=name, port=_port_number(item.get("port"), f"{w}port"), protocol=protocol,
        hostname=_str(item, "hostname", w), allowed_from=str(ns.get("from") or "Same"),
        ns_selector=_labels(sel, "matchLabels", f"{w}allowedRoutes.namespaces.selector.") if sel is not None else None,
        ns_expressions=tuple(exprs), kinds=kinds, tls_mode=_str(item, "tls.mode", w))


def parse_gateway(raw: RawObject) -> ApiGateway:
    obj = raw.obj
    meta = parse_meta(raw, GATEWAY_KIND)
    class_name = _str(obj, "spec.gatewayClassName", "")
    if not class_name:
        raise Invalid("spec.gatewayClassName", "is required", "set spec.gatewayClassName: istio")
    listeners = tuple(_listener(item, w) for _, item, w in _mappings(obj, "spec.listeners"))
    if not listeners:
        raise Invalid("spec.listeners", "must list at least one listener")
    addresses = tuple((_str(a, "type", w, "") or "", _str(a, "value", w, "") or "")
                      for _, a, w in _mappings(obj, "spec.addresses"))
    annotations = {k: v for k, v in _get(obj, "metadata.annotations", dict, {}).items() if isinstance(v, str)}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else None
    listener_status = []
    status_addresses: list[str] = []
    if status is not None:
        for ls in _get(obj, "status.listeners", list, []):
            if isinstance(ls, Mapping) and isinstance(ls.get("name"), str):
                attached = ls.get("attachedRoutes")
                listener_status.append(ListenerStatus(ls["name"], attached if isinstance(attached, int) else 0,
                                                      _conditions(ls, "conditions")))
        status_addresses = [str(a.get("value")) for a in _get(obj, "status.addresses", list, [])
                            if isinstance(a, Mapping) and a.get("value")]
    return ApiGateway(meta, class_name, listeners, addresses, _frozen(annotations),
                      _get(obj, "metadata.generation", int, 1), status is not None,
                      _conditions(obj, "status.conditions"), tuple(listener_status), tuple(status_addresses))


def _parent_ref(p: Mapping, w: str, route_ns: str) -> ParentRef:
    name = _str(p, "name", w)
    if not name:
        raise Invalid(f"{w}name", "is required")
    port = p.get("port")
    return ParentRef(name, _str(p, "namespace", w) or route_ns, _str(p, "group", w, GROUP),
                     _str(p, "kind", w, "Gateway"), _str(p, "sectionName", w),
                     _port_number(port, f"{w}port") if port is not None else None)


def _value_matches(m: Mapping, key: str, w: str) -> tuple[ValueMatch, ...]:
    out = []
    for _, h, hw in _mappings(m, key, w):
        name, value = _str(h, "name", hw), _str(h, "value", hw)
        if name is None or value is None:
            raise Invalid(f"{hw}name", "name and value are required")
        out.append(ValueMatch(name.lower() if key == "headers" else name, _str(h, "type", hw, "Exact"), value))
    return tuple(out)


def _match(m: Mapping, w: str) -> RouteMatch:
    path_type = _str(m, "path.type", w, "PathPrefix")
    if path_type not in ("Exact", "PathPrefix", "RegularExpression"):
        raise Invalid(f"{w}path.type", f"{path_type!r} is not Exact, PathPrefix or RegularExpression")
    return RouteMatch(path_type, _str(m, "path.value", w, "/"), _value_matches(m, "headers", w),
                      _value_matches(m, "queryParams", w), _str(m, "method", w))


def _redirect(f: Mapping, w: str) -> Redirect:
    r = _get(f, "requestRedirect", dict, {}, w)
    rw = f"{w}requestRedirect."
    port = r.get("port")
    path = r.get("path") if isinstance(r.get("path"), Mapping) else None
    path_value = None
    if path is not None:
        kind = _str(path, "type", f"{rw}path.", "")
        path_value = (kind, _str(path, "replaceFullPath" if kind == "ReplaceFullPath" else "replacePrefixMatch",
                                 f"{rw}path.", "") or "")
    return Redirect(_str(r, "scheme", rw), _str(r, "hostname", rw),
                    _port_number(port, f"{rw}port") if port is not None else None,
                    _get(r, "statusCode", int, 302, rw), path_value)


def _rule(i: int, r: Mapping, w: str) -> RouteRule:
    matches = tuple(_match(m, mw) for _, m, mw in _mappings(r, "matches", w)) or (RouteMatch(),)
    backends = []
    for _, b, bw in _mappings(r, "backendRefs", w):
        name = _str(b, "name", bw)
        if not name:
            raise Invalid(f"{bw}name", "is required")
        port = b.get("port")
        backends.append(BackendRef(name, _str(b, "namespace", bw), _str(b, "group", bw, ""),
                                   _str(b, "kind", bw, "Service"),
                                   _port_number(port, f"{bw}port") if port is not None else None,
                                   _get(b, "weight", int, 1, bw)))
    filters, redirect = [], None
    for _, f, fw in _mappings(r, "filters", w):
        ftype = _str(f, "type", fw, "")
        filters.append(ftype)
        if ftype == "RequestRedirect":
            redirect = _redirect(f, fw)
    return RouteRule(i, _str(r, "name", w), matches, tuple(backends), redirect, tuple(filters))


def parse_http_route(raw: RawObject) -> HTTPRoute:
    obj = raw.obj
    meta = parse_meta(raw, "HTTPRoute")
    parents = tuple(_parent_ref(p, w, meta.namespace) for _, p, w in _mappings(obj, "spec.parentRefs"))
    hostnames = _get(obj, "spec.hostnames", list, [])
    if not all(isinstance(h, str) for h in hostnames):
        raise Invalid("spec.hostnames", "must be a list of strings")
    rules = tuple(_rule(i, r, w) for i, r, w in _mappings(obj, "spec.rules")) or \
        (RouteRule(0, None, (RouteMatch(),)),)
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else None
    status_parents = []
    if status is not None:
        for _, p, w in _mappings(obj, "status.parents"):
            ref = p.get("parentRef") if isinstance(p.get("parentRef"), Mapping) else {}
            if ref.get("name"):
                status_parents.append(RouteParentStatus(_parent_ref(ref, f"{w}parentRef.", meta.namespace),
                                                        str(p.get("controllerName", "")), _conditions(p, "conditions")))
    return HTTPRoute(meta, parents, tuple(hostnames), rules, _get(obj, "metadata.generation", int, 1),
                     status is not None, tuple(status_parents))


def parse_reference_grant(raw: RawObject) -> ReferenceGrant:
    obj = raw.obj
    meta = parse_meta(raw, "ReferenceGrant")
    sources = tuple((_str(f, "group", w, "") or "", _str(f, "kind", w, "") or "", _str(f, "namespace", w, "") or "")
                    for _, f, w in _mappings(obj, "spec.from"))
    targets = tuple((_str(t, "group", w, "") or "", _str(t, "kind", w, "") or "", _str(t, "name", w))
                    for _, t, w in _mappings(obj, "spec.to"))
    return ReferenceGrant(meta, sources, targets)


PARSERS = {
    "GatewayClass": parse_gateway_class,
    "Gateway": parse_gateway,
    "HTTPRoute": parse_http_route,
    "ReferenceGrant": parse_reference_grant,
}
