"""Lab 3: two Bookinfo copies (default and test) whose Gateways claim the same port and hosts "*".

The start state reproduces the classic "only one of them works" report: istiod merges both
Gateways into one route table, oldest Gateway first, so /productpage always lands in one
namespace. The learner makes both reachable (distinct hosts sent in the Host header, or a
separate port the gateway Service exposes) and writes gateway references as <namespace>/<name>.
The checks name the current winner and why, using the GW-CONFLICT finding, and prove each
namespace is reachable with a request (real, recorded or traced) whose destination is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from graders import mesh
from graders.checks import (
    BOOKINFO_TITLE,
    INGRESS,
    Context,
    Evidence,
    Lab,
    Outcome,
    blocked,
    client_ports,
    failed,
    gateway_service_pods,
    gateways_on,
    istio_and_bookinfo_ready,
    passed,
    request_hints,
)
from graders.state import Gateway, State, VirtualService

NAMESPACES = ("default", "test")
PATH = "/productpage"

LAB = Lab("lab03", "Two Gateways, one port: host and port conflicts", chapter="chapters/04-conflicts",
          notebook="labs/lab03-conflicts.ipynb",
          summary="Make the Bookinfo copies in default and test both reachable through one ingress gateway.")


# --- shared with lab 4: where a namespace's Bookinfo can be reached, and the proof it is ------------
@dataclass(frozen=True)
class EntryPoint:
    """One way a client could ask for a namespace's product page: gateway Service, port, Host header."""

    gateway: str  # ns/name of the gateway Service
    port: int
    host: str
    via: str  # "Gateway x/y and VirtualService x/z" (what makes this entry point exist)


def example_host(domain: str) -> str:
    """A Host header a client would send for a virtual-host domain (``*`` -> what plain curl sends)."""
    if domain == "*":
        return "localhost"
    return domain.replace("*", "www")


def routes_to(vs: VirtualService, fqdn: str) -> bool:
    return any(mesh.resolve_host(d.host, vs.meta.namespace) == fqdn for r in vs.http for d in r.destinations)


def entry_points(state: State, namespace: str, gateway: str = INGRESS) -> list[EntryPoint]:
    """Entry points the configuration offers for ``namespace``'s productpage through ``gateway``.

    First the (port, host) pairs where a VirtualService routing to that productpage meets a Gateway
    server; failing that, the hosts of the namespace's own Gateways (so the failure can be shown
    with a request the learner would plausibly send)."""
    fqdn = f"productpage.{namespace}.{mesh.CLUSTER_DOMAIN}"
    pods = gateway_service_pods(state, gateway)
    proxy_ns = pods[0].meta.namespace if pods else "istio-system"
    found: list[EntryPoint] = []
    fallback: list[EntryPoint] = []
    for gw in gateways_on(state, gateway):
        for server in (s for s in gw.servers if s.is_plain_http):
            ports = client_ports(state, server.port, gateway) or [server.port]
            bound = [(vs, domains) for vs, domains in mesh.bound_virtual_services(state, gw, server, proxy_ns)
                     if routes_to(vs, fqdn)]
            for vs, domains in bound:
                found.extend(EntryPoint(gateway, ports[0], example_host(d),
                                        f"Gateway {gw.meta.key} and VirtualService {vs.meta.key}") for d in domains)
            if gw.meta.namespace == namespace and not bound:
                fallback.extend(EntryPoint(gateway, ports[0], example_host(mesh.split_server_host(h, namespace)[1]),
                                           f"Gateway {gw.meta.key}") for h in server.hosts)
    return list(dict.fromkeys(found or fallback))


def curl_line(ep: EntryPoint) -> str:
    host_port = {80: 8080}.get(ep.port, ep.port) if ep.gateway == INGRESS else ep.port
    header = "" if ep.host == "localhost" else f"-H 'Host: {ep.host}' "
    return f"curl {header}http://localhost:{host_port}{PATH}"


@dataclass(frozen=True)
class Proof:
    ok: bool
    evidence: Evidence  # of the working request, else of the first one tried
    extra: str  # a sentence on the destination (live and snapshot modes)
    entry: EntryPoint  # the entry point the evidence is for


