"""Lab 4: a second ingress gateway of its own for the Bookinfo copy in `test`.

The learner installs another gateway deployment with ``istioctl install -f``, either from a
separate IstioOperator (profile empty, a metadata.name of its own) or by adding it to a copy of the
course's own IstioOperator (same name, same profile: the same installation updated in place, as
chapter 5 recommends), gives it an ``istio`` label of its own and a fixed node port, and moves
test's Gateway onto it. What is checked is what istioctl really does (graders.sources.istio_install
renders and prunes as it does):

- ``label`` is merged key by key over the chart's ``app: istio-ingressgateway, istio:
  ingressgateway``: a key left out is inherited. Gateways select ``istio``, so an inherited
  ``istio: ingressgateway`` makes every Gateway written for the first gateway program the second one
  too (the mistake); an inherited ``app`` only makes selectors on ``app`` match both (advice).
- A second IstioOperator whose profile has a control plane re-applies istiod and
  istio-system/istio-ingressgateway with that profile's values and takes them over.
- An IstioOperator under the course installation's name (or with no name at all) prunes whatever
  of the course installation it no longer renders.
- kind reaches only the node ports it maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from graders import mesh
from graders.checks import INGRESS, Context, Lab, Outcome, failed, gateway_service, passed
from graders.labs import lab03
from graders.sources import istio_install
from graders.sources.simulated import REPO_ROOT
from graders.state import IstioOperator, Pod, Service, State

COURSE_INSTALL = "istio-lab"  # metadata.name of labs/cluster/istio-operator.yaml
COURSE_GATEWAYS = ("istio-system/istio-ingressgateway", "istio-system/istio-egressgateway")
# What the course installation put in istio-system (labs/cluster/istio-operator.yaml, profile demo).
COURSE_OBJECTS = (("Deployment", "istiod"), ("Service", "istiod"), ("Deployment", "istio-ingressgateway"),
                  ("Service", "istio-ingressgateway"), ("Deployment", "istio-egressgateway"),
                  ("Service", "istio-egressgateway"))
INHERITED = {"app": "istio-ingressgateway", "istio": "ingressgateway"}  # the legacy chart's default labels
SELECTED_KEY = "istio"  # the label the course's Gateways (and istio.io's examples) select
SPARE_NODE_PORT = 30081  # kind maps host 127.0.0.1:8081 to it (labs/cluster/kind-config.yaml.tmpl)
COURSE_NODE_PORT = 30080  # the first gateway's HTTP node port
WORK = "your work folder (labs/lab04/work/)"  # lab04/work in JupyterLab started in labs/

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


def _course_object(state: State, kind: str, name: str):
    if kind == "Service":
        return state.service("istio-system", name)
    return next((d for d in state.deployments if d.meta.namespace == "istio-system" and d.meta.name == name), None)


def course_install_changes(state: State) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """(course objects that are gone, other changes, course objects now owned by another IstioOperator)."""
    gone, changed, taken = [], [], {}
    for kind, name in COURSE_OBJECTS:
        obj = _course_object(state, kind, name)
        if obj is None:
            gone.append(f"{kind} istio-system/{name}")
            continue
        owner = obj.meta.labels.get(istio_install.OWNER_LABEL)
        if owner is not None and owner != COURSE_INSTALL:
            taken.setdefault(owner, []).append(f"{kind} istio-system/{name}")
    svc = gateway_service(state)
    if svc is not None:
        port80 = svc.port(80)
        if svc.type != "NodePort":
            changed.append(f"Service {INGRESS} is now type {svc.type} instead of NodePort")
        if port80 is None:
            changed.append(f"Service {INGRESS} has no port 80 any more")
        elif port80.node_port != COURSE_NODE_PORT:
            changed.append(f"port 80 of Service {INGRESS} is on node port {port80.node_port or '(none)'} instead of "
                           f"{COURSE_NODE_PORT}, the one kind maps to localhost:8080")
    return gone, changed, taken


def shown_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return path


def trace_command(ctx: Context, gateway: str) -> str:
    """The ``graders trace`` command that follows test's request over what is being graded."""
    args = f"--gateway {gateway} --path /productpage"
    if ctx.state.mode == "live":
        return f"`python -m graders trace --context {ctx.target.context or 'kind-istio-lab'} {args}`"
    sources = [shown_path(s) for s in ctx.state.sources]
    if ctx.state.mode == "snapshot" and sources:
        sources[0] = f"--snapshot {sources[0]}"
    return f"`python -m graders trace {' '.join([*sources, args])}`"


