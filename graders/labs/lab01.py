"""Lab 1: expose Bookinfo at http://bookinfo.example.com/productpage through the default ingress gateway.

The checks follow the request's path (Gateway selects the pods, its port is reachable, a
VirtualService binds to it with a matching host, its route reaches productpage:9080) and end with
the proof: a request with the lab's Host header returns the Bookinfo page. Config checks name the
object and field to look at; the analyzers and the request trace supply the facts.
"""

from __future__ import annotations

from graders import mesh
from graders.checks import (
    BOOKINFO_TITLE,
    INGRESS,
    Context,
    Lab,
    Outcome,
    bound_virtual_services,
    client_ports,
    failed,
    gateway_service_pods,
    gateways_on,
    http_servers,
    istio_and_bookinfo_ready,
    judged_on_gateway,
    lab_gateways,
    learner_gateways,
    names,
    passed,
    rejected,
    request_hints,
    served_host,
    virtual_service_bound,
)

HOST = "bookinfo.example.com"
PORT = 80  # the gateway Service port the course's kind cluster maps to http://localhost:8080/
WORK = "labs/lab01/work/"
PRODUCTPAGE = "default/productpage"
PRODUCTPAGE_PORT = 9080
# One request per routed path (a prefix is probed with a path below it).
PATHS = ("/productpage", "/static/bootstrap/css/bootstrap.min.css", "/login", "/logout", "/api/v1/products")

LAB = Lab("lab01", "Expose Bookinfo through the default ingress gateway",
          chapter="chapters/02-gateway-resource", notebook="labs/lab01-expose-bookinfo.ipynb",
          summary=f"A Gateway and a VirtualService that serve Bookinfo at http://{HOST}/productpage.")


@LAB.check("istio-bookinfo-ready", "Istio and Bookinfo are installed and ready", points=1)
def istio_bookinfo_ready(ctx: Context) -> Outcome:
    return istio_and_bookinfo_ready(ctx)


@LAB.check("gateway-exists", "You wrote a Gateway", points=1)
def gateway_exists(ctx: Context) -> Outcome:
    bad = rejected(ctx, "Gateway", "Step 1 of the notebook shows a complete server: port (number, name, protocol) "
                                   "and hosts.")
    if bad:
        return bad
    gws = lab_gateways(ctx.state, LAB.id)
    if gws:
        return passed(f"Found Gateway {names(gws)}.")
    others = [g for g in ctx.state.ordered_gateways if not g.meta.origin.startswith("baseline")]
    left = (f" (Gateway {names(others)} belongs to another lab's setup, put there by `python -m graders lab "
            "setup`, and is not your work for this lab)") if others else ""
    return failed(f"No Gateway found in {ctx.state.description or 'the cluster'}{left}.",
                  f"Write a Gateway (apiVersion networking.istio.io/v1, kind Gateway) in {WORK} (in JupyterLab "
                  "started in labs/: lab01/work/); on a live cluster, apply it with "
                  "`kubectl apply -f labs/lab01/work/`.",
                  "Step 1 of the notebook lists the fields a Gateway needs: spec.selector and spec.servers "
                  "(port, hosts).")


@LAB.check("gateway-selects-pods", "The Gateway selects the ingress gateway pods", points=2,
           needs=("gateway-exists",))
def gateway_selects_pods(ctx: Context) -> Outcome:
    state = ctx.state
    mine = lab_gateways(state, LAB.id)
    on_ingress = [g for g in gateways_on(state) if g in mine]
    if on_ingress:
        ready = sum(p.ready for p in gateway_service_pods(state))
        return passed(f"Gateway {names(on_ingress)} selects the pods of {INGRESS} ({ready} ready).")
    gw = mine[0]
    nothing = ctx.findings_for("GW-SELECTOR-NO-WORKLOAD", gw.meta.ref)
    if nothing:
        what = f"selects pods labelled {nothing[0].details['selector']}, and no pod carries those labels"
        # manifests/charts/gateway/templates/_helpers.tpl:20 (Istio 1.30.3): istio: <release name minus "istio-">
        more = ("A selector copied from a Helm example does not fit this course: the istio/gateway chart labels its "
                "pods after the Helm release (`istio: ingress` for a release named ingress or istio-ingress), while "
                "the gateway here was installed by istioctl. Copy the `istio` label from the pod itself.")
    else:
        others = sorted(mesh.workloads(mesh.gateway_pods(state, gw)))
        what = f"selects {', '.join(others)}, not the ingress gateway {INGRESS}"
        more = ("istio-system runs more than one gateway (the demo profile adds an egress gateway); the selector "
                "must match labels that only the ingress gateway's pods carry.")
    return failed(f"Gateway {gw.meta.key} {what}, so no ingress Envoy is configured by it.",
                  f"Compare spec.selector of Gateway {gw.meta.key} with the labels of the ingress gateway pods: "
                  f"{ctx.look('get pods -n istio-system --show-labels')}.", more)


