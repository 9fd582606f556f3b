"""Lab 4: a second ingress gateway of its own for the Bookinfo copy in `test`.

The learner installs another gateway deployment with ``istioctl install -f`` and a separate
IstioOperator (profile empty, a metadata.name of its own), gives it its own labels and a fixed
node port, and moves test's Gateway onto it. The traps checked here are the real ones: the
inherited ``istio: ingressgateway`` / ``app: istio-ingressgateway`` labels (``label`` is merged
over the chart's defaults), a profile that reinstalls the control plane, a reused name that
makes istioctl prune the course installation, and a Service kind cannot reach.
"""

from __future__ import annotations

from collections.abc import Mapping

from graders import mesh
from graders.checks import INGRESS, Context, Lab, Outcome, failed, gateway_service, passed
from graders.labs import lab03
from graders.state import IstioOperator, Pod, Service, State

COURSE_INSTALL = "istio-lab"  # metadata.name of labs/cluster/istio-operator.yaml
COURSE_GATEWAYS = ("istio-system/istio-ingressgateway", "istio-system/istio-egressgateway")
INHERITED = {"app": "istio-ingressgateway", "istio": "ingressgateway"}  # the legacy chart's default labels
SPARE_NODE_PORT = 30081  # kind maps host 127.0.0.1:8081 to it (labs/cluster/kind-config.yaml.tmpl)
COURSE_NODE_PORT = 30080  # the first gateway's HTTP node port

LAB = Lab("lab04", "A second ingress gateway", chapter="chapters/05-adding-gateways",
          notebook="labs/lab04-second-gateway.ipynb",
          summary="Install a second ingress gateway with its own labels and node port, and serve test's Bookinfo "
                  "through it.")


# --- what the learner added -------------------------------------------------------------------------
def new_gateways(state: State) -> dict[str, list[Pod]]:
    """Gateway workloads (ns/deployment -> pods) other than the course's own two."""
    pods = [p for p in state.pods if p.is_gateway]
    return {w: ps for w, ps in sorted(mesh.workloads(pods).items()) if w not in COURSE_GATEWAYS}


def second_gateway(state: State) -> tuple[str, list[Pod]] | None:
    """The learner's second gateway: the one test's Gateways select, else the first new one."""
    found = new_gateways(state)
    if not found:
        return None
    for gw in state.ordered_gateways:
        if gw.meta.namespace == "test":
            for workload in mesh.workloads(mesh.gateway_pods(state, gw)):
                if workload in found:
                    return workload, found[workload]
    return next(iter(found.items()))


def services_of(state: State, pods: list[Pod]) -> list[Service]:
    return state.services_selecting(pods[0]) if pods else []


def _fmt(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k in INHERITED) or "no app/istio labels"


def learner_operators(state: State) -> list[IstioOperator]:
    """IstioOperators from the learner's files (the course baseline's own is left out)."""
    return [op for op in state.istio_operators if not op.meta.origin.startswith("baseline")]


def _gateway_components(op: IstioOperator) -> list[Mapping]:
    comps = op.spec.get("components") if isinstance(op.spec.get("components"), Mapping) else {}
    value = comps.get("ingressGateways") if isinstance(comps, Mapping) else None
    return [c for c in value if isinstance(c, Mapping)] if isinstance(value, list) else []


# --- the checks ---------------------------------------------------------------------------------------
LAB.check("ready", "Istio and both Bookinfo copies are ready", points=1)(lab03.ready)


@LAB.check("second-gateway", "A second ingress gateway is running", points=2)
def second_gateway_running(ctx: Context) -> Outcome:
    found = second_gateway(ctx.state)
    if found is None:
        return failed("Only the course's own gateways (istio-ingressgateway and istio-egressgateway in istio-system) "
                      "run in this cluster.",
                      "Write a second IstioOperator in labs/lab04/work/ with one entry under "
                      "components.ingressGateways (name, namespace, enabled), create its namespace, then "
                      "`istioctl install -f` it.",
                      "Step 2 of the notebook walks through the fields; the namespace must exist before the install.")
    workload, pods = found
    ready = sum(p.ready for p in pods)
    if not ready:
        return failed(f"Gateway deployment {workload} exists but none of its pods is ready.",
                      f"`kubectl -n {workload.split('/')[0]} get pods` and `kubectl describe pod` say why.",
                      "A gateway pod becomes ready once istiod has sent it configuration; check that istiod runs.")
    return passed(f"Gateway deployment {workload} runs {ready} ready pod(s).")