# --- the checks ---------------------------------------------------------------------------------------
@LAB.check("ready", "Istio and both Bookinfo copies are ready", points=1)
def ready(ctx: Context) -> Outcome:
    outcome = lab03.ready(ctx)
    if outcome.passed:
        return outcome
    gone, _, _ = course_install_changes(ctx.state)
    if not gone:
        return outcome
    return failed(f"{outcome.message} These are not starting up: {_objects(gone)} no longer exist.",
                  f"{ctx.look('get deploy,svc -n istio-system')} lists what is left of the course installation; "
                  "`istioctl install` prunes what an IstioOperator of the same name (or one with no name) no "
                  "longer renders (see “The second install leaves the course installation intact”).",
                  "`istioctl install -f labs/cluster/istio-operator.yaml -y` puts the course installation back; "
                  "`python -m graders lab setup 4` restores the lab's start state.")


@LAB.check("second-gateway", "A second ingress gateway is running", points=2)
def second_gateway_running(ctx: Context) -> Outcome:
    found = second_gateway(ctx.state)
    if found is None:
        return failed("Only the course's own gateways (istio-ingressgateway and istio-egressgateway in istio-system) "
                      "run in this cluster.",
                      f"Describe the second gateway in an IstioOperator in {WORK}, one entry under "
                      "components.ingressGateways (name, namespace, enabled); create its namespace, then "
                      "`istioctl install -f` the file.",
                      "Step 2 of the notebook walks through the fields; the namespace must exist before the install.")
    workload, pods = found
    ready_pods = sum(p.ready for p in pods)
    if not ready_pods:
        ns = workload.partition("/")[0]
        return failed(f"Gateway deployment {workload} exists but none of its pods is ready.",
                      f"{ctx.look(f'get pods -n {ns}')} shows their status; "
                      f"{ctx.look(f'describe pod -n {ns}')} says why one is not ready." if ctx.state.mode == "live"
                      else f"{ctx.look(f'get pods -n {ns}')} shows their status.",
                      "A gateway pod becomes ready once istiod has sent it configuration; check that istiod runs.")
    return passed(f"Gateway deployment {workload} runs {ready_pods} ready pod(s).")


@LAB.check("own-labels", "The second gateway has an istio label of its own", points=2, needs=("second-gateway",))
def own_labels(ctx: Context) -> Outcome:
    workload, pods = second_gateway(ctx.state)  # type: ignore[misc]
    labels = pods[0].labels
    inherited = {k: v for k, v in INHERITED.items() if labels.get(k) == v}
    ns = workload.partition("/")[0]
    if SELECTED_KEY not in inherited:
        if "app" not in inherited:
            return passed(f"Pods of {workload} carry {_fmt(labels)}: no Gateway or policy written for the first "
                          "gateway's labels can select them by accident.")
        return passed(f"Pods of {workload} carry {_fmt(labels)}: Gateways selecting istio: ingressgateway no longer "
                      "program them. Good practice: override app too. They still share app=istio-ingressgateway "
                      "with the first gateway, so any selector on app matches both: an AuthorizationPolicy, "
                      "PeerAuthentication or RequestAuthentication in istio-system (the root namespace) selecting "
                      "app: istio-ingressgateway applies to both gateways, and a dashboard or a "
                      "`-l app=istio-ingressgateway` query lists both.")
    shared = ctx.findings_for("GW-SHARED-WORKLOAD", f"Deployment {workload}")
    if shared:
        effect = (f" Gateway {shared[0].details.get('gateway')} already programs both deployments "
                  "(GW-SHARED-WORKLOAD).")
    else:
        effect = " Every Gateway selecting istio: ingressgateway would program both deployments."
    return failed(f"Pods of {workload} still carry the first gateway's {_fmt(inherited)}.{effect}",
                  "Look at components.ingressGateways[].label of your IstioOperator and at the pods' labels: "
                  f"{ctx.look(f'get pods -n {ns} --show-labels')}.",
                  "`label` is merged key by key over the chart's default labels (app: istio-ingressgateway, "
                  "istio: ingressgateway): a key you leave out is inherited. Give istio a value of its own (the "
                  "key Gateways select), and app too.")