@LAB.check("gateway-only-ingress", "The Gateway programs the ingress gateway only", points=1,
           needs=("gateway-selects-pods",))
def gateway_only_ingress(ctx: Context) -> Outcome:
    state = ctx.state
    pods = gateway_service_pods(state)
    ingress = {mesh.workload_of(p) for p in pods}
    for gw in gateways_on(state):
        others = sorted(w for w in mesh.workloads(mesh.gateway_pods(state, gw)) if w not in ingress)
        if not others:
            continue
        if not gw.selector:
            # pilot/pkg/model/push_context.go:2447 (Istio 1.30.3): a Gateway without a selector applies to
            # every gateway proxy that asks for gateways.
            what = (f"has no spec.selector, and istiod applies a Gateway without a selector to every gateway "
                    f"proxy in the mesh: besides {INGRESS} it also programs {', '.join(others)}")
        else:
            labels = ", ".join(f"{k}={v}" for k, v in gw.selector.items())
            what = f"selects pods labelled {labels}, which also match {', '.join(others)}"
        return failed(f"Gateway {gw.meta.key} {what}, so Bookinfo's host is served there too.",
                      f"Look at spec.selector of Gateway {gw.meta.key} and the labels of the gateway pods: "
                      f"{ctx.look('get pods -n istio-system --show-labels')}.",
                      "A Gateway's selector should match the labels of the one gateway that is meant to serve it; "
                      "an empty or missing selector means every gateway.")
    return passed(f"Gateway {names(gateways_on(state))} programs {', '.join(sorted(ingress))} and no other gateway.")


@LAB.check("gateway-port-reachable", "The Gateway's port is reachable through the gateway Service", points=2,
           needs=("gateway-exists",))
def gateway_port_reachable(ctx: Context) -> Outcome:
    """Judged against the ingress gateway Service even when the selector is wrong: the port is a
    mistake (or not) of its own, and the selector has its own check."""
    state = ctx.state
    pods = gateway_service_pods(state)
    problems = []
    for gw in learner_gateways(state, lab=LAB.id):
        for server in http_servers(gw):
            ports = client_ports(state, server.port)
            if PORT in ports:
                via = "" if server.port == PORT else f" (it is the targetPort behind Service port {PORT})"
                return passed(f"Gateway {gw.meta.key} port {server.port}{via} is reached through Service {INGRESS} "
                              f"port {PORT}, where the course cluster's http://localhost:8080/ arrives.")
            listener = mesh.resolve_listener_port(state, pods[0], server.port).listener if pods else server.port
            if pods and mesh.privileged_dropped(pods[0], listener):
                problems.append(f"port {server.port} of Gateway {gw.meta.key} would need a listener below 1024, "
                                "which istiod drops on the unprivileged gateway pod")
            elif not ports:
                problems.append(f"port {server.port} of Gateway {gw.meta.key} is neither a port nor a targetPort of "
                                f"Service {INGRESS}, so no traffic reaches it")
            else:
                problems.append(f"port {server.port} of Gateway {gw.meta.key} is reached only through Service port"
                                f"{'s' if len(ports) != 1 else ''} {', '.join(map(str, ports))}, not through "
                                f"port {PORT}")
    if not problems:
        which = names(learner_gateways(state, lab=LAB.id))
        return failed(f"Gateway {which} has no plain-HTTP server (protocol HTTP), which this lab needs.",
                      f"Look at spec.servers[].port.protocol of Gateway {which}.",
                      "Plain HTTP on the gateway's HTTP port is all lab 1 needs; TLS comes later in the course.")
    return failed(problems[0][0].upper() + problems[0][1:] + ".",
                  "Compare spec.servers[].port.number of your Gateway with the PORT(S) column of "
                  f"{ctx.look('get svc istio-ingressgateway -n istio-system')} (port:nodePort).",
                  "A Gateway port is a port of the gateway Service or the targetPort behind it, never the nodePort; "
                  "chapter 3 follows a request through all of these ports.")


@LAB.check("vs-bound", "A VirtualService is bound to the Gateway", points=2, needs=("gateway-exists",))
def vs_bound(ctx: Context) -> Outcome:
    bad = rejected(ctx, "VirtualService", "Step 2 of the notebook shows the fields a VirtualService needs.")
    return bad or virtual_service_bound(ctx, WORK, gateways=learner_gateways(ctx.state, lab=LAB.id))


