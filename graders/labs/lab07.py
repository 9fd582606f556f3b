"""Lab 7: Bookinfo through a Kubernetes Gateway API Gateway, and a route across three namespaces.

The learner creates Gateway ``ingress/bookinfo-gateway`` (class ``istio``: istiod deploys
``bookinfo-gateway-istio`` for it), attaches Bookinfo's HTTPRoute from ``default``, then attaches an
HTTPRoute from ``team-a`` whose backend is the ``reviews`` Service in ``default`` (which needs a
ReferenceGrant there). Every verdict comes from the engine (graders/gwapi/, the GWAPI-* findings):
the class istiod serves, Programmed, each parentRef's Accepted reason and the route's ResolvedRefs,
with istiod's reason strings; requests go through ``ctx.request`` to the ``<gateway>-istio`` Service
(a real port-forward on a live cluster). The last check reads the status istiod wrote, so it exists
only on a live cluster.
"""

from __future__ import annotations

from graders.checks import BOOKINFO_TITLE, Context, Lab, Outcome, blocked, failed, istio_and_bookinfo_ready, passed
from graders.gwapi import ISTIO_CONTROLLER
from graders.gwapi.attach import (
    NO_HOSTNAME,
    NO_PARENT,
    NOT_ALLOWED,
    REF_NOT_PERMITTED,
    ParentResult,
    parent_results,
    route_backend_error,
)
from graders.gwapi.deploy import SERVICE_TYPE_ANNOTATION, controller_of, deployment_name, service_type
from graders.gwapi.objects import ApiGateway, HTTPRoute
from graders.state import State

GATEWAY_NS, GATEWAY_NAME = "ingress", "bookinfo-gateway"
BOOKINFO_NS, TEAM_NS = "default", "team-a"
BOOKINFO_HOST, REVIEWS_HOST = "bookinfo.example.com", "reviews.example.com"
PRODUCTPAGE, REVIEWS_PATH = "/productpage", "/reviews/0"
REVIEWS_TEXT = '"reviews"'  # the reviews service answers JSON with a "reviews" list

LAB = Lab("lab07", "The Kubernetes Gateway API: a Gateway, and routes across namespaces",
          chapter="chapters/07-gateway-api", notebook="labs/lab07-gateway-api.ipynb",
          summary="Expose Bookinfo through a Gateway API Gateway, then attach team-a's HTTPRoute to the reviews "
                  "Service in default.")


# --- what the checks look at ------------------------------------------------------------------------
def lab_gateway(state: State) -> ApiGateway | None:
    """Gateway ingress/bookinfo-gateway, else the first Gateway API Gateway in ingress, else any."""
    gws = sorted(state.api_gateways, key=lambda g: (g.meta.namespace != GATEWAY_NS, g.meta.name != GATEWAY_NAME,
                                                     g.meta.key))
    return gws[0] if gws else None


def routes_in(state: State, namespace: str) -> list[HTTPRoute]:
    return sorted((r for r in state.http_routes if r.meta.namespace == namespace), key=lambda r: r.meta.name)


def _to_gateway(route: HTTPRoute, gw: ApiGateway) -> bool:
    return any((p.namespace, p.name) == (gw.meta.namespace, gw.meta.name) for p in route.parent_refs)


def _look_route(ctx: Context, route: HTTPRoute) -> str:
    """Where the learner reads a route's status: kubectl on a live cluster (what istiod wrote), the graders'
    ``get`` elsewhere (the status istiod would write, predicted, and said so)."""
    look = ctx.look(f"get httproute -n {route.meta.namespace} {route.meta.name} -o yaml")
    if ctx.state.mode == "live":
        return f"{look} shows status.parents, the conditions istiod wrote"
    return f"{look} shows status.parents, the conditions istiod would write (predicted)"


def _gateway_line(gw: ApiGateway) -> str:
    return f"Gateway {gw.meta.key}"


# --- the checks -----------------------------------------------------------------------------------
@LAB.check("ready", "Istio, Bookinfo and the Gateway API CRDs are ready", points=1)
def ready(ctx: Context) -> Outcome:
    outcome = istio_and_bookinfo_ready(ctx)
    if not outcome.passed:
        return outcome
    if ctx.findings_for("GWAPI-CRDS-MISSING") or ctx.state.gwapi_crds is False:
        return failed(f"The cluster does not serve gateway.networking.k8s.io, so no Gateway API object can exist "
                      f"on it ({ctx.state.description}).",
                      "`kubectl get crd gateways.gateway.networking.k8s.io` should list the CRD; Istio does not "
                      "ship it.",
                      "`python -m graders cluster up` installs the release Istio 1.30 is built against (it runs "
                      "`kubectl apply --server-side -f` with the release's standard-install.yaml).")
    return passed(outcome.message.rstrip(".") + "; the cluster serves the Gateway API (gateway.networking.k8s.io).")