@LAB.check("own-labels", "The second gateway has labels of its own", points=2, needs=("second-gateway",))
def own_labels(ctx: Context) -> Outcome:
    workload, pods = second_gateway(ctx.state)  # type: ignore[misc]
    labels = pods[0].labels
    inherited = {k: v for k, v in INHERITED.items() if labels.get(k) == v}
    if not inherited:
        return passed(f"Pods of {workload} carry {_fmt(labels)}: no Gateway or policy written for the first "
                      "gateway's labels can select them by accident.")
    shared = [f for f in ctx.findings_for("GW-SHARED-WORKLOAD", f"Deployment {workload}")]
    if shared:
        effect = (f" Gateway {shared[0].details.get('gateway')} already programs both deployments "
                  "(GW-SHARED-WORKLOAD).")
    elif "istio" in inherited:
        effect = " Every Gateway selecting istio: ingressgateway would program both deployments."
    else:
        effect = (" A selector on the app label (Gateways, AuthorizationPolicies, Telemetry, dashboards) would treat "
                  "both deployments as one.")
    return failed(f"Pods of {workload} still carry the first gateway's {_fmt(inherited)}.{effect}",
                  "Look at components.ingressGateways[].label of your IstioOperator and at the pods' labels: "
                  f"`kubectl -n {workload.split('/')[0]} get pods --show-labels`.",
                  "`label` is merged over the chart's default labels, not instead of them: give both the app and "
                  "the istio key new values.")


@LAB.check("install-safe", "The second install leaves the course installation intact", points=2)
def install_safe(ctx: Context) -> Outcome:
    state = ctx.state
    ops = [op for op in learner_operators(state) if any(c.get("name") != "istio-ingressgateway"
                                                        for c in _gateway_components(op))]
    for op in ops:
        profile = str(op.spec.get("profile") or "default")
        if profile != "empty":
            return failed(f"IstioOperator {op.meta.name} uses profile {profile}"
                          f"{' (the default when none is given)' if 'profile' not in op.spec else ''}, so istioctl "
                          "also installs that profile's control plane and default gateways over the course's.",
                          f"Look at spec.profile of IstioOperator {op.meta.name}.",
                          "A file that only adds a gateway should start from the profile that installs nothing by "
                          "itself.")
        if op.meta.name == COURSE_INSTALL:
            return failed(f"IstioOperator {op.meta.name} has the course installation's metadata.name; istioctl "
                          "prunes what that named installation no longer renders, so installing it would remove "
                          "istiod and the first gateways.",
                          f"Look at metadata.name of IstioOperator {op.meta.name} (from {op.meta.origin}).",
                          "Each separate IstioOperator needs a name of its own: istioctl uses it to scope pruning.")
    problems = []
    if state.service("istio-system", "istiod") is None:
        problems.append("istiod is gone")
    svc = gateway_service(state)
    port80 = svc.port(80) if svc else None
    if svc is None:
        problems.append(f"Service {INGRESS} is gone")
    elif svc.type != "NodePort" or port80 is None or port80.node_port != COURSE_NODE_PORT:
        node = "missing" if port80 is None else f"nodePort {port80.node_port or 'unset'}"
        problems.append(f"Service {INGRESS} changed (type {svc.type}, port 80 {node})")
    if problems:
        return failed(f"The course installation changed: {'; '.join(problems)}.",
                      "Compare `kubectl -n istio-system get deploy,svc` with labs/cluster/istio-operator.yaml; your "
                      "second IstioOperator should touch only its own gateway.",
                      "`python -m graders lab reset 4` restores the start state; then install the second gateway "
                      "with profile empty and a metadata.name of its own.")
    how = (f"IstioOperator {', '.join(op.meta.name for op in ops)} uses profile empty and a name of its own; "
           if ops else "No IstioOperator file was given (istioctl keeps none in the cluster since Istio 1.21), so "
                       "the install is judged by its effects: ")
    return passed(f"{how}istiod and {INGRESS} (NodePort {COURSE_NODE_PORT}) are as the course installed them.")


@LAB.check("node-port", "The second gateway is reachable on the spare node port", points=2,
           needs=("second-gateway",))
def node_port(ctx: Context) -> Outcome:
    workload, pods = second_gateway(ctx.state)  # type: ignore[misc]
    services = services_of(ctx.state, pods)
    for svc in services:
        for sp in svc.ports:
            if sp.node_port == SPARE_NODE_PORT and svc.external:
                return passed(f"Service {svc.meta.key} ({svc.type}) exposes port {sp.port} on the node port the "
                              "kind cluster maps to http://localhost:8081.")
    desc = "; ".join(f"{s.meta.key} is {s.type} with " + ", ".join(p.label() for p in s.ports) for s in services)
    return failed(f"No Service of {workload} uses the node port the kind cluster keeps for this lab "
                  f"({desc or 'it has no Service'}).",
                  "Look at k8s.service in your IstioOperator: its type and the nodePort of the HTTP port.",
                  "kind forwards host ports only to node ports fixed when the cluster was created; "
                  "labs/cluster/kind-config.yaml.tmpl lists the spare one. On kind a LoadBalancer's EXTERNAL-IP "
                  "stays <pending>.")


@LAB.check("test-on-new-gateway", "test's Gateway selects only the second gateway", points=2,
           needs=("second-gateway",))