@LAB.check("vs-host-matches", "The VirtualService's hosts match the Gateway's hosts", points=1, needs=("vs-bound",))
def vs_host_matches(ctx: Context) -> Outcome:
    state = ctx.state
    gws = learner_gateways(state, lab=LAB.id)
    pods = gateway_service_pods(state)
    proxy_ns = pods[0].meta.namespace if pods else "istio-system"
    for gw in gws:
        for server in http_servers(gw):
            for vs, domains in mesh.bound_virtual_services(state, gw, server, proxy_ns):
                return passed(f"VirtualService {vs.meta.key} and Gateway {gw.meta.key} meet on host "
                              f"{', '.join(domains)}.")
    vs = bound_virtual_services(ctx.state, gws)[0]
    gw_hosts = sorted({h for gw in gws for s in gw.servers for h in s.hosts})
    return failed(f"None of the hosts of VirtualService {vs.meta.key} ({', '.join(vs.hosts) or 'none'}) matches a "
                  f"host the Gateway accepts ({', '.join(gw_hosts)}), so its routes are never attached.",
                  f"Compare spec.hosts of VirtualService {vs.meta.key} with spec.servers[].hosts of Gateway "
                  f"{names(gws)}.",
                  "On a gateway, a VirtualService's hosts are the names clients send in the Host header, not the "
                  "name of the Service you route to.")


def _routing(ctx: Context) -> tuple[Context, str]:
    """The context route checks trace in, and what it assumes: the learner's Gateways as if they
    selected the ingress gateway on port 80, so a selector or port mistake (failed by its own check)
    is not charged again to a correct VirtualService."""
    return judged_on_gateway(ctx, port=PORT)


@LAB.check("route-to-productpage", "The route sends /productpage to productpage:9080", points=2,
           needs=("vs-host-matches",))
def route_to_productpage(ctx: Context) -> Outcome:
    rctx, assumed = _routing(ctx)
    tr = rctx.trace(port=PORT, host=served_host(rctx, HOST), path="/productpage")
    dest = tr.destination or {}
    if dest.get("service") == PRODUCTPAGE and dest.get("port") == PRODUCTPAGE_PORT:
        return passed(f"/productpage is routed to Service {PRODUCTPAGE} port {PRODUCTPAGE_PORT}{assumed}.")
    for code in ("VS-DESTINATION-NOT-FOUND", "VS-DESTINATION-PORT-MISMATCH"):
        for f in ctx.findings_for(code):
            vs = f.details.get("vs")
            if code == "VS-DESTINATION-NOT-FOUND":
                msg = (f"VirtualService {vs} routes to '{f.details.get('host')}', which Istio reads as "
                       f"{f.details.get('resolved')}: no such Service, so the gateway answers 503.")
                more = ("Istio expands only names without a dot (in the VirtualService's namespace); any other name "
                        "must be the full <service>.<namespace>.svc.cluster.local.")
            else:
                msg = (f"VirtualService {vs} routes to {f.details.get('service')} {f.details.get('problem')}, so the "
                       "gateway answers 503.")
                more = ("route.destination.port is a port of the Service "
                        f"({ctx.look('get svc productpage -n default')}), not the gateway's port or the container's "
                        "port.")
            return failed(msg, f"Look at spec.http[].route[].destination (host and port) of VirtualService {vs}.",
                          more)
    if tr.outcome == "not-found":
        return failed(f"No route of your VirtualService matches /productpage ({tr.steps[-1].result.rstrip('.')})"
                      f"{assumed}.",
                      "Look at spec.http[].match[].uri of your VirtualService.",
                      "An `exact` match must equal the whole path; a `prefix` match covers everything below it.")
    reached = f"{dest.get('service')} port {dest.get('port')}" if dest else tr.summary
    return failed(f"/productpage goes to {reached}, not to {PRODUCTPAGE} port {PRODUCTPAGE_PORT}{assumed}.",
                  "Look at spec.http[].route[].destination of your VirtualService.",
                  "The Bookinfo front end is the productpage Service in namespace default.")


@LAB.check("route-all-paths", "All five Bookinfo paths reach productpage", points=1, needs=("route-to-productpage",))
def route_all_paths(ctx: Context) -> Outcome:
    rctx, assumed = _routing(ctx)
    host = served_host(rctx, HOST)
    missing = [p for p in PATHS
               if (rctx.trace(port=PORT, host=host, path=p).destination or {}).get("service") != PRODUCTPAGE]
    if not missing:
        return passed(f"/productpage, /static, /login, /logout and /api/v1/products all reach productpage{assumed}.")
    return failed(f"{', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not reach productpage, so the page "
                  f"loses its styles, login or API calls (the gateway answers 404 for them){assumed}.",
                  "Look at the list of spec.http[].match[] entries of your VirtualService.",
                  "The product page loads its stylesheets and scripts from under /static, and the login form posts "
                  "to /login; each needs a match (a prefix match covers a whole subtree).")


@LAB.check("request-productpage", "A real request to /productpage returns the Bookinfo page", points=2,
           needs=("istio-bookinfo-ready", "gateway-selects-pods", "gateway-port-reachable", "route-to-productpage"))
def request_productpage(ctx: Context) -> Outcome:
    """The proof with the lab's own Host header. It runs only once the configuration checks it depends
    on passed, so it fails only for what they cannot see (the Host the client sends, a live problem)."""
    ev = ctx.request(port=PORT, host=HOST, path="/productpage", service=PRODUCTPAGE, expect_text=BOOKINFO_TITLE)
    if ev.ok:
        return passed(ev.sentence)
    return failed(ev.sentence, *request_hints(ev, HOST, ctx))