def prove_reachable(ctx: Context, namespace: str, points: list[EntryPoint]) -> Proof:
    """Is ``namespace``'s product page reachable through one of ``points`` (tried in order)?

    A live or recorded 200 only shows *a* Bookinfo answered; which namespace's productpage served
    it is read from the trace of the same request over the same state."""
    service = f"{namespace}/productpage"
    first: Proof | None = None
    for ep in points:
        ev = ctx.request(port=ep.port, host=ep.host, path=PATH, service=service, gateway=ep.gateway,
                         expect_text=BOOKINFO_TITLE)
        extra = ""
        if ev.ok and ev.source != "simulated":
            dest = (ctx.trace(port=ep.port, host=ep.host, path=PATH, gateway=ep.gateway).destination or {})
            if dest.get("service") != service:
                extra = (f" The page came back, but the configuration routes this request to "
                         f"{dest.get('service') or 'no Service'}, not {service}.")
                ev = replace(ev, ok=False)
            else:
                extra = f" The configuration routes it to {service} (traced)."
        if ev.ok:
            return Proof(True, ev, extra, ep)
        first = first or Proof(False, ev, extra, ep)
    assert first is not None, "prove_reachable needs at least one entry point"
    return first


def winner_reason(state: State, winner: Gateway, loser: Gateway) -> str:
    """Why istiod merges ``winner`` first: creationTimestamp, then name, then namespace."""
    w, lo = winner.meta, loser.meta
    if w.synthetic_time or lo.synthetic_time:
        return ("in the simulated cluster objects count as created in the order they are loaded (the course "
                "baseline, then the lab's start state, then your files, and an object you re-apply keeps its first "
                f"creation time), and {w.key} was loaded first")
    wt, lt = int(w.created.timestamp()), int(lo.created.timestamp())  # type: ignore[union-attr]
    if wt != lt:
        return f"it is older (created {w.created:%Y-%m-%d %H:%M:%S} UTC, the other at {lo.created:%H:%M:%S})"
    if w.name != lo.name:
        return "both were created in the same second, so the name decides (alphabetical order)"
    return "both were created in the same second and share a name, so the namespace decides (alphabetical order)"


# --- the checks ---------------------------------------------------------------------------------
def _lab_gateways(state: State) -> list[Gateway]:
    return [g for g in gateways_on(state) if g.meta.namespace in NAMESPACES]


def _lab_virtual_services(state: State) -> list[VirtualService]:
    return [vs for vs in state.ordered_virtual_services if vs.meta.namespace in NAMESPACES
            and any(r != mesh.MESH for r in mesh.vs_gateway_refs(vs))]


@LAB.check("ready", "Istio and both Bookinfo copies are ready", points=1)
def ready(ctx: Context) -> Outcome:
    for ns in NAMESPACES:
        outcome = istio_and_bookinfo_ready(ctx, ns)
        if not outcome.passed and ns == "test" and "Istio" not in outcome.message:
            return failed(outcome.message, *outcome.hints[:1],
                          "The Bookinfo copy in test comes with the lab's start state: `python -m graders lab setup "
                          "3` (or 4 for lab 4) creates it.")
        if not outcome.passed:
            return outcome
    return passed("Istio and the Bookinfo services in default and in test are installed and have ready pods.")


@LAB.check("refs-qualified", "VirtualServices name their Gateway as <namespace>/<name>", points=1)
def refs_qualified(ctx: Context) -> Outcome:
    vss = _lab_virtual_services(ctx.state)
    if not vss:
        return failed("No VirtualService in default or test is bound to a gateway.",
                      "Each namespace needs a VirtualService whose spec.gateways names its Gateway.",
                      "Start from the VirtualService `bookinfo` the lab's start state created in each namespace.")
    for vs in vss:
        for f in ctx.findings_for("VS-GATEWAY-NOT-FOUND", vs.meta.ref):
            return failed(f"VirtualService {vs.meta.key} lists gateway '{f.details.get('ref')}', which means "
                          f"{f.details.get('resolved')}; it does not exist, so these routes are on no gateway.",
                          f"Look at spec.gateways of VirtualService {vs.meta.key}.",
                          "A name without a namespace always means the VirtualService's own namespace; write "
                          "<namespace>/<name> for the Gateway you mean.")
    for vs in vss:
        short = [g for g in vs.gateways if g != mesh.MESH and "/" not in g]
        if short:
            resolved = mesh.resolve_gateway_ref(short[0], vs.meta.namespace)
            return failed(f"VirtualService {vs.meta.key} lists gateway '{short[0]}' without a namespace; it resolves "
                          f"to {resolved} only because a short name means the VirtualService's own namespace.",
                          f"Look at spec.gateways of VirtualService {vs.meta.key}: the lab asks for the explicit "
                          "<namespace>/<name> form (Kiali flags the short form as KIA1108).",
                          "The short form silently breaks when the Gateway and VirtualService end up in different "
                          "namespaces (istio/istio#11131).")
    refs = sorted({r for vs in vss for r in mesh.vs_gateway_refs(vs) if r != mesh.MESH})
    return passed(f"VirtualService {', '.join(v.meta.key for v in vss)} reference existing Gateways as "
                  f"<namespace>/<name> ({', '.join(refs)}).")