def _objects(refs: list[str]) -> str:
    """``Deployment istio-system/istiod, Service istio-system/istiod`` -> ``istiod (Deployment, Service)``."""
    kinds: dict[str, list[str]] = {}
    for ref in refs:
        kind, _, key = ref.partition(" ")
        kinds.setdefault(key.partition("/")[2], []).append(kind)
    return ", ".join(f"{name} ({', '.join(ks)})" for name, ks in kinds.items()) + " in istio-system"


def _operator_cause(ctx: Context, gone: list[str], taken: dict[str, list[str]]) -> tuple[str, str] | None:
    """(which of the learner's IstioOperators explains the changes, in istioctl's terms; the field to fix)."""
    for op in learner_operators(ctx.state):
        name = op.meta.name
        profile = str(op.spec.get("profile") or "default")
        if taken.get(name) and istio_install.includes_control_plane(op.spec):
            default = " (the default when none is given)" if "profile" not in op.spec else ""
            return (f"IstioOperator {name} uses profile {profile}{default}, so istioctl also renders the control "
                    "plane (and the profile's default gateways, if any), the course's own objects: it re-applies "
                    f"{_objects(taken[name])} with profile {profile}'s values and this file's meshConfig in place "
                    f"of the course's (its accessLogFile, for one), and they now belong to {name}, so uninstalling "
                    f"{name} would remove them", "spec.profile")
        if gone and name == COURSE_INSTALL:
            return (f"IstioOperator {name} has the course installation's metadata.name, so istioctl treats it as "
                    f"that installation and prunes what it no longer renders: {_objects(gone)}", "metadata.name")
    if gone and ctx.findings_for("MANIFEST-INVALID", "IstioOperator <no name>"):
        return ("Your IstioOperator has no metadata.name, which leaves the owner out of istioctl's prune selector: "
                "installing it prunes every object of the same revision and istioctl version that it does not "
                f"render, the course installation's included: {_objects(gone)}", "metadata.name")
    return None


@LAB.check("install-safe", "The second install leaves the course installation intact", points=2)
def install_safe(ctx: Context) -> Outcome:
    state = ctx.state
    gone, changed, taken = course_install_changes(state)
    if gone or changed or taken:
        hint_2 = ("Keep a gateway-only IstioOperator at profile empty with a metadata.name of its own, or add the "
                  "gateway to a copy of labs/cluster/istio-operator.yaml that keeps its name, profile and "
                  "components. `istioctl install -f labs/cluster/istio-operator.yaml -y` restores the course "
                  "installation.")
        look = ctx.look("get deploy,svc -n istio-system --show-labels")
        found = _operator_cause(ctx, gone, taken)
        if found:  # the cause names what is gone (metadata.name) or taken over (spec.profile)
            cause, op_field = found
            rest = changed + ([f"{_objects(gone)} {'is' if len(gone) == 1 else 'are'} gone"]
                              if gone and op_field != "metadata.name" else [])
            also = f" Also: {'; '.join(rest)}." if rest else ""
            return failed(f"{cause}.{also}",
                          f"Look at {op_field} of your IstioOperator, then compare {look} with "
                          "labs/cluster/istio-operator.yaml.", hint_2)
        problems = [f"{_objects(gone)} {'is' if len(gone) == 1 else 'are'} gone"] if gone else []
        problems += changed
        problems += [f"{_objects(objs)} now belong to IstioOperator {owner}" for owner, objs in taken.items()]
        return failed(f"The course installation changed: {'; '.join(problems)}.",
                      f"Compare {look} with labs/cluster/istio-operator.yaml: the second gateway's install should "
                      "touch only its own objects.", hint_2)
    ops = learner_operators(state)
    names = ", ".join(op.meta.name or "(no name)" for op in ops)
    if any(op.meta.name == COURSE_INSTALL for op in ops):
        how = (f"IstioOperator {names} updates the course installation in place and still renders all of it; ")
    elif ops:
        how = f"IstioOperator {names} installs only its own gateway; "
    else:
        how = ("No IstioOperator file was given (istioctl keeps none in the cluster since Istio 1.21), so the "
               "install is judged by its effects: ")
    return passed(f"{how}istiod, {INGRESS} (NodePort {COURSE_NODE_PORT}) and the egress gateway are as the course "
                  "installed them.")


