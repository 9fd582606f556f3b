"""The route table istiod builds for one Gateway API Gateway and port, as Envoy then matches it.

- Each accepted (HTTPRoute, listener, route hostname) gives a virtual host whose domain is the narrower
  of the listener and route hostnames (pkg/config/host/names.go Intersection); a route hostname that a
  more specific listener on the same port and protocol claims is left out (listener isolation,
  conversion.go:1696-1724, applied at route_collections.go:166-170).
- Routes on the same (listener, hostname) are merged in creationTimestamp, namespace, name order
  (conversion.go:85-95, route_collections.go:826) and stable-sorted: Exact > PathPrefix > regex, longer
  path first, a method first, more headers first, more query parameters first (conversion.go:468-495
  sortHTTPRoutes, 509-538 ranks; route_collections.go:887). Each ``matches[]`` entry is its own route
  (route_collections.go:92-101 splits every rule into one route per match).
- Nothing after the first catch-all (prefix ``/`` or regex ``.*`` with no header, query or method
  matcher) reaches Envoy (networking/core/route/route.go:414-435, IsCatchAllRoute 1634-1648).
- A route with a hard conversion error (InvalidDestination, InvalidFilter) produces no routes at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from graders.gwapi.attach import HARD_ERRORS, parent_results, route_backend_error
from graders.gwapi.objects import ApiGateway, HTTPRoute, Listener, RouteMatch, RouteRule
from graders.mesh import host_subset_of, hosts_intersect, hosts_match
from graders.state import State

_URI_RANK = {"Exact": 3, "PathPrefix": 2, "RegularExpression": 1}


@dataclass(frozen=True)
class RouteEntry:
    route: HTTPRoute
    rule: RouteRule
    match: RouteMatch
    listener: Listener

    @property
    def name(self) -> str:
        """The Envoy route name: rules[].name, else ``<ns>.<route>.<rule index>`` (conversion.go:106-112)."""
        return self.rule.name or f"{self.route.meta.namespace}.{self.route.meta.name}.{self.rule.index}"


@dataclass
class VirtualHost:
    domain: str
    entries: list[RouteEntry] = field(default_factory=list)
    unreachable: list[RouteEntry] = field(default_factory=list)  # after the first catch-all


def _precedence(e: RouteEntry) -> tuple:
    m = e.match
    path = (m.path.rstrip("/") or "/") if m.path_type == "PathPrefix" else m.path
    return (-_URI_RANK[m.path_type], -len(path), m.method is None, -len(m.headers), -len(m.query))


def allowed_by_isolation(listener: Listener, others: list[Listener], route_host: str) -> bool:
    """conversion.go:1696-1724: a wildcard (or empty) listener does not serve a route hostname that a
    more specific listener on the same port and protocol covers."""
    ours = listener.hostname or ""
    if ours and not ours.startswith("*"):
        return True
    if ours and not hosts_match(route_host, ours):
        return False
    for other in others:
        check = other.hostname or ""
        if other is listener or check == ours or len(ours) > len(check):
            continue
        if host_subset_of(route_host, check):
            return False
    return True


def _order(route: HTTPRoute) -> tuple:
    ts = route.meta.created.timestamp() if route.meta.created else 0.0
    return (ts, route.meta.namespace, route.meta.name)


def route_table(state: State, gw: ApiGateway, port: int) -> dict[str, VirtualHost]:
    return state.memo(("gwapi-table", id(gw), port), lambda: _route_table(state, gw, port))


def _route_table(state: State, gw: ApiGateway, port: int) -> dict[str, VirtualHost]:
    vhosts: dict[str, VirtualHost] = {}
    on_port = [ln for ln in gw.listeners if ln.port == port]
    for route in sorted(state.http_routes, key=_order):
        err = route_backend_error(state, route)
        if err is not None and err.reason in HARD_ERRORS:
            continue
        for parent in parent_results(state, route):
            if parent.gateway is not gw or not parent.accepted:
                continue
            for listener in parent.accepted_listeners:
                if listener.port != port:
                    continue
                peers = [ln for ln in on_port if ln.protocol == listener.protocol]
                for raw_host in route.hostnames or ("*",):
                    if not allowed_by_isolation(listener, peers, raw_host):
                        continue
                    domain = hosts_intersect(listener.hostname or "*", raw_host)
                    if domain is None:
                        continue
                    vh = vhosts.setdefault(domain, VirtualHost(domain))
                    vh.entries += [RouteEntry(route, rule, m, listener) for rule in route.rules for m in rule.matches
                                   if RouteEntry(route, rule, m, listener) not in vh.entries]
    for vh in vhosts.values():
        vh.entries.sort(key=_precedence)
        cut = next((i for i, e in enumerate(vh.entries) if e.match.catch_all), None)
        if cut is not None:
            vh.entries, vh.unreachable = vh.entries[: cut + 1], vh.entries[cut + 1:]
    return vhosts


def path_matches(m: RouteMatch, path: str) -> bool:
    """PathPrefix is segment-aware with any trailing '/' trimmed (Envoy path_separated_prefix,
    route.go:1095-1115); Exact is exact; RegularExpression is a full RE2 match. Case-sensitive."""
    if m.path_type == "Exact":
        return path == m.path
    if m.path_type == "PathPrefix":
        prefix = m.path.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")
    try:
        return re.fullmatch(m.path, path) is not None
    except re.error:
        return False


def _value(kind: str, pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if kind == "RegularExpression":
        try:
            return re.fullmatch(pattern, value) is not None
        except re.error:
            return False
    return value == pattern


def entry_matches(m: RouteMatch, method: str, path: str, query: dict[str, str],
                  headers: dict[str, str]) -> tuple[bool, str]:
    """All conditions of one match (ANDed); the reason when it does not match."""
    if not path_matches(m, path):
        return False, f"path {path} does not match {m.path_type} {m.path}"
    if m.method and m.method != method:
        return False, f"method {method} is not {m.method}"
    for h in m.headers:
        if not _value(h.type, h.value, headers.get(h.name)):
            return False, f"header {h.name} does not match {h.type} {h.value}"
    for q in m.query:
        if not _value(q.type, q.value, query.get(q.name)):
            return False, f"query parameter {q.name} does not match {q.type} {q.value}"
    return True, ""