@LAB.check("gateway-class", "Gateway ingress/bookinfo-gateway has a class istiod serves", points=1)
def gateway_class(ctx: Context) -> Outcome:
    state = ctx.state
    gw = lab_gateway(state)
    if gw is None:
        return failed(f"No Gateway of the Gateway API (gateway.networking.k8s.io) found; the lab asks for Gateway "
                      f"{GATEWAY_NS}/{GATEWAY_NAME}.",
                      f"Write a Gateway with apiVersion gateway.networking.k8s.io/v1 in namespace {GATEWAY_NS} (not "
                      "networking.istio.io, the classic Gateway).",
                      "It needs spec.gatewayClassName and at least one listener (name, port, protocol).")
    if (gw.meta.namespace, gw.meta.name) != (GATEWAY_NS, GATEWAY_NAME):
        return failed(f"The Gateway API Gateway is {gw.meta.key}; the lab asks for {GATEWAY_NS}/{GATEWAY_NAME}, and "
                      "the other checks send requests to its Service.",
                      f"Look at metadata.name and metadata.namespace of Gateway {gw.meta.key}.",
                      f"istiod names what it deploys after the Gateway: Service {GATEWAY_NS}/"
                      f"{GATEWAY_NAME}-istio comes from Gateway {GATEWAY_NS}/{GATEWAY_NAME}.")
    if ctx.findings_for("GWAPI-CLASS-UNKNOWN", gw.meta.ref):
        known = sorted(c.meta.name for c in state.gw_classes) or ["istio"]
        return failed(f"Gateway {gw.meta.key} names gatewayClassName {gw.class_name!r}, which no controller "
                      "serves: istiod ignores the Gateway, deploys nothing and writes no status (it stays "
                      "Accepted=Unknown, reason Pending).",
                      f"Look at spec.gatewayClassName of Gateway {gw.meta.key}; compare it letter by letter with the "
                      f"GatewayClasses of the cluster ({', '.join(known)}).",
                      f"{ctx.look('get gatewayclass')} lists them with their controller; the class Istio deploys "
                      "gateways for is the one whose controller is istio.io/gateway-controller.")
    controller = controller_of(gw.class_name, state.gw_classes)
    if controller != ISTIO_CONTROLLER:
        return failed(f"Gateway {gw.meta.key} uses class {gw.class_name!r}, served by {controller}, not by istiod's "
                      f"{ISTIO_CONTROLLER}: nothing is deployed for it.",
                      f"Look at spec.gatewayClassName of Gateway {gw.meta.key}.",
                      "istio-remote deploys nothing and programs nothing on this cluster; the lab needs the class "
                      "that deploys a gateway.")
    return passed(f"Gateway {gw.meta.key} uses class {gw.class_name}, served by {ISTIO_CONTROLLER}: istiod deploys "
                  f"Deployment and Service {gw.meta.namespace}/{deployment_name(gw)} for it.")


@LAB.check("gateway-programmed", "istiod deploys the gateway and reports it Programmed", points=2,
           needs=("gateway-class",))
def gateway_programmed(ctx: Context) -> Outcome:
    gw = lab_gateway(ctx.state)
    assert gw is not None  # gateway-class passed
    name = deployment_name(gw)
    svc_look = ctx.look(f"get svc,deploy -n {gw.meta.namespace}")
    for f in ctx.findings_for("GWAPI-NOT-PROGRAMMED", gw.meta.ref):
        reason = f.details.get("reason")
        if reason == "AddressNotAssigned" and service_type(gw) == "LoadBalancer":
            return failed(f"Gateway {gw.meta.key} is Programmed=False, reason AddressNotAssigned: istiod made Service "
                          f"{gw.meta.namespace}/{name} a LoadBalancer, and kind has no load balancer, so its "
                          "EXTERNAL-IP stays <pending> for ever.",
                          f"Look at metadata.annotations of Gateway {gw.meta.key}: istiod picks the Service type from "
                          f"one of them ({svc_look} shows the type).",
                          f"The annotation {SERVICE_TYPE_ANNOTATION} on the Gateway sets the type (editing the "
                          "Service is undone by istiod); reach a ClusterIP gateway with `kubectl port-forward`.")
        return failed(f"Gateway {gw.meta.key} is Programmed=False, reason {reason}: {f.details.get('detail')}.",
                      f"Look at Service and Deployment {gw.meta.namespace}/{name}: {svc_look}.",
                      "Programmed turns True when the Service has a ready gateway pod behind every listener port "
                      "(and, for a LoadBalancer, an address).")
    kind = service_type(gw)
    return passed(f"Gateway {gw.meta.key} is Programmed: Service {gw.meta.namespace}/{name} ({kind}) has a ready "
                  f"gateway pod behind it.")


