"""Explain one HTTP request from outside the cluster through an ingress gateway, from state alone.

Each step names the objects that decided it, in the order the packet meets them: the gateway
Service and its port, how it is reachable from outside, the targetPort and the pods behind it,
the Envoy listener istiod builds from the Gateways that select those pods, the virtual host
chosen by the Host header, the first matching route, and the destination's cluster and
endpoints. It is a model of Istio 1.30's behaviour (see shared/reference/istio-request-outcomes.md);
where that behaviour is uncertain the step says so instead of guessing.

Outcomes: ok (routed; the status is the application's), unreachable (no external path),
connection-refused (no listener or no such Service port), not-found (gateway 404 NR),
no-healthy-upstream (503 UH), no-cluster (503 NC), and connection-closed (an HTTPS/TLS-only
listener, or a TCP listener whose destination has no cluster or endpoint: a plain HTTP request gets
no HTTP response). A TCP server with no matching ``tcp`` route has no listener at all (refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graders import mesh
from graders.analyzers.vs_destinations import known_external, subset_labels
from graders.mesh import ListenerServer, resolve_gateway_ref, resolve_host, string_matches, target_port_number
from graders.state import Gateway, HttpMatch, HttpRoute, Pod, Server, Service, State, StringMatch, VirtualService

OUTCOMES = ("ok", "unreachable", "connection-refused", "not-found", "no-healthy-upstream", "no-cluster",
            "connection-closed", "tls-handshake-failed", "backend-invalid")
OUTCOME_STATUS = {"not-found": 404, "no-healthy-upstream": 503, "no-cluster": 503, "backend-invalid": 500}
OUTCOME_SUMMARY = {
    "ok": "routed to the application (its response decides the status)",
    "unreachable": "no path from outside the cluster",
    "connection-refused": "connection refused (nothing listens there)",
    "not-found": "404 from the gateway (flag NR: no virtual host or route matched)",
    "no-healthy-upstream": "503 from the gateway, body 'no healthy upstream' (flag UH)",
    "no-cluster": "503 from the gateway, empty body (flag NC: the upstream cluster does not exist)",
    "connection-closed": "no HTTP response: the listener expects TLS or raw TCP, so the connection is closed",
    # h9-tls (issue #14): see graders/trace_tls.py
    "tls-handshake-failed": "the TLS handshake fails: no filter chain for the SNI, the certificate is not available, "
                            "or the port does not speak TLS (curl exit 35)",
    # h10-gwapi (issue #15): Gateway API routes answer an invalid backend with 500 (classic: 503 NC)
    "backend-invalid": "500 from the gateway: the Gateway API backend is missing, not permitted or of an invalid kind",
}
DEFAULT_GATEWAY = "istio-system/istio-ingressgateway"


@dataclass(frozen=True)
class Request:
    gateway: str = DEFAULT_GATEWAY
    port: int = 80
    host: str = "localhost"
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    tls: bool = False  # h9-tls: the client opens TLS first (trace --tls)
    sni: str | None = None  # None: the Host (without port); "": no SNI (--no-sni)

    def to_json(self) -> dict[str, Any]:
        out = {"gateway": self.gateway, "port": self.port, "host": self.host, "path": self.path,
               "method": self.method, "headers": dict(self.headers)}
        if self.tls:
            out["tls"] = True
            out["sni"] = self.sni
        return out


@dataclass(frozen=True)
class Step:
    step: str
    result: str
    objects: tuple[str, ...] = ()
    uncertain: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "result": self.result, "objects": list(self.objects)}
        if self.uncertain:
            out["uncertain"] = True
        return out


@dataclass(frozen=True)
class Trace:
    request: Request
    outcome: str
    http_status: int | None
    destination: dict[str, Any] | None
    steps: tuple[Step, ...]
    mode: str = ""
    tls: dict[str, Any] | None = None  # h9-tls: {"sni", "server", "mode", "credential"} for a TLS client

    @property
    def summary(self) -> str:
        return OUTCOME_SUMMARY[self.outcome]

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "http_status": self.http_status, "destination": self.destination,
                "steps": [s.to_json() for s in self.steps], "request": self.request.to_json(), "mode": self.mode,
                **({"tls": self.tls} if self.request.tls else {})}


class _Done(Exception):
    def __init__(self, outcome: str, status: int | None = None, destination: dict | None = None):
        self.outcome, self.status, self.destination = outcome, status, destination


@dataclass
class _VirtualHosts:
    """A listener's virtual hosts, by domain: routes in merge order, the objects they come from,
    what istiod left out, and which ones redirect plain HTTP (the Gateway whose httpsRedirect did it)."""

    routes: dict[str, list[RouteCandidate]] = field(default_factory=dict)
    built_from: dict[str, list[str]] = field(default_factory=dict)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    require_tls: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteCandidate:
    """One Envoy route: istiod emits a route per match condition of a VirtualService rule."""

    route: HttpRoute
    vs: VirtualService
    gateway: Gateway
    server: Server
    match: HttpMatch | None = None  # None: the rule has no match conditions

    @property
    def catch_all(self) -> bool:
        return self.match is None or self.match.catch_all


class _Tracer:
    def __init__(self, state: State, req: Request):
        self.state, self.req = state, req
        self.steps: list[Step] = []
        self.proxy_ns = "istio-system"
        self.tls_info: dict[str, Any] | None = None  # filled by trace_tls for a TLS client

    def add(self, step: str, result: str, *objects: str, uncertain: bool = False) -> None:
        self.steps.append(Step(step, result, tuple(o for o in objects if o), uncertain))

    def run(self) -> Trace:
        try:
            self._trace()
            raise AssertionError("trace ended without an outcome")  # pragma: no cover
        except _Done as done:
            status = done.status if done.status is not None else OUTCOME_STATUS.get(done.outcome)
            return Trace(self.req, done.outcome, status, done.destination, tuple(self.steps), self.state.mode,
                         self.tls_info)

    # --- the path of the request ---------------------------------------------------------------
    def _trace(self) -> None:
        svc = self._gateway_service()
        sp = svc.port(self.req.port)
        if sp is None:
            self.add("service-port", f"Service {svc.meta.key} has no port {self.req.port} (it has "
                     f"{', '.join(p.label() for p in svc.ports) or 'no ports'}); nothing accepts the connection.",
                     svc.meta.ref)
            raise _Done("connection-refused")
        self._reachability(svc, sp)
        pod = self._endpoints(svc, sp)
        self.proxy_ns = pod.meta.namespace
        target = target_port_number(sp, pod)
        servers = self._listener(pod, target, svc)
        if self.req.tls:  # h9-tls (issue #14): a TLS client takes a filter chain by SNI (graders/trace_tls.py)
            from graders import trace_tls

            trace_tls.follow(self, servers, pod)
        http_servers = self._protocol(servers)
        vhost_routes = self._virtual_host(http_servers, pod)
        self._route(vhost_routes)

    def _gateway_service(self) -> Service:
        ns, _, name = self.req.gateway.partition("/")
        svc = self.state.service(ns, name) if name else None
        if svc is None:
            gateways = [s.meta.key for s in self.state.services if any(p.is_gateway for p in self.state.pods
                                                                      if s.selects(p))]
            self.add("gateway-service", f"There is no Service {self.req.gateway}. Gateway Services in this cluster: "
                     f"{', '.join(sorted(gateways)) or 'none'}.", f"Service {self.req.gateway}")
            raise _Done("unreachable")
        self.add("gateway-service", f"Service {svc.meta.key} is type {svc.type}.", svc.meta.ref)
        return svc

    def _reachability(self, svc: Service, sp: Any) -> None:
        if svc.type == "ClusterIP" or svc.type == "ExternalName":
            self.add("reachability", f"Service {svc.meta.key} is {svc.type}: it has no node port and no external "
                     "IP, so a client outside the cluster cannot reach it at all.", svc.meta.ref)
            raise _Done("unreachable")
        if sp.node_port:
            lb = (" On kind no load balancer assigns an EXTERNAL-IP (it stays <pending>), so the node port is "
                  "the way in." if svc.type == "LoadBalancer" else "")
            self.add("reachability", f"Port {sp.port} is reachable from outside on nodePort {sp.node_port} of every "
                     f"node (the course's kind cluster maps its fixed node ports to ports on 127.0.0.1).{lb}",
                     svc.meta.ref)
        else:
            self.add("reachability", f"Service {svc.meta.key} is {svc.type} but port {sp.port} shows no nodePort "
                     "here (Kubernetes assigns a random one when none is set).", svc.meta.ref, uncertain=True)

    def _endpoints(self, svc: Service, sp: Any) -> Pod:
        pods = self.state.ready_pods_for(svc)
        if not pods:
            self.add("gateway-pods", f"Service {svc.meta.key} selects no ready pod, so kube-proxy has no endpoint "
                     "for it and the connection is refused.", svc.meta.ref)
            raise _Done("connection-refused")
        pod = pods[0]
        target = target_port_number(sp, pod)
        if target is None:
            self.add("target-port", f"targetPort '{sp.target_port}' names no container port of {pod.meta.ref}.",
                     svc.meta.ref, pod.meta.ref)
            raise _Done("connection-refused")
        self.add("target-port", f"Service port {sp.port} forwards to targetPort {target} on {len(pods)} ready "
                 f"pod(s) of {mesh.workload_of(pod)}.", svc.meta.ref, mesh.workload_ref(pod))
        return pod

    def _listener(self, pod: Pod, target: int | None, svc: Service) -> list[ListenerServer]:
        groups, dropped = self.state.memo(("listeners", id(pod)), lambda: mesh.listeners_for_pod(self.state, pod))
        servers = [ls for (port, bind), group in groups.items() if port == target and not bind for ls in group]
        for ls in dropped:
            if ls.listener == target:
                self.add("listener", f"Gateway {ls.gateway.meta.key} asks for port {ls.server.port}, which resolves "
                         f"to {ls.listener} (< 1024) on an unprivileged pod: istiod skips it.", ls.gateway.meta.ref)
        if target in mesh.RESERVED_PORTS:
            self._reserved(mesh.RESERVED_PORTS[target], servers)
        if not servers:
            selecting = [g.meta.key for g in self.state.ordered_gateways if pod in mesh.gateway_pods(self.state, g)]
            elsewhere = sorted({ls.listener for group in groups.values() for ls in group})
            self.add("listener", f"No Gateway server resolves to port {target} on this workload, so Envoy has no "
                     f"listener there and the pod refuses the connection. Gateways selecting it: "
                     f"{', '.join(selecting) or 'none'}; listeners they do open: "
                     f"{', '.join(map(str, elsewhere)) or 'none'}.",
                     *(f"Gateway {k}" for k in selecting))
            raise _Done("connection-refused")
        names = ", ".join(f"{ls.gateway.meta.key} (port {ls.server.port}{self._translated(ls)})" for ls in servers)
        self.add("listener", f"Envoy listens on {target}, built from: {names}. Gateways are merged oldest first.",
                 *dict.fromkeys(ls.gateway.meta.ref for ls in servers))
        return servers

    def _reserved(self, port: mesh.ReservedPort, servers: list[ListenerServer]) -> None:
        """A request to one of the proxy's reserved ports meets what already listens there, whatever
        the Gateways say (see mesh.RESERVED_PORTS for the sources)."""
        gateways = list(dict.fromkeys(ls.gateway.meta.ref for ls in servers))
        if gateways:
            self.add("listener", f"{', '.join(gateways)} asks for a listener on {port.port}, which is reserved: "
                     f"{port.owner} already uses it in every gateway pod. istiod does not check reserved ports for "
                     f"gateways and builds the listener anyway, but {port.collision}. The Gateway's routes never "
                     "apply here.", *gateways, uncertain=not port.exact)
        else:
            self.add("listener", f"Port {port.port} is reserved: {port.owner} listens there in every gateway pod.",
                     uncertain=not port.exact)
        path = self.req.path.partition("?")[0]
        if not port.paths:
            self.add("listener", f"{port.owner[0].upper()}{port.owner[1:]} does not accept connections from outside "
                     "the pod, and the Gateway's listener could not bind: the connection is refused.",
                     uncertain=True)
            raise _Done("connection-refused")
        if any(path.startswith(p) for p in port.paths):
            self.add("route", f"{port.owner[0].upper()}{port.owner[1:]} answers {path} itself (200), not an "
                     "application.", uncertain=not port.exact)
            raise _Done("ok", 200)
        self.add("route", f"{port.owner[0].upper()}{port.owner[1:]} only answers {', '.join(port.paths)}; "
                 f"{path} gets 404.", uncertain=not port.exact)
        raise _Done("not-found")

    @staticmethod
    def _translated(ls: ListenerServer) -> str:
        if ls.resolved.service is not None and ls.listener != ls.server.port:
            return f" = Service port {ls.server.port} -> targetPort {ls.listener}"
        return ""

    def _protocol(self, servers: list[ListenerServer]) -> list[ListenerServer]:
        kept, rejected, plain = mesh.merge_port(servers)
        for ls in rejected:
            first = plain or kept[0]
            self.add("protocol", f"Server {ls.server.protocol} of {ls.gateway.meta.key} conflicts with the "
                     f"{first.server.protocol} server of {first.gateway.meta.key} that came first on this port; "
                     "istiod rejects it (\"conflict with existing server\", pilot/pkg/model/gateway.go:298).",
                     ls.gateway.meta.ref)
        if plain is None:
            first = kept[0]
            self.add("protocol", f"The listener serves {first.server.protocol} (from {first.gateway.meta.key}); a "
                     "plain HTTP request does not match its TLS filter chains and the connection is closed "
                     "without an HTTP response.", first.gateway.meta.ref)
            raise _Done("connection-closed")
        tls = [ls for ls in kept if mesh.protocol_family(ls.server.protocol) == "tls"]
        if tls:
            self.add("protocol", f"The listener also has TLS filter chains (servers of "
                     f"{', '.join(dict.fromkeys(ls.gateway.meta.key for ls in tls))}), chosen by SNI; a plain "
                     f"request has no SNI and takes the {plain.server.protocol} filter chain.",
                     *dict.fromkeys(ls.gateway.meta.ref for ls in tls))
        if mesh.protocol_family(plain.server.protocol) != "http":
            self._tcp(plain, others=bool(tls))
        return [ls for ls in kept if mesh.protocol_family(ls.server.protocol) == "http"]

    def _virtual_host(self, servers: list[ListenerServer], pod: Pod) -> list[RouteCandidate]:
        host = mesh.strip_port(self.req.host)
        key = ("vhosts", id(pod), tuple(id(ls) for ls in servers))
        table: _VirtualHosts = self.state.memo(key, lambda: self._vhost_table(servers, pod))
        if not table.routes:
            self.add("virtual-host", "No VirtualService is bound to these Gateway servers (check spec.gateways "
                     "references, hosts and namespaces), so the route table has only the empty 'blackhole' "
                     "virtual host and every request gets 404.",
                     *dict.fromkeys(ls.gateway.meta.ref for ls in servers))
            raise _Done("not-found")
        ranked = sorted(((mesh.domain_rank(d, host), d) for d in table.routes), key=lambda x: x[0] or (-1, 0),
                        reverse=True)
        best_rank, best = ranked[0]
        if best_rank is None:
            self.add("virtual-host", f"Host '{host}' matches none of the virtual hosts "
                     f"({', '.join(sorted(table.routes))}); Envoy answers 404. Send a matching Host header "
                     "(curl -H 'Host: ...') or add the host to the Gateway and VirtualService.",
                     *dict.fromkeys(r for refs in table.built_from.values() for r in refs))
            raise _Done("not-found")
        self.add("virtual-host", f"Host '{host}' selects virtual host '{best}', built from "
                 f"{', '.join(dict.fromkeys(table.built_from[best]))}.", *dict.fromkeys(table.built_from[best]))
        if best in table.require_tls:
            gw = table.require_tls[best]
            self.add("virtual-host", f"This virtual host requires TLS because a server of {gw} has "
                     f"tls.httpsRedirect: Envoy answers a plain HTTP request with 301 to https://{host}{self.req.path} "
                     "before any route is looked at.", gw)
            raise _Done("ok", 301)
        if table.left_out.get(best):
            self.add("routes", f"istiod builds no Envoy route from some rules here: {'. '.join(table.left_out[best])}.",
                     *dict.fromkeys(table.built_from[best]))
        return table.routes[best]

    def _vhost_table(self, servers: list[ListenerServer], pod: Pod) -> _VirtualHosts:
        """One listener's route table as istiod builds it (buildGatewayHTTPRouteConfig)."""
        table = _VirtualHosts()
        for ls in servers:
            redirect = ls.server.https_redirect
            for vs, vs_domains in mesh.bound_virtual_services(self.state, ls.gateway, ls.server, pod.meta.namespace):
                routes, left_out = self._vs_routes(vs, ls, pod)
                for d in (d.lower() for d in vs_domains):
                    table.routes.setdefault(d, []).extend(routes)
                    table.built_from.setdefault(d, []).append(vs.meta.ref)
                    if left_out:
                        table.left_out.setdefault(d, []).append(f"{vs.meta.key}: {'; '.join(left_out)}")
                    if redirect:
                        table.require_tls.setdefault(d, ls.gateway.meta.ref)
            # Every host of an httpsRedirect server gets a virtual host that redirects, routes or not
            # (gateway.go:527-542), after istiod's host sanitising: see mesh.redirect_domain.
            for h in ls.server.hosts if redirect else ():
                domain = mesh.redirect_domain(h)
                if domain is not None:
                    table.routes.setdefault(domain, [])
                    table.built_from.setdefault(domain, []).append(ls.gateway.meta.ref)
                    table.require_tls.setdefault(domain, ls.gateway.meta.ref)
        return table

    def _vs_routes(self, vs: VirtualService, ls: ListenerServer, pod: Pod) -> tuple[list[RouteCandidate], list[str]]:
        """The Envoy routes istiod builds from one VirtualService for this gateway (its
        BuildHTTPRoutesForVirtualService): one per match that applies here, and nothing after the
        first catch-all route, which would take every request anyway. Also says what it left out."""
        out: list[RouteCandidate] = []
        left_out: list[str] = []
        for r in vs.http:
            for m in r.matches or (None,):
                why = self._left_out(m, vs, ls, pod)
                if why:
                    left_out.append(f"a match of http[{r.index}] is left out: {why}")
                    continue
                out.append(RouteCandidate(r, vs, ls.gateway, ls.server, m))
                if out[-1].catch_all:
                    later = [f"http[{x.index}]" for x in vs.http if x.index > r.index]
                    if later:
                        one = len(later) == 1
                        left_out.append(f"{', '.join(later)} {'comes' if one else 'come'} after the catch-all "
                                        f"http[{r.index}] and {'is' if one else 'are'} left out (the catch-all "
                                        "would take every request first)")
                    return out, left_out
        return out, left_out

    @staticmethod
    def _left_out(m: HttpMatch | None, vs: VirtualService, ls: ListenerServer, pod: Pod) -> str:
        """Why istiod builds no route from this match for this gateway ('' when it does)."""
        if m is None:
            return ""
        if m.port is not None and m.port != ls.server.port:
            return f"its match.port {m.port} is not this server's port {ls.server.port}"
        if m.gateways:
            if ls.gateway.meta.key in {resolve_gateway_ref(g, vs.meta.namespace) for g in m.gateways}:
                return ""
            return f"its match.gateways ({', '.join(m.gateways)}) do not name {ls.gateway.meta.key}"
        # Without match.gateways, the source fields are compared with the gateway proxy itself.
        missing = {k: v for k, v in m.source_labels.items() if pod.meta.labels.get(k) != v}
        if missing:
            return (f"its sourceLabels {', '.join(f'{k}={v}' for k, v in missing.items())} are not labels of the "
                    f"gateway pod {pod.meta.key}")
        if m.source_namespace and m.source_namespace != pod.meta.namespace:
            return f"its sourceNamespace {m.source_namespace} is not the gateway's namespace {pod.meta.namespace}"
        return ""

    def _route(self, candidates: list[RouteCandidate]) -> None:
        ordered = [c for c in candidates if not c.catch_all] + [c for c in candidates if c.catch_all]
        if [id(c) for c in ordered] != [id(c) for c in candidates]:
            self.add("route-order", "Catch-all routes (no match, prefix /, regex .*) are moved after the others "
                     "(istiod sorts them last).")
        if len({c.gateway.meta.key for c in ordered}) > 1:
            self.add("route-order", "Routes from several Gateways share this virtual host: they are taken in "
                     "Gateway order (oldest first) and, per Gateway, VirtualService creation order. istio.io calls "
                     "this cross-resource order undefined; this is what istiod's code does at 1.30.",
                     uncertain=True)
        for cand in ordered:
            matched, why = self._match(cand)
            if matched:
                self.add("route", f"Route {self._route_name(cand)} of {cand.vs.meta.key} matches ({why}).",
                         cand.vs.meta.ref)
                self._destination(cand)
        tried = dict.fromkeys(self._route_name(c) + " of " + c.vs.meta.key for c in ordered)
        self.add("route", f"No route matches {self.req.method} {self.req.path}; Envoy answers 404 (NR). Routes "
                 f"tried: {', '.join(tried) or 'none'}.",
                 *dict.fromkeys(c.vs.meta.ref for c in ordered))
        raise _Done("not-found")

    @staticmethod
    def _route_name(cand: RouteCandidate) -> str:
        return f"http[{cand.route.index}]" + (f" '{cand.route.name}'" if cand.route.name else "")

    def _match(self, cand: RouteCandidate) -> tuple[bool, str]:
        if cand.match is None:
            return True, "no match conditions"
        return self._match_one(cand.match)

    def _match_one(self, m: HttpMatch) -> tuple[bool, str]:
        """Envoy's RouteMatch for this match (port, gateways and source fields were applied when the
        route was built): every condition must hold. ``:scheme`` is https after a TLS handshake (h9-tls), else http."""
        req = self.req
        path, _, query = req.path.partition("?")
        parts: list[str] = []
        if m.uri and m.uri.kind != "present":
            # ignoreUriCase makes exact and prefix case-insensitive (Envoy's case_sensitive: false); not regex.
            fold = m.ignore_uri_case and m.uri.kind != "regex"
            if not string_matches(m.uri.kind, m.uri.value.lower() if fold else m.uri.value,
                                  path.lower() if fold else path):
                return False, ""
            parts.append(f"uri {m.uri.describe()}" + (" ignoring case" if fold else ""))
        headers = {k.lower(): v for k, v in req.headers.items()}
        headers.update({":method": req.method, ":authority": req.host, ":scheme": "https" if req.tls else "http"})
        conditions = [(":method", "method", m.method), (":authority", "authority", m.authority),
                      (":scheme", "scheme", m.scheme), *((n, f"header {n}", sm) for n, sm in m.headers)]
        for name, label, sm in conditions:
            if sm is not None:
                if not _value_matches(sm, headers.get(name)):
                    return False, ""
                parts.append(f"{label} {sm.describe()}")
        for name, sm in m.without_headers:
            # Envoy inverts the matcher and, unless it is a presence test, treats a missing header as "".
            value = headers.get(name, None if sm.kind == "present" else "")
            if _value_matches(sm, value):
                return False, ""
            parts.append(f"no header {name} {sm.describe()}")
        params = _query_params(query)
        for name, sm in m.query_params:
            if not _value_matches(sm, params.get(name)):
                return False, ""
            parts.append(f"query {name} {sm.describe()}")
        return True, ", ".join(parts) or "matches any request"

    def _destination(self, cand: RouteCandidate) -> None:
        route, vs = cand.route, cand.vs
        if route.redirect:
            code = route.redirect_code or 301
            if code not in REDIRECT_CODES:
                self.add("destination", f"The route is a redirect with redirectCode {code}, which istiod does not "
                         "support (only 301, 302, 303, 307, 308; route.go:831-849): it logs 'Redirect Code is not yet "
                         "supported' and emits the route without an action, which Envoy rejects together with the "
                         "whole route table; the gateway keeps whatever routes it had before.", vs.meta.ref,
                         uncertain=True)
                raise _Done("not-found")
            self.add("destination", f"The route is a redirect: Envoy answers {code} itself"
                     + (" (redirectCode; istiod maps it in route.go:831)." if route.redirect_code else
                        " (the default when redirectCode is not set)."), vs.meta.ref)
            raise _Done("ok", code)
        if route.direct_status is not None:
            self.add("destination", f"The route has a directResponse: Envoy answers {route.direct_status} itself.",
                     vs.meta.ref)
            raise _Done("ok", route.direct_status)
        if not route.destinations:
            self.add("destination", "The route has no destination.", vs.meta.ref, uncertain=True)
            raise _Done("no-cluster")
        dests = route.destinations
        dest = max(dests, key=lambda d: d.weight if d.weight is not None else (100 if len(dests) == 1 else 0))
        if len(dests) > 1:
            self.add("destination", f"Traffic is split across {len(dests)} destinations by weight; following "
                     f"{dest.host} (the largest share).", vs.meta.ref)
        fqdn = resolve_host(dest.host, vs.meta.namespace)
        svc = self.state.service_by_fqdn.get(fqdn)
        if svc is None:
            if known_external(self.state, dest.host):
                se = self.state.service_entry_hosts.get(dest.host)
                if se is not None and not mesh.exported_to(se.export_to, se.meta.namespace, self.proxy_ns):
                    self._not_visible(se.meta.ref, se.export_to, vs, f"outbound|{dest.port or cand.server.port}||"
                                      f"{dest.host}")
                if subset_labels(self.state, dest.host, dest.subset) is None:
                    self.add("destination", f"Subset '{dest.subset}' is defined by no DestinationRule for "
                             f"{dest.host}, so cluster outbound|{dest.port or cand.server.port}|{dest.subset}|"
                             f"{dest.host} does not exist: 503 NC.", vs.meta.ref, *(se.meta.ref,) if se else ())
                    raise _Done("no-cluster")
                self.add("destination", f"{dest.host} is declared by a ServiceEntry; Envoy sends the request to "
                         "that external host.", *(se.meta.ref,) if se else ())
                raise _Done("ok", None, {"service": dest.host, "port": dest.port})
            port = dest.port or cand.server.port
            self.add("destination", f"'{dest.host}' resolves to {fqdn}, which is neither a Service nor a "
                     f"ServiceEntry host. The route points at cluster outbound|{port}||{fqdn}, which does not "
                     "exist: 503 NC.", vs.meta.ref)
            raise _Done("no-cluster")
        if not mesh.exported_to(svc.export_to, svc.meta.namespace, self.proxy_ns):
            self._not_visible(svc.meta.ref, svc.export_to, vs, f"outbound|{dest.port or cand.server.port}||{fqdn}")
        port = dest.port
        if port is None:
            # GetDestinationCluster (route.go:362-368): the Service's only port, else the port of the
            # Gateway server the route is built for (as declared, before any targetPort translation).
            port = svc.ports[0].port if len(svc.ports) == 1 else cand.server.port
            how = ("the Service's only port" if len(svc.ports) == 1 else
                   f"the Gateway server's port {cand.server.port}, because no port was given and the Service has "
                   "several")
        else:
            how = "route.destination.port"
        if svc.port(port) is None:
            self.add("destination", f"Port {port} (from {how}) is not a port of Service {svc.meta.key} "
                     f"({', '.join(str(p.port) for p in svc.ports)}); cluster outbound|{port}||{svc.fqdn} does not "
                     "exist: 503 NC.", vs.meta.ref, svc.meta.ref)
            raise _Done("no-cluster")
        labels = subset_labels(self.state, svc.fqdn, dest.subset)
        if labels is None:
            self.add("destination", f"Subset '{dest.subset}' is defined by no DestinationRule for {svc.fqdn}, so "
                     f"cluster outbound|{port}|{dest.subset}|{svc.fqdn} does not exist: 503 NC.", vs.meta.ref)
            raise _Done("no-cluster")
        self.add("destination", f"Service {svc.meta.key} port {port} ({how})"
                 + (f", subset {dest.subset}" if dest.subset else "") + ".", svc.meta.ref)
        destination = {"service": svc.meta.key, "port": port}
        pods = [p for p in self.state.pods_matching({**(svc.selector or {}), **labels}, svc.meta.namespace)
                if p.ready] if svc.selector else []
        if not pods:
            self.add("endpoints", f"No ready pod backs {svc.meta.key}" + (f" subset {dest.subset}" if dest.subset
                                                                          else "")
                     + ": Envoy has the cluster but no healthy endpoint, so it answers 503 'no healthy upstream'.",
                     svc.meta.ref)
            raise _Done("no-healthy-upstream", None, destination)
        self.add("endpoints", f"{len(pods)} ready pod(s): {', '.join(p.meta.key for p in pods[:3])}"
                 + (" (simulated: Deployment templates stand for pods)" if pods[0].from_template else "")
                 + ". The application answers.", *(mesh.workload_ref(p) for p in pods[:1]))
        raise _Done("ok", None, destination)


    def _not_visible(self, ref: str, export_to: tuple[str, ...], vs: VirtualService, cluster: str) -> None:
        self.add("destination", f"{ref} is exported only to {', '.join(export_to)}, not to the gateway pod's namespace "
                 f"{self.proxy_ns}: the gateway's sidecar scope does not contain it (IsServiceVisible, "
                 f"push_context.go:1089), so cluster {cluster} does not exist on the gateway: 503 NC.",
                 ref, vs.meta.ref)
        raise _Done("no-cluster")

    def _tcp(self, ls: ListenerServer, others: bool = False) -> None:
        """A plain TCP server gets a filter chain only from the first VirtualService (in istiod's order)
        with a ``tcp`` rule matching it (buildGatewayNetworkFiltersFromTCPRoutes, gateway.go:849); with
        none, the listener has no filter chain and istiod omits it (gateway.go:81, 217)."""
        for vs in mesh.virtual_services_for_proxy(self.state, ls.gateway.meta.key, self.proxy_ns):
            if not mesh.tcp_hosts_match(ls.server, ls.gateway, vs):
                continue
            for rule in vs.tcp:
                if mesh.l4_matches(rule, ls.server, ls.gateway, vs):
                    self.add("protocol", f"The listener is plain TCP (server of {ls.gateway.meta.key}); "
                             f"tcp[{rule.index}] of {vs.meta.key} forwards the connection's bytes as they are. A "
                             "plain HTTP request is relayed unchanged, so the destination application answers it.",
                             ls.gateway.meta.ref, vs.meta.ref, uncertain=True)
                    self._tcp_destination(vs, rule, ls)
        if others:
            self.add("protocol", f"The TCP server of {ls.gateway.meta.key} has no VirtualService with a matching tcp "
                     "route, so istiod builds no filter chain for it ('listener missed network filter'); the "
                     "listener keeps only its TLS filter chains, which a plain request does not match: the "
                     "connection is closed.", ls.gateway.meta.ref)
            raise _Done("connection-closed")
        self.add("protocol", f"The TCP server of {ls.gateway.meta.key} has no VirtualService with a matching tcp "
                 "route, so istiod builds no filter chain for it ('listener missed network filter') and omits a "
                 "listener without filter chains: nothing listens on this port and the connection is refused.",
                 ls.gateway.meta.ref)
        raise _Done("connection-refused")

    def _tcp_destination(self, vs: VirtualService, rule: Any, ls: ListenerServer) -> None:
        if not rule.destinations:
            raise _Done("connection-closed")
        dest = max(rule.destinations, key=lambda d: d.weight or 0)
        fqdn = resolve_host(dest.host, vs.meta.namespace)
        svc = self.state.service_by_fqdn.get(fqdn)
        port = dest.port or (svc.ports[0].port if svc is not None and len(svc.ports) == 1 else ls.server.port)
        if svc is None or svc.port(port) is None or not mesh.exported_to(svc.export_to, svc.meta.namespace,
                                                                       self.proxy_ns):
            self.add("destination", f"Cluster outbound|{port}||{fqdn} does not exist on the gateway: Envoy's TCP proxy "
                     "closes the connection without a response.", vs.meta.ref)
            raise _Done("connection-closed")
        if not self.state.ready_pods_for(svc):
            self.add("endpoints", f"No ready pod backs {svc.meta.key}: the TCP proxy has no upstream and closes the "
                     "connection.", svc.meta.ref)
            raise _Done("connection-closed", None, {"service": svc.meta.key, "port": port})
        self.add("destination", f"Service {svc.meta.key} port {port}: the application answers.", svc.meta.ref)
        raise _Done("ok", None, {"service": svc.meta.key, "port": port})


REDIRECT_CODES = (301, 302, 303, 307, 308)


def trace(state: State, request: Request | None = None) -> Trace:
    req = request or Request()
    if state.api_gateways:  # h10-gwapi (issue #15): a Gateway API gateway's Service has its own tracer
        from graders.gwapi.trace import gateway_for_service, trace_gateway_api

        gw = gateway_for_service(state, req.gateway)
        if gw is not None:
            return trace_gateway_api(state, req, gw)
    return _Tracer(state, req).run()


def _value_matches(sm: StringMatch, value: str | None) -> bool:
    """A header or query-parameter matcher against a value (None: not in the request)."""
    if value is None:
        return False
    return sm.kind == "present" or string_matches(sm.kind, sm.value, value)


def _query_params(query: str) -> dict[str, str]:
    """The first value of each parameter, as Envoy's query-parameter matcher sees it (a parameter
    written without ``=`` has the value ""). Values are compared as sent, not percent-decoded."""
    params: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params.setdefault(name, value)
    return params