@LAB.check("ports-exposed", "Each Bookinfo Gateway port is reachable through the gateway Service", points=1)
def ports_exposed(ctx: Context) -> Outcome:
    state = ctx.state
    gws = _lab_gateways(state)
    if not gws:
        return failed(f"No Gateway in default or test selects the pods of {INGRESS}.",
                      "Look at spec.selector of the Gateways in default and test.",
                      f"{ctx.look('get pods -n istio-system --show-labels')} shows the labels the selector must "
                      "match.")
    used = []
    for gw in gws:
        for server in (s for s in gw.servers if s.is_plain_http):
            ports = client_ports(state, server.port)
            if not ports:
                private = ctx.findings_for("GW-PORT-PRIVILEGED", gw.meta.ref)
                why = ("resolves to a listener below 1024, which istiod drops on the unprivileged gateway pod"
                       if private else f"is neither a port nor a targetPort of Service {INGRESS}, so nothing "
                       "outside the pod can reach the listener Envoy opens for it")
                return failed(f"Port {server.port} of Gateway {gw.meta.key} {why}.",
                              f"Compare spec.servers[].port.number of Gateway {gw.meta.key} with the ports of "
                              f"Service {INGRESS} ({ctx.look('get svc istio-ingressgateway -n istio-system')}).",
                              "A new port must also be added to the gateway Service: in the course's IstioOperator, "
                              "components.ingressGateways[].k8s.service.ports (the list replaces the chart's, so "
                              "repeat the existing ports), with a targetPort of 1024 or above.")
            used.append(f"{gw.meta.key} port {server.port} (Service port {', '.join(map(str, ports))})")
    return passed(f"Every HTTP server is reachable through {INGRESS}: {'; '.join(used)}.")


@LAB.check("no-conflict", "The two Gateways no longer claim the same listener and hosts", points=2)
def no_conflict(ctx: Context) -> Outcome:
    state = ctx.state
    keys = {g.meta.key for g in state.gateways if g.meta.namespace in NAMESPACES}
    for f in ctx.findings_for("GW-CONFLICT"):
        winner_key, loser_key = f.details.get("winner"), f.details.get("loser")
        if winner_key not in keys and loser_key not in keys:
            continue
        winner, loser = state.gateways_by_key[winner_key], state.gateways_by_key[loser_key]
        hosts = [h.strip() for h in str(f.details.get("hosts", "")).split(",") if h.strip()]
        where = (f"Gateways {winner_key} and {loser_key} both put hosts {', '.join(hosts)} on listener "
                 f"{f.details.get('listener')} of {f.details.get('workload')}")
        why = winner_reason(state, winner, loser)
        if len(set(hosts)) == 1 and f.severity != "error":
            # The VirtualServices keep distinct hosts, so nothing is shadowed today; IST0145 still fires, because
            # it compares the Gateways' hosts only (pkg/config/analysis/analyzers/gateway/conflictinggateway.go:128,
            # Istio 1.30.3). The lab asks for distinct hosts in the Gateways themselves.
            ist = ("which `istioctl analyze` reports as IST0145 (conflicting gateways)"
                   if f.details.get("winner_port") == f.details.get("loser_port") else
                   "declared as different ports that resolve to the same listener (IST0145 compares declared ports "
                   "and misses it)")
            text = (f"{where}, {ist}. Their "
                    "VirtualServices use distinct hosts, so today each host gets a virtual host of its own and both "
                    "namespaces are reachable; but this lab asks each Gateway to claim only its own host names: "
                    f"with {hosts[0]} on both, any VirtualService with an overlapping host bound to either Gateway "
                    f"would share a virtual host with the other's routes, and {winner_key}'s would win the paths "
                    f"both serve ({winner_key} is merged first because {why}).")
        elif len(set(hosts)) == 1:
            text = (f"{where}; istiod merges them oldest first, and {winner_key} wins because {why}: its routes come "
                    f"first in the shared virtual host {hosts[0]}, so it takes every path both serve.")
        else:
            wild = next((g.meta.key for g in (winner, loser) for s in g.servers for h in s.hosts
                         if mesh.split_server_host(h, g.meta.namespace)[1].startswith("*")), loser_key)
            text = (f"{where}; istiod merges them oldest first ({winner_key} first, because {why}), and as the "
                    f"names differ Envoy picks the most specific one: the wildcard of {wild} answers every host "
                    "name the other Gateway does not list, including names never meant for it.")
        return failed(text,
                      f"Look at spec.servers[].hosts and port of Gateways {winner_key} and {loser_key}: `*` overlaps "
                      "every host name on the same listener.",
                      "Give each namespace a host name of its own in its Gateway and VirtualService (clients then "
                      "choose with the Host header), or move one Gateway to another port that the gateway Service "
                      "exposes.")
    gws = _lab_gateways(state)
    if not gws:
        return failed("No Gateway in default or test selects the ingress gateway pods, so there is nothing to compare.",
                      "Look at spec.selector of the Gateways in default and test.",
                      "Both Gateways should still select the course's ingress gateway (istio: ingressgateway).")
    listing = "; ".join(f"{g.meta.key}: " + ", ".join(f"port {s.port} hosts {' '.join(s.hosts)}" for s in g.servers)
                        for g in gws)
    return passed(f"No two Gateways overlap on the same listener and host any more ({listing}).")