def _route_outcome(ctx: Context, namespace: str, what: str) -> Outcome:
    """Some HTTPRoute in ``namespace`` attached to the lab's Gateway, with istiod's reason when none is."""
    state = ctx.state
    gw = lab_gateway(state)
    assert gw is not None  # gateway-class passed
    routes = routes_in(state, namespace)
    if not routes:
        return failed(f"No HTTPRoute in namespace {namespace}; {what}.",
                      f"Write an HTTPRoute in namespace {namespace} whose spec.parentRefs names Gateway "
                      f"{gw.meta.key} (name and namespace).",
                      "An HTTPRoute needs parentRefs (where it attaches), optionally hostnames, and rules with "
                      "backendRefs.")
    mine = [r for r in routes if _to_gateway(r, gw)]
    if not mine:
        r = routes[0]
        refs = ", ".join(p.describe() for p in r.parent_refs) or "nothing"
        return failed(f"HTTPRoute {r.meta.key} has parentRefs {refs}, not Gateway {gw.meta.key}: istiod writes no "
                      "status for a parent it does not handle, and the route is on no gateway.",
                      f"Look at spec.parentRefs of HTTPRoute {r.meta.key}: a parentRef without namespace means the "
                      "route's own namespace.",
                      f"Name the Gateway with both name: {gw.meta.name} and namespace: {gw.meta.namespace}.")
    results: list[tuple[HTTPRoute, ParentResult]] = [(r, p) for r in mine for p in parent_results(state, r)
                                                     if p.gateway is gw]
    ok = [(r, p) for r, p in results if p.accepted and not ctx.findings_for("GWAPI-ROUTE-NOT-ACCEPTED", r.meta.ref)]
    if ok:
        r, p = ok[0]
        listeners = ", ".join(ln.name for ln in p.accepted_listeners)
        return passed(f"HTTPRoute {r.meta.key} is Accepted by Gateway {gw.meta.key} (parentRef {p.ref.describe()}, "
                      f"listener {listeners}).")
    r = mine[0]
    f = next(iter(ctx.findings_for("GWAPI-ROUTE-NOT-ACCEPTED", r.meta.ref)), None)
    reason = f.details.get("reason") if f else (results[0][1].reason if results else None)
    detail = f.details.get("detail") if f else (results[0][1].message if results else "")
    first = {
        NO_HOSTNAME: f"Compare spec.hostnames of HTTPRoute {r.meta.key} with the hostname of the listeners of Gateway "
                     f"{gw.meta.key}.",
        NO_PARENT: f"Compare spec.parentRefs[].sectionName (and port) of HTTPRoute {r.meta.key} with the listener "
                   f"names (and ports) of Gateway {gw.meta.key}.",
        NOT_ALLOWED: f"Look at spec.listeners[].allowedRoutes of Gateway {gw.meta.key}: it decides which namespaces "
                     f"may attach routes (the default is the Gateway's own namespace only).",
    }.get(reason or "", f"Look at spec.parentRefs of HTTPRoute {r.meta.key}.")
    if reason in (NO_HOSTNAME, NO_PARENT, NOT_ALLOWED):
        first += (f" {ctx.look(f'get gateway.gateway.networking.k8s.io -n {gw.meta.namespace} {gw.meta.name} -o yaml')}"
                  " shows its listeners.")
    second = {
        NO_HOSTNAME: "A route hostname must equal the listener hostname or fall under its wildcard (*.example.com "
                     "covers www.example.com, not example.org); a route without hostnames takes the listener's.",
        NO_PARENT: "sectionName is a listener's name, not a hostname or a port name; leave it out to try every "
                   "listener.",
        NOT_ALLOWED: f"from: All, or from: Selector with a label namespace {namespace} carries "
                     "(kubernetes.io/metadata.name is on every namespace).",
    }.get(reason or "", _look_route(ctx, r))
    return failed(f"HTTPRoute {r.meta.key} is not Accepted by Gateway {gw.meta.key}: istiod writes Accepted=False, "
                  f"reason {reason} ({detail}).", first, second)


