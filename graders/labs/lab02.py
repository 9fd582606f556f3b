"""Lab 2: Gateway port, Service port, targetPort, containerPort.

The lab starts with a Gateway on 7070 that nobody can reach. Two fixes really work: move the
Gateway to a port the gateway Service already forwards (80, or 8080: the same Envoy listener), or
give the gateway Service a port for 7070 (IstioOperator, or a Service patch) whose targetPort is
1024 or above. Both pass; so does neither trap: a port below 1024 with no Service mapping (81) is
dropped by istiod, and an IstioOperator ports list replaces the Service's ports instead of adding.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from graders.checks import (
    BOOKINFO_TITLE,
    INGRESS,
    Context,
    Lab,
    Outcome,
    blocked,
    client_ports,
    failed,
    gateway_service,
    gateway_services,
    gateways_on,
    http_servers,
    istio_and_bookinfo_ready,
    judged_on_gateway,
    lab_gateways,
    learner_gateways,
    names,
    of_lab,
    passed,
    request_hints,
    served_host,
    virtual_service_bound,
)
from graders.mesh import gateway_pods, resolve_listener_port
from graders.state import ServicePort

HOST = "bookinfo.example.com"
PRODUCTPAGE = "default/productpage"
WORK = "labs/lab02/work/"
RESERVED = "GW-PORT-RESERVED"  # Envoy's own listener ports (15021 status, 15090 metrics): graders.analyzers


def svc_cmd(ctx: Context) -> str:
    shown = ctx.look("get svc istio-ingressgateway -n istio-system -o yaml")
    return f"{shown} (spec.ports: port, targetPort, nodePort)"

LAB = Lab("lab02", "Ports: Gateway port, Service port, targetPort, containerPort",
          chapter="chapters/03-ports", notebook="labs/lab02-ports.ipynb",
          summary="Make the Gateway that starts on port 7070 reachable, by either fix that really works.")


@cache
def course_service_ports() -> tuple[ServicePort, ...]:
    """The ingress gateway Service ports the course installs (from labs/cluster/istio-operator.yaml)."""
    from graders.sources import load_state

    svc = gateway_service(load_state())
    return svc.ports if svc else ()


def _servers(ctx: Context):
    return [(gw, s) for gw in gateways_on(ctx.state) if of_lab(gw.meta, LAB.id) for s in http_servers(gw)]


def _port_findings(ctx: Context, code: str, gw, port: int) -> list:
    return [f for f in ctx.findings_for(code, gw.meta.ref) if f.details.get("port") == port]


@LAB.check("istio-bookinfo-ready", "Istio and Bookinfo are installed and ready", points=1)
def istio_bookinfo_ready(ctx: Context) -> Outcome:
    return istio_and_bookinfo_ready(ctx)


@LAB.check("gateway-selects-pods", "An HTTP Gateway selects the ingress gateway pods", points=1)
def gateway_selects_pods(ctx: Context) -> Outcome:
    servers = _servers(ctx)
    if servers:
        keys = ", ".join(dict.fromkeys(gw.meta.key for gw, _ in servers))
        return passed(f"Gateway {keys} programs the pods of {INGRESS}.")
    found = lab_gateways(ctx.state, LAB.id)
    on = [g for g in gateways_on(ctx.state) if g in found]
    if on:
        what = f"Gateway {names(on)} has no plain-HTTP server (protocol HTTP)"
    elif found:
        what = f"Gateway {names(found)} selects no pod of the ingress gateway {INGRESS}"
    else:
        what = "No Gateway found"
    return failed(f"{what}; this lab starts from Gateway default/bookinfo-gateway on the ingress gateway.",
                  "Run the lab's setup (`python -m graders lab setup lab02`) or copy labs/lab02/start/ into "
                  f"{WORK}, then look at spec.selector and spec.servers of the Gateway.",
                  "The Gateway must keep selector istio: ingressgateway and a server with protocol HTTP; only "
                  "its port is the problem in this lab.")


def _on_ingress(check):
    """Run a port check on the learner's Gateways as if they selected the ingress gateway: a wrong selector
    has its own check, so it must not cost the port checks their points too (one mistake, once)."""
    def judged(ctx: Context) -> Outcome:
        if not learner_gateways(ctx.state, lab=LAB.id):
            return blocked([LAB.get("gateway-selects-pods").title], "there is no Gateway")
        fixed, note = judged_on_gateway(ctx)
        outcome = check(fixed)
        return replace(outcome, message=f"{outcome.message.rstrip('.')}{note}.") if note else outcome
    judged.__doc__ = check.__doc__
    return judged


@LAB.check("gateway-port-on-service", "A Service of the gateway pods forwards to the Gateway's port", points=2)
@_on_ingress
def gateway_port_on_service(ctx: Context) -> Outcome:
    bad, good = [], []
    for gw, server in _servers(ctx):
        hit = _port_findings(ctx, "GW-PORT-NOT-ON-SERVICE", gw, server.port)
        (bad if hit else good).append((gw, server))
    if not bad:
        return passed("; ".join(f"Gateway {gw.meta.key} port {s.port} is forwarded to by Service "
                                f"{_forwarding(ctx, s.port)}" for gw, s in good)
                      + " (as a Service port or its targetPort).")
    gw, server = bad[0]
    return failed(f"Gateway {gw.meta.key} listens on port {server.port}, which is neither a port nor a targetPort of "
                  f"any Service selecting the ingress gateway pods ({names(gateway_services(ctx.state))}): Envoy "
                  "opens that listener, but no traffic can reach it.",
                  f"Compare spec.servers[].port.number of Gateway {gw.meta.key} with {svc_cmd(ctx)}.",
                  "Either use a port the Service already forwards (a Service port or the targetPort behind it), or "
                  "add a port to the gateway Service (the durable way: k8s.service.ports in the IstioOperator). "
                  "A containerPort or a nodePort does not count.")


@LAB.check("gateway-port-unprivileged", "The Gateway's listener port is one the gateway pod may open", points=2)
@_on_ingress
def gateway_port_unprivileged(ctx: Context) -> Outcome:
    state = ctx.state
    for gw, server in _servers(ctx):
        reserved = _port_findings(ctx, RESERVED, gw, server.port)
        if reserved:
            return failed(reserved[0].message, reserved[0].hint,
                          "Port 15021 is in the gateway Service so that Kubernetes and load balancers can probe the "
                          "pod's readiness, not for traffic: use the port the lab started from with a Service port "
                          "for it (step 2, fix B), or one the Service already forwards (fix A).")
        hit = _port_findings(ctx, "GW-PORT-PRIVILEGED", gw, server.port)
        if hit:
            listener = hit[0].details.get("listener")
            via = "as written (no Service port translates it)" if listener == server.port else \
                f"through the Service's targetPort {listener}"
            return failed(f"Gateway {gw.meta.key} port {server.port} becomes Envoy listener {listener} {via}; it is "
                          "below 1024 and the gateway pod runs unprivileged, so istiod drops the server.",
                          f"Work out which listener port Gateway {gw.meta.key} port {server.port} turns into: the "
                          f"targetPort of the matching Service port, else the number itself. {svc_cmd(ctx)} lists "
                          "the Service ports.",
                          "The istioctl-installed gateway runs as user 1337 (ISTIO_META_UNPRIVILEGED_POD=true) and "
                          "may not bind ports below 1024; map the Service port to a targetPort of 1024 or above.")
    listeners = []
    for gw, server in _servers(ctx):
        pods = gateway_pods(state, gw)
        if pods:
            listeners.append(f"{server.port} -> {resolve_listener_port(state, pods[0], server.port).listener}")
    return passed(f"Every HTTP server resolves to a listener of 1024 or above (Gateway port -> listener: "
                  f"{', '.join(listeners)}).")


@LAB.check("service-keeps-ports", "The gateway Service still has the course's ports", points=1)
def service_keeps_ports(ctx: Context) -> Outcome:
    svc = gateway_service(ctx.state)
    if svc is None:
        return failed(f"Service {INGRESS} is missing.", f"{ctx.look('get svc -n istio-system')} lists the gateway "
                      "Services.",
                      "`istioctl install -f labs/cluster/istio-operator.yaml -y` puts the course's gateway back.")
    problems = []
    for want in course_service_ports():
        have = svc.port(want.port)
        if have is None:
            problems.append(f"port {want.port} ({want.name}) is gone")
        elif have.target_port != want.target_port:
            problems.append(f"port {want.port} now forwards to {have.target_port}")
        elif want.node_port and have.node_port and have.node_port != want.node_port:
            problems.append(f"port {want.port} moved to nodePort {have.node_port}")
    if svc.type == "ClusterIP":
        problems.append("it became ClusterIP, so nothing outside the cluster reaches it")
    if not problems:
        return passed(f"Service {INGRESS} still has " + ", ".join(p.label() for p in course_service_ports()) + ".")
    return failed(f"Service {INGRESS}: {'; '.join(problems)}, so what used those ports (lab 1, http://localhost:8080/) "
                  "stops working.",
                  f"Compare {svc_cmd(ctx)} with labs/cluster/istio-operator.yaml.",
                  "In an IstioOperator, k8s.service.ports replaces the chart's whole list: keep every existing port "
                  "in it and add the new one.")


@LAB.check("vs-bound", "The VirtualService is still bound to the Gateway", points=1)
def vs_bound(ctx: Context) -> Outcome:
    """Judged against the learner's Gateway even when its selector is wrong (that has its own check)."""
    gateways = learner_gateways(ctx.state, lab=LAB.id)
    if not gateways:
        return blocked([LAB.get("gateway-selects-pods").title], "there is no Gateway to bind to")
    return virtual_service_bound(ctx, WORK, gateways=gateways)


