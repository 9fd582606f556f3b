"""Lab 5: what an egress gateway can and cannot do.

First the learner tries to use the egress gateway as an entry point and sees why nothing outside
can reach it (a ClusterIP Service: GW-NOT-EXTERNALLY-REACHABLE, trace outcome ``unreachable``).
Then they route mesh traffic for an external host through it, Istio's documented two-hop
pattern: a ServiceEntry (resolution DNS), a Gateway on the egress gateway pods, a
DestinationRule subset for the egress gateway Service, and one VirtualService with a ``mesh``
route and a gateway route; with ``outboundTrafficPolicy: REGISTRY_ONLY`` so undeclared hosts
fail. The proof is the egress gateway's access log, read through the API in live mode.

The request trace models clients outside the cluster, so the two in-mesh hops are followed
here with the shared binding rules of ``graders.mesh``; nothing is sent to the external host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from graders import mesh
from graders.analyzers.vs_destinations import known_external, subset_labels
from graders.checks import (
    Context,
    Lab,
    Outcome,
    blocked,
    client_ports,
    failed,
    grader_cannot,
    istio_and_bookinfo_ready,
    passed,
)
from graders.labs.lab04 import COURSE_INSTALL, learner_operators, shown_path
from graders.sources import istio_install
from graders.sources.live import LOG_ROLE, RBAC_FILE
from graders.state import CLUSTER_DOMAIN, Destination, Gateway, HttpRoute, Server, ServiceEntry, State, VirtualService

EGRESS = "istio-system/istio-egressgateway"
EGRESS_FQDN = f"istio-egressgateway.istio-system.{CLUSTER_DOMAIN}"
EGRESS_WORKLOAD = "istio-system/istio-egressgateway"
HTTP_PORT = 80
DNS_RESOLUTIONS = ("DNS", "DNS_ROUND_ROBIN")
LOG_TAIL_LINES = 500

LAB = Lab("lab05", "Egress gateway limits", chapter="chapters/06-egress", notebook="labs/lab05-egress.ipynb",
          summary="See why the egress gateway is no ingress, then send mesh traffic for an external host through it.")


# --- the external host and the two hops -------------------------------------------------------------
def external_entries(state: State) -> list[ServiceEntry]:
    return [se for se in state.service_entries if se.location.upper() == "MESH_EXTERNAL"]


def external_host(state: State) -> str | None:
    """The external host the learner routes: from a MESH_EXTERNAL ServiceEntry, else from a VirtualService."""
    for se in external_entries(state):
        for h in se.hosts:
            if "*" not in h:
                return h
    for vs in state.ordered_virtual_services:
        if mesh.MESH in mesh.vs_gateway_refs(vs):
            for h in vs.hosts:
                if "*" not in h and state.service_by_fqdn.get(mesh.resolve_host(h, vs.meta.namespace)) is None:
                    return h
    return None


def _route_for(vs: VirtualService, gateway: str, port: int) -> HttpRoute | None:
    """The first HTTP route of ``vs`` that takes every request for ``gateway`` (``mesh`` or ns/name) on ``port``:
    no match, or a match on the gateway and port alone (a path of ``/`` at most)."""
    for route in vs.http:
        if not route.matches:
            return route
        for m in route.matches:
            names = {mesh.resolve_gateway_ref(g, vs.meta.namespace) for g in m.gateways}
            takes_all = m.catch_all and not (m.source_labels or m.source_namespace)
            if (not names or gateway in names) and m.port in (None, port) and takes_all:
                return route
    return None


def _main_destination(route: HttpRoute) -> Destination | None:
    if not route.destinations:
        return None
    return max(route.destinations, key=lambda d: d.weight if d.weight is not None else 100)


@dataclass(frozen=True)
class Hop:
    vs: VirtualService
    route: HttpRoute
    destination: Destination
    fqdn: str  # the destination host as istiod resolves it


def mesh_hop(state: State, host: str) -> tuple[Hop | None, list[VirtualService]]:
    """(the hop a sidecar takes for http://host/, VirtualServices for the host that do not bind ``mesh``)."""
    unbound = []
    for vs in state.ordered_virtual_services:
        # a sidecar matches VirtualService hosts to Services lower-cased (httproute.go:260, :340)
        if not any(mesh.host_covers(h, host) for h in vs.hosts):
            continue
        if mesh.MESH not in mesh.vs_gateway_refs(vs):
            unbound.append(vs)
            continue
        route = _route_for(vs, mesh.MESH, HTTP_PORT)
        dest = _main_destination(route) if route else None
        if route and dest:
            return Hop(vs, route, dest, mesh.resolve_host(dest.host, vs.meta.namespace)), unbound
    return None, unbound


def egress_gateways_for(state: State, host: str) -> list[tuple[Gateway, Server]]:
    """HTTP servers of any Gateway that accept ``host`` (whatever pods they select)."""
    return [(gw, s) for gw in state.ordered_gateways for s in gw.servers
            if s.is_plain_http and any(mesh.host_covers(mesh.split_server_host(h, gw.meta.namespace)[1], host)
                                       for h in s.hosts)]


def on_egress(state: State, gw: Gateway) -> bool:
    return EGRESS_WORKLOAD in mesh.workloads(mesh.gateway_pods(state, gw))


def gateway_hop(state: State, host: str) -> tuple[Hop | None, Gateway | None]:
    """The hop the egress gateway takes for a request for ``host`` arriving on its HTTP port (and the
    Gateway that gives it; the first Gateway on the egress pods for ``host`` when none routes it)."""
    first: Gateway | None = None
    for gw, server in egress_gateways_for(state, host):
        if not on_egress(state, gw):
            continue
        first = first or gw
        for vs, domains in mesh.bound_virtual_services(state, gw, server, "istio-system"):
            route = _route_for(vs, gw.meta.key, server.port)
            dest = _main_destination(route) if route else None
            # the request for host meets the domains istiod wrote (server host ∩ VirtualService host)
            if route and dest and any(mesh.host_covers(d, host) for d in domains):
                return Hop(vs, route, dest, mesh.resolve_host(dest.host, vs.meta.namespace)), gw
    return None, first


def ingress_misuse(state: State, gateway_key: str) -> list[str]:
    """In-cluster Services a Gateway on a ClusterIP-only workload routes to: the mark of an ingress attempt
    (the egress pattern routes to external hosts instead)."""
    found = []
    for vs in mesh.virtual_services_for(state, gateway_key):
        for route in vs.http:
            for d in route.destinations:
                fqdn = mesh.resolve_host(d.host, vs.meta.namespace)
                svc = state.service_by_fqdn.get(fqdn)
                if svc is not None and fqdn != EGRESS_FQDN:
                    found.append(svc.meta.key)
    return list(dict.fromkeys(found))


def outbound_policy(state: State) -> tuple[str | None, str]:
    """(mode, where it was read). Live clusters keep it in ConfigMap data, which graders never read;
    an IstioOperator file given with the cluster is read instead."""
    mode, where = state.outbound_traffic_policy, "the simulated installation"
    for op in state.istio_operators:
        spec: Mapping = op.spec
        if istio_install.includes_control_plane(spec):
            mode = istio_install.outbound_policy(spec) or "ALLOW_ANY"
            where = (f"the course installation, IstioOperator {op.meta.name}" if op.meta.origin.startswith("baseline")
                     else f"IstioOperator {op.meta.name} in {shown_path(op.meta.origin.rsplit(':', 1)[0])}")
    return mode, where


# --- the access log (live mode only; read through the API, never by exec) ----------------------------
@dataclass(frozen=True)
class LogEvidence:
    lines: tuple[str, ...]  # lines that show the external host forwarded to its cluster and answered
    read: int  # pods whose log was read
    error: str | None = None
    failed: tuple[str, ...] = ()  # lines of hop 2 with a 5xx (or no) response
    forbidden: bool = False  # the error is a 403 on pods/log: the grader's missing grant


_STATUS = re.compile(r'^\[[^\]]*\] "[^"]*" (\d{1,3}) ')  # [start time] "METHOD path PROTOCOL" status


def log_status(line: str) -> int | None:
    """The response code of an access-log line in Istio's default text format (0: no response)."""
    m = _STATUS.match(line)
    return int(m.group(1)) if m else None


def egress_lines(text: str, host: str) -> tuple[list[str], list[str]]:
    """Access-log lines of a request for ``host`` that the gateway sent to that host's cluster:
    (answered, failed). Istio's default text format quotes the authority (``"httpbin.org"``) and
    names the upstream cluster (``outbound|80||httpbin.org``); a line with both shows hop 2 was
    tried on this gateway. Only a response below 500 shows the request really left and was answered:
    a 5xx (or 0, no response) means the gateway could not reach the host or got an error back."""
    lines = [line for line in text.splitlines()
             if f'"{host}"' in line and f"outbound|{HTTP_PORT}||{host}" in line]
    answered = [line for line in lines if 0 < (log_status(line) or 0) < 500]
    return answered, [line for line in lines if line not in answered]


def read_egress_log(ctx: Context, host: str) -> LogEvidence:
    """The egress gateway's access-log lines for ``host`` (the last LOG_TAIL_LINES of each pod)."""
    ns, _, _ = EGRESS.partition("/")
    logs = ctx.pod_logs(ns, "istio=egressgateway", "istio-proxy", LOG_TAIL_LINES)
    found = [egress_lines(text, host) for _, text in logs.logs]
    return LogEvidence(tuple(line for ok, _ in found for line in ok), len(logs.logs), logs.error,
                       tuple(line for _, bad in found for line in bad), logs.forbidden)


# --- the checks ---------------------------------------------------------------------------------------
@LAB.check("ready", "Istio, the egress gateway and the curl client are ready", points=1)
def ready(ctx: Context) -> Outcome:
    base = istio_and_bookinfo_ready(ctx, "default")
    if not base.passed:
        return base
    state = ctx.state
    problems = []
    egress = state.service(*EGRESS.split("/"))
    pruner = next((op for op in learner_operators(state) if op.meta.name == COURSE_INSTALL and not any(
        o["kind"] == "Service" and o["metadata"]["name"] == "istio-egressgateway"
        for o in istio_install.render({"metadata": {"name": op.meta.name}, "spec": op.spec}))), None)
    if egress is None and pruner is not None:
        where = shown_path(pruner.meta.origin.rsplit(":", 1)[0])
        return failed(f"There is no Service {EGRESS}: IstioOperator {pruner.meta.name} in {where} is the course "
                      "installation and does not render the egress gateway, so installing it prunes the egress "
                      "gateway.",
                      f"Look at spec.profile and components.egressGateways of IstioOperator {pruner.meta.name}: the "
                      "course's file installs the egress gateway with profile demo.",
                      "Start again from a copy of labs/cluster/istio-operator.yaml and change only "
                      "spec.meshConfig.outboundTrafficPolicy.mode.")
    if egress is None:
        problems.append(f"there is no Service {EGRESS} (the course installation's demo profile creates it)")
    elif not state.ready_pods_for(egress):
        problems.append(f"the egress gateway Service {EGRESS} has no ready pod")
    if not any(p.ready for p in state.pods_matching({"app": "curl"}, "default")):
        problems.append("the client pod default/curl is missing or not ready")
    if problems:
        return failed("Not ready yet: " + "; ".join(problems) + ".",
                      f"{ctx.look('get pods -n istio-system')} and {ctx.look('get pods -n default')} show what is "
                      "missing or not Ready.",
                      "`python -m graders lab setup 5` creates the curl client; the egress gateway comes with the "
                      "course installation (labs/cluster/istio-operator.yaml).")
    return passed(f"Istio, the egress gateway {EGRESS} and the client default/curl are ready.")


@LAB.check("service-entry", "The external host is declared with resolution DNS", points=2)
def service_entry(ctx: Context) -> Outcome:
    state = ctx.state
    host = external_host(state)
    entries = [se for se in external_entries(state) if host and host in se.hosts]
    if not entries:
        return failed("No ServiceEntry declares an external host (location MESH_EXTERNAL), so the mesh registry "
                      "does not know it.",
                      "Write a ServiceEntry in your work folder (labs/lab05/work/) with spec.hosts, spec.ports, "
                      "spec.location and spec.resolution.",
                      "Under REGISTRY_ONLY a host that no ServiceEntry declares is refused by the sidecar itself.")
    se = entries[0]
    if se.resolution.upper() not in DNS_RESOLUTIONS:
        return failed(f"ServiceEntry {se.meta.key} for {host} uses resolution {se.resolution}.",
                      f"Look at spec.resolution of ServiceEntry {se.meta.key}.",
                      "With NONE the egress gateway forwards to the address the request was originally sent to, "
                      "which after the mesh hop is the egress gateway itself: Istio's egress task warns the "
                      "traffic then loops. The gateway must look the name up itself.")
    http = [p for p in se.ports if p[0] == HTTP_PORT and p[1] in ("HTTP", "HTTP2")]
    if not http:
        return failed(f"ServiceEntry {se.meta.key} declares {host} without an HTTP port {HTTP_PORT}.",
                      f"Look at spec.ports of ServiceEntry {se.meta.key}: number, name and protocol.",
                      "The mesh and gateway routes of this lab are HTTP routes on port 80.")
    return passed(f"ServiceEntry {se.meta.key} declares {host} (port {HTTP_PORT} HTTP, resolution {se.resolution}).")


@LAB.check("egress-gateway", "A Gateway on the egress gateway pods accepts the external host", points=2)
def egress_gateway(ctx: Context) -> Outcome:
    state = ctx.state
    host = external_host(state)
    if host is None:
        return failed("There is no external host to route yet (no ServiceEntry declares one).",
                      "Declare the external host with a ServiceEntry first (step 3).",
                      "Then write a Gateway whose server hosts list that same host.")
    if not mesh.workloads(state.pods).get(EGRESS_WORKLOAD):
        # No egress gateway pods at all: the Gateway's selector cannot be judged (the first check says why).
        return blocked([LAB.get("ready").title], f"there are no {EGRESS_WORKLOAD} pods to select")
    servers = egress_gateways_for(state, host)
    if not servers:
        return failed(f"No Gateway has an HTTP server for {host}.",
                      "Write a Gateway whose spec.servers[].hosts lists the external host.",
                      "It is the egress gateway's listener for that host: port 80, protocol HTTP.")
    hop, routed = gateway_hop(state, host)  # the Gateway the host's VirtualService is bound to, when there is one
    routed = routed if hop else None
    exact = [(g, srv) for g, srv in servers if any(mesh.split_server_host(h, g.meta.namespace)[1] == host
                                                   for h in srv.hosts)]
    ordered = sorted(servers, key=lambda p: (p[0] is not routed, (p[0], p[1]) not in exact))
    for gw, server in ordered:
        if on_egress(state, gw):
            ports = client_ports(state, server.port, EGRESS)
            if not ports:
                return failed(f"Gateway {gw.meta.key} port {server.port} is not a port (or targetPort) of Service "
                              f"{EGRESS}, so the mesh hop cannot reach its listener.",
                              f"Compare spec.servers[].port.number of Gateway {gw.meta.key} with "
                              f"{ctx.look('get svc istio-egressgateway -n istio-system')}.",
                              "The egress gateway Service maps 80 to 8080 and 443 to 8443.")
            return passed(f"Gateway {gw.meta.key} programs {EGRESS_WORKLOAD} for {host} on port {server.port} "
                          f"(Service port {', '.join(map(str, ports))}).")
    gw = servers[0][0]
    selected = sorted(mesh.workloads(mesh.gateway_pods(state, gw)))
    return failed(f"Gateway {gw.meta.key} accepts {host} but selects {', '.join(selected) or 'no pod'}, not the "
                  f"egress gateway {EGRESS_WORKLOAD}.",
                  f"Look at spec.selector of Gateway {gw.meta.key} and the labels of the egress gateway pods "
                  f"({ctx.look('get pods -n istio-system --show-labels')}).",
                  "The same Envoy image runs both gateways; the selector decides which one gets this listener.")


@LAB.check("destination-rule", "A DestinationRule names the traffic sent to the egress gateway", points=1)
def destination_rule(ctx: Context) -> Outcome:
    state = ctx.state
    rules = state.destination_rules_by_host.get(EGRESS_FQDN, ())
    with_subsets = [dr for dr in rules if dr.subsets]
    if not with_subsets:
        return failed(f"No DestinationRule for the egress gateway Service ({EGRESS}) defines a subset.",
                      "Write a DestinationRule whose spec.host is the egress gateway Service's full name, with one "
                      "entry in spec.subsets.",
                      "The mesh route sends to that subset; a subset needs no labels here, only a name.")
    hop = mesh_hop(state, external_host(state) or "")[0]
    if hop and hop.fqdn == EGRESS_FQDN and hop.destination.subset and \
            subset_labels(state, EGRESS_FQDN, hop.destination.subset) is None:
        return failed(f"VirtualService {hop.vs.meta.key} sends to subset '{hop.destination.subset}', which no "
                      "DestinationRule for the egress gateway defines (that would be a 503 NC for every request).",
                      f"Compare route.destination.subset in VirtualService {hop.vs.meta.key} with spec.subsets of "
                      f"DestinationRule {with_subsets[0].meta.key}.",
                      "The names must be identical.")
    dr = with_subsets[0]
    return passed(f"DestinationRule {dr.meta.key} defines subset {', '.join(s.name for s in dr.subsets)} for "
                  f"{EGRESS_FQDN}.")


@LAB.check("mesh-route", "Sidecars send the external host to the egress gateway", points=2)
def mesh_route(ctx: Context) -> Outcome:
    state = ctx.state
    host = external_host(state)
    if host is None:
        return failed("There is no external host to route yet (no ServiceEntry declares one).",
                      "Declare the external host with a ServiceEntry first (step 3).",
                      "Then one VirtualService for that host carries both hops.")
    hop, unbound = mesh_hop(state, host)
    if hop is None:
        if unbound:
            vs = unbound[0]
            return failed(f"VirtualService {vs.meta.key} for {host} does not list `mesh` in spec.gateways, so "
                          "sidecars ignore it and send the traffic straight to the external host.",
                          f"Look at spec.gateways of VirtualService {vs.meta.key}.",
                          "The egress pattern needs two routes in one VirtualService: one matched on the `mesh` "
                          "gateway (sidecars) and one matched on your egress Gateway.")
        return failed(f"No VirtualService routes {host} for the sidecars (gateway `mesh`).",
                      "Write a VirtualService for the external host that lists `mesh` in spec.gateways.",
                      "Its `mesh` route sends to the egress gateway Service, port 80, with your subset.")
    if hop.fqdn != EGRESS_FQDN:
        return failed(f"The `mesh` route of VirtualService {hop.vs.meta.key} sends {host} to {hop.fqdn}, not to the "
                      "egress gateway, so the traffic leaves from the application pod's sidecar.",
                      f"Look at spec.http[{hop.route.index}].route[].destination of VirtualService {hop.vs.meta.key}.",
                      "Sidecars must send this host to the egress gateway Service (its full name), port 80.")
    if hop.destination.port != HTTP_PORT:
        return failed(f"The `mesh` route of VirtualService {hop.vs.meta.key} reaches the egress gateway without port "
                      f"{HTTP_PORT} (it has several ports, so the port must be given).",
                      f"Look at route.destination.port of VirtualService {hop.vs.meta.key}'s `mesh` route.",
                      "Use the egress gateway Service's HTTP port, not its targetPort.")
    subset = f", subset {hop.destination.subset}" if hop.destination.subset else ""
    return passed(f"Sidecars send http://{host}/ to {EGRESS} port {HTTP_PORT}{subset} (route "
                  f"http[{hop.route.index}] of VirtualService {hop.vs.meta.key}).")


@LAB.check("gateway-route", "The egress gateway forwards the external host out of the mesh", points=2,
           needs=("egress-gateway",))
def gateway_route(ctx: Context) -> Outcome:
    state = ctx.state
    host = external_host(state) or ""
    hop, gw = gateway_hop(state, host)
    if hop is None:
        return failed(f"No VirtualService bound to Gateway {gw.meta.key if gw else '?'} routes {host} on the egress "
                      "gateway.",
                      "Add your egress Gateway (<namespace>/<name>) to spec.gateways of the external host's "
                      "VirtualService, with a route matched on that gateway.",
                      "That route's destination is the external host itself, port 80.")
    if hop.fqdn == EGRESS_FQDN:
        return failed(f"On the egress gateway, route http[{hop.route.index}] of VirtualService {hop.vs.meta.key} "
                      "sends the traffic back to the egress gateway: a loop.",
                      "Look at spec.http[].match[].gateways of that VirtualService: each route names the gateway it "
                      "is for.",
                      "The `mesh` route goes to the egress gateway; the gateway's route goes to the external host.")
    if not known_external(state, hop.destination.host):
        return failed(f"On the egress gateway, VirtualService {hop.vs.meta.key} routes to {hop.destination.host}, "
                      "which no ServiceEntry declares.",
                      f"Look at the gateway route's destination host in VirtualService {hop.vs.meta.key}.",
                      "It must be the host the ServiceEntry declares.")
    return passed(f"The egress gateway (Gateway {gw.meta.key if gw else ''}) sends {host} to "
                  f"{hop.destination.host} port {hop.destination.port or HTTP_PORT} (route http[{hop.route.index}] "
                  f"of VirtualService {hop.vs.meta.key}).")


@LAB.check("egress-not-ingress", "The egress gateway serves as an exit, not as an entry point", points=1,
           needs=("egress-gateway",))
def egress_not_ingress(ctx: Context) -> Outcome:
    """Judged once the egress gateway has its real job (step 4), so the point is not given for an empty
    cluster: step 1's experiment must be gone and the exit Gateway in place."""
    misuse = [(f, ingress_misuse(ctx.state, f.details.get("gateway", "")))
              for f in ctx.findings_for("GW-NOT-EXTERNALLY-REACHABLE")]
    misuse = [(f, services) for f, services in misuse if services]
    tr = ctx.trace(port=HTTP_PORT, host="localhost", path="/productpage", gateway=EGRESS)
    why = f"a request from outside to {EGRESS} ends as `{tr.outcome}` ({tr.summary})"
    if misuse:
        f, services = misuse[0]
        return failed(f"Gateway {f.details.get('gateway')} routes to {', '.join(services)} but runs on "
                      f"{f.details.get('workload')}, exposed only by {f.details.get('services')}: {why}.",
                      f"Look at spec.selector of Gateway {f.details.get('gateway')} and at the TYPE column of "
                      f"{ctx.look('get svc -n istio-system')}.",
                      "Clients outside the cluster come in through the ingress gateway (a NodePort Service here); "
                      "delete the step 1 experiment from your work folder (labs/lab05/work/) once you have seen it "
                      "fail.")
    host = external_host(ctx.state) or ""
    _, gw = gateway_hop(ctx.state, host)
    exit_gw = f"Gateway {gw.meta.key} uses it as an exit for {host}" if gw else f"it is an exit for {host}"
    return passed(f"{exit_gw}, and no Gateway on the egress gateway routes to an in-cluster Service; as step 1 "
                  f"showed, {why}.")


@LAB.check("registry-only", "Undeclared external hosts are refused (REGISTRY_ONLY)", points=2)
def registry_only(ctx: Context) -> Outcome:
    mode, where = outbound_policy(ctx.state)
    if mode == "REGISTRY_ONLY":
        return passed(f"outboundTrafficPolicy is REGISTRY_ONLY (read from {where}): sidecars refuse hosts the mesh "
                      "does not know, so the ServiceEntry is what lets the external host through.")
    if mode is None:
        return failed("The outbound traffic policy cannot be read from this cluster: it lives in the data of "
                      "ConfigMap istio-system/istio, which the graders never read, and istioctl keeps no "
                      "IstioOperator in the cluster.",
                      "Grade with your IstioOperator file as well (the notebook's MANIFESTS, or "
                      "`python -m graders check 5 --context ... labs/lab05/work/istio-operator.yaml`), so the "
                      "setting you applied is read from it.",
                      "To see it yourself: `kubectl -n istio-system get configmap istio -o yaml` and look for "
                      "outboundTrafficPolicy under mesh.")
    return failed(f"outboundTrafficPolicy is {mode} (read from {where}): any host is let through, declared or not.",
                  "Look at spec.meshConfig.outboundTrafficPolicy.mode in your copy of the course's IstioOperator.",
                  "Change the mode in a copy of labs/cluster/istio-operator.yaml (same metadata.name) and "
                  "`istioctl install -f` it; REGISTRY_ONLY is not a firewall, it makes missing ServiceEntries "
                  "fail loudly.")


@LAB.check("egress-log", "The egress gateway's access log shows the request leaving", points=2,
           needs=("service-entry", "mesh-route", "gateway-route"), live_only=True)
def egress_log(ctx: Context) -> Outcome:
    """Only a live cluster has an access log (snapshots hold no pod logs; the simulated cluster sends
    nothing), so elsewhere this check is not evaluated and its points are left out of the score."""
    host = external_host(ctx.state) or ""
    what = (f"line with the authority \"{host}\" and the upstream cluster outbound|{HTTP_PORT}||{host} in the "
            f"access log of the {EGRESS_WORKLOAD} pods")
    logs = read_egress_log(ctx, host)
    if logs.forbidden:
        ns = EGRESS.partition("/")[0]
        return grader_cannot(f"the grader may not read the egress gateway's log (it needs `get` on pods/log in "
                             f"namespace {ns}; {logs.error}).",
                             f"apply the optional Role {LOG_ROLE} in {RBAC_FILE}, bind it to the grader's "
                             "user or ServiceAccount, and grade again to include it")
    if logs.error:
        return failed(f"The egress gateway's log could not be read through the API ({logs.error}).",
                      "Check that your kube context may read pods/log in istio-system: "
                      "`kubectl auth can-i get pods/log -n istio-system`.",
                      "The graders read logs through the API only; they never exec into pods.")
    if logs.lines:
        return passed(f"Found {len(logs.lines)} matching line(s) in the access log of {EGRESS_WORKLOAD}, e.g. "
                      f"{logs.lines[-1][:240]}")
    send = (f"Send a request from a pod with a sidecar, e.g. `kubectl exec deploy/curl -- curl -sI "
            f"http://{host}/headers`, then grade again.")
    if logs.failed:
        status = log_status(logs.failed[-1])
        return failed(f"The egress gateway sent {host} to outbound|{HTTP_PORT}||{host} but got no good answer: "
                      f"{len(logs.failed)} line(s), the last with status {status}: {logs.failed[-1][:240]}",
                      "The response flags after the status say why (UF/URX: the connection to the host failed, "
                      "NC: no such cluster): compare spec.resolution and spec.ports of your ServiceEntry with "
                      "the gateway route's destination. " + send,
                      "A 5xx here comes from the egress gateway itself or from the external host, so the request "
                      "did not succeed; it is not counted.")
    return failed(f"No {what} (read the last {LOG_TAIL_LINES} lines of {logs.read} pod(s)).", send,
                  "No line at all means the sidecar did not use the egress gateway: check the `mesh` route. "
                  "meshConfig.accessLogFile must be /dev/stdout (the course installation sets it).")