@LAB.check("bookinfo-route-accepted", "Bookinfo's HTTPRoute (default) is Accepted by the Gateway", points=2,
           needs=("gateway-class",))
def bookinfo_route_accepted(ctx: Context) -> Outcome:
    return _route_outcome(ctx, BOOKINFO_NS, "Bookinfo's route to productpage belongs there, next to its Service")


def _request(ctx: Context, route_ns: str, path: str, service: str, expect: str, default_host: str) -> Outcome:
    state = ctx.state
    gw = lab_gateway(state)
    assert gw is not None
    accepted = [(r, p) for r in routes_in(state, route_ns) for p in parent_results(state, r)
                if p.gateway is gw and p.accepted]
    route, parent = accepted[0]
    listener = parent.accepted_listeners[0]
    host = next((h for h in route.hostnames if "*" not in h), None) or \
        ((listener.hostname or default_host).replace("*", "www") if listener.hostname else default_host)
    gateway = f"{gw.meta.namespace}/{deployment_name(gw)}"
    ev = ctx.request(port=listener.port, host=host, path=path, service=service, gateway=gateway, expect_text=expect)
    curl = (f"kubectl -n {gw.meta.namespace} port-forward svc/{deployment_name(gw)} 8088:{listener.port} & "
            f"curl -H 'Host: {host}' http://localhost:8088{path}")
    if ev.ok:
        return passed(f"{ev.sentence} Try it: {curl}")
    if ev.verdict in ("backend-invalid", "gateway-500"):
        return failed(f"{ev.sentence}",
                      f"A 500 from the gateway itself means the rule's backendRef cannot be used: look at "
                      f"spec.rules[].backendRefs of HTTPRoute {route.meta.key}.",
                      "The Gateway API answers a missing, forbidden or unsupported backend with 500 (the classic "
                      "API gives 503 there).")
    if ev.verdict == "gateway-404-nr":
        return failed(f"{ev.sentence}",
                      f"A 404 from the gateway means no hostname or rule matched: compare spec.hostnames and "
                      f"spec.rules[].matches of HTTPRoute {route.meta.key} with the request (Host {host}, path "
                      f"{path}).",
                      "PathPrefix matches whole path segments (/static matches /static/x, not /staticx); Exact "
                      "matches the path alone.")
    return failed(f"{ev.sentence}",
                  f"Look at Service and pods {gateway} and at the backendRefs of HTTPRoute {route.meta.key}: "
                  f"{ctx.look(f'get svc,pods -n {gw.meta.namespace}')}.",
                  f"`python -m graders trace --gateway {gateway} --host {host} --path {path}` with your files shows "
                  "the step where the request stops.")


@LAB.check("productpage-reachable", "Bookinfo's product page answers through the Gateway", points=2,
           needs=("ready", "gateway-class", "bookinfo-route-accepted"))
def productpage_reachable(ctx: Context) -> Outcome:
    return _request(ctx, BOOKINFO_NS, PRODUCTPAGE, f"{BOOKINFO_NS}/productpage", BOOKINFO_TITLE, BOOKINFO_HOST)


@LAB.check("cross-route-accepted", "team-a's HTTPRoute is Accepted by the Gateway in ingress", points=2,
           needs=("gateway-class",))
def cross_route_accepted(ctx: Context) -> Outcome:
    return _route_outcome(ctx, TEAM_NS, "the lab's second part attaches team-a's route to the Gateway in ingress")