@LAB.check("request-chosen-port", "A real request on the port you chose returns the Bookinfo page", points=3,
           needs=("istio-bookinfo-ready", "gateway-selects-pods", "gateway-port-on-service",
                  "gateway-port-unprivileged", "vs-bound"))
def request_chosen_port(ctx: Context) -> Outcome:
    """Through whichever Service forwards to the Gateway's listener: the course's gateway Service, or a
    Service of the learner's own that selects the same pods (both meet the lab's objective)."""
    chosen = next(((svc, ports[0]) for _, s in _servers(ctx) for svc in gateway_services(ctx.state)
                   if (ports := client_ports(ctx.state, s.port, svc.meta.key))), None)
    if chosen is None:
        return failed("No port of a Service selecting the ingress gateway pods leads to a listener of your Gateway.",
                      f"Compare the Gateway's port with the targetPorts in {svc_cmd(ctx)}.",
                      "A client connects to a Service port; the gateway pod must have a listener on its targetPort.")
    svc, port = chosen
    ev = ctx.request(port=port, host=served_host(ctx, HOST), path="/productpage", service=PRODUCTPAGE,
                     gateway=svc.meta.key, expect_text=BOOKINFO_TITLE)
    if ev.ok:
        return passed(ev.sentence)
    first, more = request_hints(ev, HOST, ctx)
    return failed(ev.sentence, first, f"{more} `python -m graders trace {WORK} --gateway {svc.meta.key} --port {port} "
                                      "--path /productpage` shows each step of the request.")


def _forwarding(ctx: Context, server_port: int) -> str:
    """``ns/svc port N`` for each Service selecting the ingress gateway pods that reaches ``server_port``."""
    return ", ".join(f"{svc.meta.key} port {'/'.join(map(str, ports))}" for svc in gateway_services(ctx.state)
                     if (ports := client_ports(ctx.state, server_port, svc.meta.key))) or INGRESS