def _reachable(ctx: Context, namespace: str) -> Outcome:
    state = ctx.state
    points = entry_points(state, namespace)
    if not points:
        return failed(f"No Gateway on {INGRESS} has a VirtualService routing to {namespace}/productpage, and "
                      f"{namespace} has no Gateway of its own on it.",
                      f"Look at the Gateway and VirtualService in namespace {namespace}: spec.selector, "
                      "spec.servers and spec.gateways.",
                      f"The VirtualService must route to the productpage Service of {namespace} and be bound to a "
                      "Gateway selecting the ingress gateway.")
    proof = prove_reachable(ctx, namespace, points)
    ev, extra, ep = proof.evidence, proof.extra, proof.entry
    if proof.ok:
        return passed(f"{ev.sentence}{extra} Try it: {curl_line(ep)}")
    own = [g for g in _lab_gateways(state) if g.meta.namespace == namespace]
    if own and not any(client_ports(state, s.port) for g in own for s in g.servers if s.is_plain_http):
        # One mistake costs points once: ports-exposed already failed for this Gateway's port.
        return blocked([LAB.get("ports-exposed").title], f"no port of Gateway {', '.join(g.meta.key for g in own)} "
                       f"is reachable through {INGRESS}")
    dest = (ev.trace.destination if ev.trace is not None else None) or {}
    other = dest.get("service")
    if other and other != f"{namespace}/productpage":
        conflict = next((f for f in ctx.findings_for("GW-CONFLICT")), None)
        who = f" (Gateway {conflict.details.get('winner')} wins the merged listener)" if conflict else ""
        return failed(f"{ev.sentence}{extra} The request for {namespace}'s Bookinfo is served by {other}{who}.",
                      "Both Gateways' routes end up in one route table for the same host: look at spec.servers[]"
                      ".hosts of the Gateways in default and test.",
                      "With distinct host names each request picks its namespace by its Host header; with a "
                      "separate port each picks it by the port.")
    mismatch = [f for f in ctx.findings_for("VS-HOST-NOT-IN-GATEWAY")
                if str(f.details.get("vs", "")).startswith(f"{namespace}/")]
    if mismatch:
        return failed(f"{ev.sentence}{extra}",
                      f"VirtualService {mismatch[0].details.get('vs')} and its Gateway do not share a host: compare "
                      "spec.hosts of the VirtualService with spec.servers[].hosts of the Gateway.",
                      "The gateway builds routes only for names in both lists, and the client's Host header must be "
                      f"one of them: `curl -H 'Host: <that name>' http://localhost:8080{PATH}`.")
    return failed(f"{ev.sentence}{extra}", *request_hints(ev, ep.host, ctx))


@LAB.check("default-reachable", "Bookinfo in default answers through the ingress gateway", points=2,
           needs=("ready",))
def default_reachable(ctx: Context) -> Outcome:
    return _reachable(ctx, "default")


@LAB.check("test-reachable", "Bookinfo in test answers through the ingress gateway", points=2, needs=("ready",))
def test_reachable(ctx: Context) -> Outcome:
    return _reachable(ctx, "test")