@LAB.check("reviews-backend-resolved", "team-a's route resolves its backend, Service reviews in default", points=2)
def reviews_backend_resolved(ctx: Context) -> Outcome:
    state = ctx.state
    routes = routes_in(state, TEAM_NS)
    if not routes:
        return blocked([LAB.get("cross-route-accepted").title], f"there is no HTTPRoute in {TEAM_NS} yet")
    for r in routes:
        err = route_backend_error(state, r)
        if err is not None:
            grant = (f"a ReferenceGrant in namespace {err.namespace} that lets HTTPRoutes from {TEAM_NS} use it"
                     if err.reason == REF_NOT_PERMITTED else "")
            second = ("The grant lives in the backend's namespace: from (group gateway.networking.k8s.io, kind "
                      f"HTTPRoute, namespace {TEAM_NS}), to (group \"\", kind Service, optionally its name)."
                      if err.reason == REF_NOT_PERMITTED else
                      "A backendRef without namespace means the route's own namespace; backendRefs name a Service "
                      "(not a hostname) and need a port.")
            return failed(f"HTTPRoute {r.meta.key} has ResolvedRefs=False, reason {err.reason} ({err.message}); "
                          "requests that rule sends there get HTTP 500 from the gateway"
                          f"{': it is missing ' + grant if grant else ''}.",
                          f"Look at spec.rules[].backendRefs of HTTPRoute {r.meta.key}"
                          + (f", then at the ReferenceGrants in namespace {err.namespace} "
                             f"({ctx.look(f'get referencegrant -n {err.namespace}')} lists them)." if grant else
                             f" (name, namespace, port); {ctx.look(f'get svc -n {err.namespace}')} lists the "
                             "Services there."),
                          second)
    to_default = [(r, b) for r in routes for rule in r.rules for b in rule.backends
                  if (b.namespace or r.meta.namespace) == BOOKINFO_NS and b.name == "reviews"]
    if not to_default:
        r = routes[0]
        return failed(f"HTTPRoute {r.meta.key} resolves its backends, but none is Service {BOOKINFO_NS}/reviews: the "
                      "lab asks team-a's route to use the reviews Service in a third namespace.",
                      f"Look at spec.rules[].backendRefs of HTTPRoute {r.meta.key}.",
                      "A backendRef in another namespace sets namespace, and that namespace must grant it.")
    r, b = to_default[0]
    return passed(f"HTTPRoute {r.meta.key} resolves backendRef {BOOKINFO_NS}/{b.name} port {b.port} "
                  f"(ResolvedRefs=True: a ReferenceGrant in {BOOKINFO_NS} allows it).")


@LAB.check("reviews-reachable", "A request for reviews.example.com reaches the reviews Service", points=2,
           needs=("ready", "gateway-class", "cross-route-accepted", "reviews-backend-resolved"))
def reviews_reachable(ctx: Context) -> Outcome:
    return _request(ctx, TEAM_NS, REVIEWS_PATH, f"{BOOKINFO_NS}/reviews", REVIEWS_TEXT, REVIEWS_HOST)


@LAB.check("status-written", "istiod's written status agrees: Programmed, Accepted and ResolvedRefs", points=1,
           needs=("gateway-programmed", "bookinfo-route-accepted", "cross-route-accepted"), live_only=True)
def status_written(ctx: Context) -> Outcome:
    state = ctx.state
    gw = lab_gateway(state)
    assert gw is not None
    programmed = next((c for c in gw.conditions if c.type == "Programmed"), None)
    if programmed is None or programmed.status != "True":
        return failed(f"Gateway {gw.meta.key} has no Programmed=True in the status istiod wrote"
                      f"{f' ({programmed.status}/{programmed.reason})' if programmed else ' (no status yet)'}.",
                      f"{ctx.look(f'get gateway.gateway.networking.k8s.io -n {gw.meta.namespace} {gw.meta.name}')} "
                      "shows PROGRAMMED; `kubectl describe` shows the conditions.",
                      "istiod writes status within seconds; no status at all means istiod does not handle this "
                      "Gateway (is istiod running, and were the CRDs installed?).")
    lines = []
    for ns in (BOOKINFO_NS, TEAM_NS):
        route = next((r for r in routes_in(state, ns) if _to_gateway(r, gw)), None)
        if route is None:
            continue
        entry = next((p for p in route.status_parents if p.controller == ISTIO_CONTROLLER
                      and (p.ref.namespace, p.ref.name) == (gw.meta.namespace, gw.meta.name)), None)
        conds = {c: entry.condition(c) for c in ("Accepted", "ResolvedRefs")} if entry else {}
        bad = [f"{c}={v.status}/{v.reason}" if v else f"no {c}" for c, v in conds.items()
               if v is None or v.status != "True"]
        if entry is None or bad:
            says = f"has no entry for Gateway {gw.meta.key}" if entry is None else "says " + ", ".join(bad)
            return failed(f"HTTPRoute {route.meta.key}: istiod's written status {says}.",
                          f"{ctx.look(f'get httproute -n {ns} {route.meta.name} -o yaml')} shows status.parents[] "
                          "with istiod's conditions and their messages.",
                          "Status lags a change by a moment; if it stays, its reason names the field to fix.")
        lines.append(f"HTTPRoute {route.meta.key} Accepted=True, ResolvedRefs=True")
    return passed(f"istiod wrote Programmed=True on Gateway {gw.meta.key}; " + "; ".join(lines) + ".")