def test_on_new_gateway(ctx: Context) -> Outcome:
    state = ctx.state
    workload, _ = second_gateway(state)  # type: ignore[misc]
    gws = [g for g in state.ordered_gateways if g.meta.namespace == "test"]
    if not gws:
        return failed("Namespace test has no Gateway.", "Write test's Gateway in labs/lab04/work/.",
                      "Reuse the start state's Gateway test/bookinfo-gateway and change what it selects.")
    for gw in gws:
        selected = sorted(mesh.workloads(mesh.gateway_pods(state, gw)))
        if selected == [workload]:
            continue
        if not selected:
            what = "selects no pod at all"
        elif workload in selected:
            what = f"selects {', '.join(selected)}: the second gateway and another one"
        else:
            what = f"selects {', '.join(selected)}, not {workload}"
        return failed(f"Gateway {gw.meta.key} {what}.",
                      f"Compare spec.selector of Gateway {gw.meta.key} with the labels of the {workload} pods.",
                      "Select a label only the second gateway carries (one of the two you overrode).")
    return passed(f"Gateway {', '.join(g.meta.key for g in gws)} select{'s' if len(gws) == 1 else ''} only "
                  f"{workload}.")


@LAB.check("test-reachable", "Bookinfo in test answers through the second gateway", points=3,
           needs=("ready", "second-gateway"))
def test_reachable(ctx: Context) -> Outcome:
    state = ctx.state
    workload, pods = second_gateway(state)  # type: ignore[misc]
    services = services_of(state, pods)
    if not services:
        return failed(f"No Service selects the pods of {workload}, so nothing can send it traffic.",
                      "Look at k8s.service of the gateway in your IstioOperator.",
                      "istioctl creates the Service next to the Deployment; check `kubectl get svc -n <namespace>`.")
    svc = services[0]
    spare_port = next((sp.port for sp in svc.ports if sp.node_port == SPARE_NODE_PORT), None)
    points = lab03.entry_points(state, "test", svc.meta.key)
    points = sorted(points, key=lambda p: p.port != spare_port)  # the port kind maps to localhost:8081 first
    if spare_port is not None and all(p.port != spare_port for p in points):
        # What `curl http://localhost:8081/...` meets: the port kind maps, whatever the Gateways ask for.
        host = points[0].host if points else "localhost"
        points.insert(0, lab03.EntryPoint(svc.meta.key, spare_port, host, f"Service {svc.meta.key}"))
    if not points:  # nothing routes there: show what a plain request meets
        points = [lab03.EntryPoint(svc.meta.key, 80, "localhost", f"Service {svc.meta.key}")]
    proof = lab03.prove_reachable(ctx, "test", points)
    ev, extra, used = proof.evidence, proof.extra, proof.entry
    if proof.ok:
        header = "" if used.host == "localhost" else f"-H 'Host: {used.host}' "
        try_it = (f" Try it: curl {header}http://localhost:8081{lab03.PATH}" if used.port == spare_port else "")
        return passed(f"{ev.sentence}{extra}{try_it}")
    unexposed = [f for gw in state.gateways if gw.meta.namespace == "test"
                 for f in ctx.findings_for("GW-PORT-NOT-ON-SERVICE", gw.meta.ref)]
    if unexposed:
        f = unexposed[0]
        return failed(f"{ev.sentence}{extra}",
                      f"Gateway {f.details.get('gateway')} asks for port {f.details.get('port')}, which is neither a "
                      f"port nor a targetPort of Service {svc.meta.key}: compare spec.servers[].port.number with "
                      f"`kubectl -n {svc.meta.namespace} get svc {svc.meta.name}`.",
                      "A Helm-installed gateway's Service maps 80 to 80 (not to 8080 like istioctl's), so the "
                      "Bookinfo sample's port 8080 opens a listener no Service port leads to.")
    return failed(f"{ev.sentence}{extra}",
                  f"Follow the request: Service {svc.meta.key} port, the Gateway selecting its pods, then test's "
                  "VirtualService (`python -m graders trace --gateway "
                  f"{svc.meta.key} --path /productpage` shows each step).",
                  "A connection refused means no Gateway gives the second gateway a listener on that port; a 404 "
                  "means the hosts do not match.")


@LAB.check("default-unchanged", "Bookinfo in default still answers through the first gateway", points=1,
           needs=("ready",))
def default_unchanged(ctx: Context) -> Outcome:
    points = lab03.entry_points(ctx.state, "default", INGRESS)
    if not points:
        return failed(f"No Gateway on {INGRESS} routes to default/productpage any more.",
                      "Look at Gateway default/bookinfo-gateway and VirtualService default/bookinfo.",
                      "This lab only moves test's Bookinfo; default's Gateway should still select the first gateway.")
    proof = lab03.prove_reachable(ctx, "default", points)
    ev, extra = proof.evidence, proof.extra
    if proof.ok:
        return passed(f"{ev.sentence}{extra}")
    return failed(f"{ev.sentence}{extra}", "Look at Gateway default/bookinfo-gateway and VirtualService "
                  "default/bookinfo: did the second install or a selector change take them over?",
                  "`python -m graders trace --path /productpage` follows default's request step by step.")