@LAB.check("node-port", "The second gateway is reachable on the spare node port", points=2,
           needs=("second-gateway",))
def node_port(ctx: Context) -> Outcome:
    workload, pods = second_gateway(ctx.state)  # type: ignore[misc]
    ns = workload.partition("/")[0]
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
                  f"stays <pending>; {ctx.look(f'get svc -n {ns}')} shows the node ports.")


@LAB.check("test-on-new-gateway", "test's Gateway selects only the second gateway", points=2,
           needs=("second-gateway",))
def test_on_new_gateway(ctx: Context) -> Outcome:
    state = ctx.state
    workload, _ = second_gateway(state)  # type: ignore[misc]
    gws = [g for g in state.ordered_gateways if g.meta.namespace == "test"]
    if not gws:
        return failed("Namespace test has no Gateway.", f"Write test's Gateway in {WORK}.",
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
        ns = workload.partition("/")[0]
        return failed(f"Gateway {gw.meta.key} {what}.",
                      f"Compare spec.selector of Gateway {gw.meta.key} with the labels of the {workload} pods: "
                      f"{ctx.look(f'get pods -n {ns} --show-labels')}.",
                      "Select a label only the second gateway carries: the istio label you gave it.")
    return passed(f"Gateway {', '.join(g.meta.key for g in gws)} select{'s' if len(gws) == 1 else ''} only "
                  f"{workload}.")


@LAB.check("test-reachable", "Bookinfo in test answers through the second gateway", points=3,
           needs=("ready", "second-gateway", "own-labels", "test-on-new-gateway"))
def test_reachable(ctx: Context) -> Outcome:
    """Judged once the gateway and test's Gateway are right: with an inherited istio label or test's Gateway
    elsewhere, the request fails because of that one mistake, which is charged where it is made."""
    state = ctx.state
    workload, pods = second_gateway(state)  # type: ignore[misc]
    ns = workload.partition("/")[0]
    services = services_of(state, pods)
    if not services:
        return failed(f"No Service selects the pods of {workload}, so nothing can send it traffic.",
                      "Look at k8s.service of the gateway in your IstioOperator.",
                      "istioctl creates the Service next to the Deployment: "
                      f"{ctx.look(f'get svc -n {ns}')} lists it.")
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
                      f"{ctx.look(f'get svc {svc.meta.name} -n {svc.meta.namespace}')}.",
                      "A Helm-installed gateway's Service maps 80 to 80 (not to 8080 like istioctl's), so the "
                      "Bookinfo sample's port 8080 opens a listener no Service port leads to.")
    return failed(f"{ev.sentence}{extra}",
                  f"Follow the request: Service {svc.meta.key} port, the Gateway selecting its pods, then test's "
                  f"VirtualService ({trace_command(ctx, svc.meta.key)} shows each step).",
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
                  f"{trace_command(ctx, INGRESS)} follows default's request step by step.")
