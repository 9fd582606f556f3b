"""Trace one HTTP request through a Gateway API gateway (``trace --gateway NS/<gateway>-istio``).

The path (gateway-api-facts.md section 6.4): client -> the ``<gateway>-istio`` Service port P (targetPort
P) -> Envoy listener P -> route table ``http.P`` -> virtual host by Host -> first matching route ->
action. Outcomes are the classic tracer's plus ``backend-invalid``: a missing Service, a cross-namespace
backend without a ReferenceGrant or an unsupported kind gets HTTP 500 (Istio answers cluster_not_found
with 500 for Gateway API routes: networking/core/route/route.go:617-621), where the
classic API gives 503 NC. No matching host or rule is ``not-found`` (404).
"""

from __future__ import annotations

from graders import mesh
from graders import trace as classic
from graders.gwapi import PORT_FORWARD_LOCAL
from graders.gwapi.attach import backend_result, gateway_status, istio_gateway
from graders.gwapi.deploy import deployment_name, manual
from graders.gwapi.objects import ApiGateway
from graders.gwapi.routes import RouteEntry, entry_matches, route_table
from graders.state import State
from graders.trace import Request, Trace, _Done, _query_params


def gateway_for_service(state: State, ref: str) -> ApiGateway | None:
    """The Istio-handled Gateway API Gateway whose Service is ``ns/name`` (managed: ``<gw>-<class>`` or the
    name override; manual: a Hostname address naming that Service)."""
    ns, _, name = ref.partition("/")
    for gw in state.api_gateways:
        if gw.meta.namespace != ns or istio_gateway(state, ns, gw.meta.name) is None:
            continue
        if manual(gw):
            if any(v.split(".")[0] == name for t, v in gw.addresses if t == "Hostname"):
                return gw
        elif deployment_name(gw) == name:
            return gw
    return None


class _Tracer(classic._Tracer):
    """The classic tracer's bookkeeping (steps, outcome) with the Gateway API path in ``_trace``."""

    def __init__(self, state: State, req: Request, gw: ApiGateway):
        super().__init__(state, req)
        self.gw = gw

    def _trace(self) -> None:
        gw, req = self.gw, self.req
        ns, _, name = req.gateway.partition("/")
        svc = self.state.service(ns, name)
        gw_ref = gw.meta.ref
        if svc is None:
            self.add("gateway-service", f"{gw_ref} should have a Service {req.gateway}, but there is none yet "
                     "(istiod creates it; check `kubectl get deploy,svc -n " + ns + "`).", gw_ref)
            raise _Done("unreachable")
        predicted = " (predicted: what istiod creates for it)" if svc.meta.origin.startswith("predicted") else ""
        self.add("gateway-service", f"Service {svc.meta.key} serves {gw_ref}{predicted}; it is type {svc.type}.",
                 svc.meta.ref, gw_ref)
        if svc.type == "LoadBalancer" and not svc.lb_ingress:
            self.add("reachability", f"No load balancer has given {svc.meta.key} an address (on kind EXTERNAL-IP "
                     f"stays <pending>); reach it with `kubectl port-forward -n {ns} svc/{name} "
                     f"{PORT_FORWARD_LOCAL}:{req.port}` or its nodePort. The trace follows the request once it "
                     "reaches the Service.", svc.meta.ref)
        elif svc.type == "ClusterIP":
            self.add("reachability", f"Service {svc.meta.key} is ClusterIP: from outside the cluster reach it with "
                     f"`kubectl port-forward -n {ns} svc/{name} {PORT_FORWARD_LOCAL}:{req.port}`.", svc.meta.ref)
        sp = svc.port(req.port)
        if sp is None:
            self.add("service-port", f"Service {svc.meta.key} has no port {req.port} (it has "
                     f"{', '.join(p.label() for p in svc.ports)}); nothing accepts the connection.", svc.meta.ref)
            raise _Done("connection-refused")
        pods = self.state.ready_pods_for(svc)
        if not pods:
            self.add("gateway-pods", f"Service {svc.meta.key} selects no ready pod: the connection is refused.",
                     svc.meta.ref)
            raise _Done("connection-refused")
        self.add("gateway-pods", f"Port {sp.port} forwards to {len(pods)} ready pod(s) of "
                 f"{mesh.workload_of(pods[0])}, where Envoy listens on port {req.port} (the listener port is used "
                 "as is).", mesh.workload_ref(pods[0]))
        self._listener()
        self._route()

    def _listener(self) -> None:
        listeners = [ln for ln in self.gw.listeners if ln.port == self.req.port]
        problems = gateway_status(self.state, self.gw).listener_problems
        valid = [ln for ln in listeners if ln.name not in problems or problems[ln.name][0] != "Accepted"]
        if not valid:
            why = "; ".join(f"listener {ln.name}: {problems[ln.name][2]}" for ln in listeners) or \
                f"no listener of {self.gw.meta.ref} uses port {self.req.port}"
            self.add("listener", f"Envoy has no listener on port {self.req.port} ({why}), so the connection is most "
                     "likely refused.", self.gw.meta.ref, uncertain=True)
            raise _Done("connection-refused")
        if all(ln.protocol in ("HTTPS", "TLS") for ln in valid):
            self.add("listener", f"Port {self.req.port} has only {valid[0].protocol} listeners: a plain HTTP request "
                     "gets no HTTP response.", self.gw.meta.ref)
            raise _Done("connection-closed")
        names = ", ".join(f"{ln.name} ({ln.protocol}, hostname {ln.hostname or '*'})" for ln in valid)
        self.add("listener", f"Listener(s) on port {self.req.port}: {names}; they share the route table "
                 f"http.{self.req.port}.", self.gw.meta.ref)

    def _route(self) -> None:
        table = route_table(self.state, self.gw, self.req.port)
        host = mesh.strip_port(self.req.host)
        ranked = [(mesh.domain_rank(d, host), d) for d in table]
        ranked = [(r, d) for r, d in ranked if r is not None]
        if not ranked:
            known = ", ".join(sorted(table)) or "none: no HTTPRoute is attached to this port"
            self.add("virtual-host", f"Host {host} matches no virtual host of http.{self.req.port} (domains: {known}); "
                     "Envoy answers 404 (NR).", self.gw.meta.ref)
            raise _Done("not-found")
        domain = max(ranked)[1]
        vh = table[domain]
        routes = sorted({e.route.meta.ref for e in vh.entries})
        self.add("virtual-host", f"Host {host} selects virtual host {domain}, built from {', '.join(routes)}.",
                 *routes)
        path, _, query = self.req.path.partition("?")
        params = _query_params(query)
        for e in vh.entries:
            ok, _why = entry_matches(e.match, self.req.method, path, params, dict(self.req.headers))
            if ok:
                self.add("route", f"Route {e.name} matches ({e.match.describe()}).", e.route.meta.ref)
                self._action(e)
        headers = dict(self.req.headers)
        tried = "; ".join(f"{e.name}: {entry_matches(e.match, self.req.method, path, params, headers)[1]}"
                          for e in vh.entries[:5])
        left = f" {len(vh.unreachable)} rule match(es) after the catch-all never reach Envoy." if vh.unreachable else ""
        self.add("route", f"No route of {domain} matches {self.req.method} {self.req.path} ({tried}); Envoy answers "
                 f"404 (NR).{left}", *routes)
        raise _Done("not-found")

    def _action(self, e: RouteEntry) -> None:
        rule, ref = e.rule, e.route.meta.ref
        if rule.redirect is not None:
            self.add("destination", f"The rule has a RequestRedirect: Envoy answers {rule.redirect.status_code} "
                     "itself.", ref)
            raise _Done("ok", rule.redirect.status_code)
        live = [b for b in rule.backends if b.weight]
        if not rule.backends:
            self.add("destination", "The rule has no backendRefs: Envoy answers 404 itself (direct response, "
                     "conversion.go:229-235; 500 before Istio 1.30).", ref)
            raise _Done("not-found")
        if not live:
            self.add("destination", "Every backendRef has weight 0: Envoy answers 500 itself (conversion.go:236-240).",
                     ref)
            raise _Done("backend-invalid")
        b = max(live, key=lambda x: x.weight)
        if len(live) > 1:
            self.add("destination", f"Traffic is split across {len(live)} backends by weight; following {b.name} "
                     "(the largest share).", ref)
        res = backend_result(self.state, e.route, b)
        if res.reason is not None:
            self.add("destination", f"backendRef {b.name}: {res.reason} ({res.message}). istiod keeps the route "
                     "but the backend has no cluster, and for Gateway API routes Envoy answers 500.", ref)
            raise _Done("backend-invalid")
        svc = res.service
        assert svc is not None
        if b.port is None or svc.port(b.port) is None:
            self.add("destination", f"Service {svc.meta.key} has no port {b.port}: istiod does not check it "
                     "(ResolvedRefs stays True) and Envoy answers 500 for the missing cluster.", ref, svc.meta.ref,
                     uncertain=True)
            raise _Done("backend-invalid")
        cluster = f"outbound|{b.port}||{svc.fqdn}"
        dest = {"service": svc.meta.key, "port": b.port, "cluster": cluster}
        if not self.state.ready_pods_for(svc):
            self.add("destination", f"Cluster {cluster} has no ready endpoint: 503 'no healthy upstream' (UH).",
                     svc.meta.ref)
            raise _Done("no-healthy-upstream", destination=dest)
        self.add("destination", f"Routed to cluster {cluster} ({len(self.state.ready_pods_for(svc))} ready "
                 "endpoint(s)); the application answers.", svc.meta.ref)
        raise _Done("ok", destination=dest)


def trace_gateway_api(state: State, req: Request, gw: ApiGateway) -> Trace:
    return _Tracer(state, req, gw).run()
