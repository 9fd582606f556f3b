"""The lab check framework: labs are ordered checks, each a pure function over a ``Context``.

How to write a lab (graders/labs/labNN.py)::

    from graders.checks import Context, Lab, failed, needs_live, passed

    LAB = Lab("lab03", "Two Gateways, one port", chapter="chapters/04-conflicts",
              notebook="labs/lab03-conflicts.ipynb")

    @LAB.check("gateway-selects-pods", "The Gateway selects the ingress gateway pods", points=2)
    def gateway_selects_pods(ctx: Context):
        if ctx.state.gateways ... :
            return passed("Gateway default/x selects the 1 ready istio-ingressgateway pod.")
        return failed("Gateway default/x selects no gateway pod.",
                      "Look at spec.selector of Gateway default/x and the labels of the gateway pods.",  # hint 1
                      f"{ctx.look('get pods -n istio-system --show-labels')} lists the labels to match.")  # hint 2

    @LAB.check("request-ok", "A real request returns the page", points=3, needs=("gateway-selects-pods",))
    def request_ok(ctx: Context):
        ev = ctx.request(port=80, host="bookinfo.example.com", path="/productpage",
                         service="default/productpage", expect_text="Simple Bookstore App")
        return passed(ev.sentence) if ev.ok else failed(ev.sentence, "...")

Rules every check follows (the batch grader and the notebooks rely on them):
- The function reads ``ctx`` only (state, analyzer findings, traces, request evidence): no I/O of its
  own, so it gives the same answer in a notebook, the CLI and the batch grader.
- The message is one sentence saying what was found, naming the objects (``Kind ns/name``). Hints are
  progressive: the first names the object and field to look at, the second is more direct. Neither
  gives away the exact expected value.
- Reuse the analyzers' finding codes (``ctx.findings_for(code, resource)``) and the request trace
  (``ctx.trace``) instead of re-deriving Istio behaviour here.
- A check awards points only on evidence. ``needs`` lists checks that must pass first; otherwise the
  check is not run and is reported as ``blocked`` ("skipped: needs ... first", no hint), so one
  mistake costs its points once and its consequences show as blocked, not failed. A ``needs`` entry
  is only for a real dependency (the check cannot say anything true without it): checks that can be
  evaluated independently are (a VirtualService is judged even when the Gateway's selector is wrong).
- A check whose evidence exists only on a live cluster (a real request's access-log line) is declared
  ``live_only=True`` or returns ``needs_live(message)``: on a simulated or snapshot target it is
  ``not-evaluated`` ("Needs a live cluster: ..."), neither passed nor failed, and its points are left
  out of ``max_score`` (and counted in ``not_evaluated_points``). A check that needs a not-evaluated
  check is not-evaluated too. Never award such points by default. The one other not-evaluated case is
  ``grader_cannot``: on a live cluster the grader's credentials lack an optional grant (lab 5's
  ``get pods/log``), so the evidence cannot be read; the learner is not charged for it.
- Evidence that a request works comes from ``ctx.request``: real HTTP in live mode, recorded probes in
  snapshot mode, the request trace in simulated mode (and the message says "simulated").
  ``Evidence.verdict`` says who answered (``app``, ``gateway-404-nr``, ...); ``request_hints`` turns
  that into the two hints.
- Commands in hints come from ``ctx.look("get pods -n istio-system --show-labels")``: kubectl on a live
  cluster, ``python -m graders get ...`` elsewhere (the simulated mode has no kubectl).
- Building blocks below (``istio_and_bookinfo_ready``, ``gateways_on``, ``lab_gateways``, ``learner_gateways``,
  ``assume_gateways_fixed``, ``gateway_services``, ``client_ports``, ``virtual_service_bound``,
  ``served_host``, ``rejected``, ``request_hints``) cover what several labs check the same way.

Result JSON (``LabResult.to_json()``, also ``python -m graders check LAB -o json`` and the notebooks'
``application/vnd.istio-gateway-course.lab-result+json`` output) is stable::

    {"lab": "lab01", "mode": "live|snapshot|simulated|manifests", "score": int, "max_score": int,
     "not_evaluated_points": int,           # points of not-evaluated checks, not in max_score
     "checks": [{"id": str, "title": str, "points": int, "passed": bool,
                 "status": "passed|failed|blocked|not-evaluated", "message": str,
                 "hint": str | null}]}      # hint: the first hint of a failed check, else null
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from graders import mesh, versions
from graders.state import Gateway, Meta, Pod, ProbeRecord, Server, Service, State, VirtualService

INGRESS = "istio-system/istio-ingressgateway"  # the course's default ingress gateway Service
BOOKINFO_TITLE = "Simple Bookstore App"  # <title> of the Bookinfo product page


# --- what a check returns ------------------------------------------------------------------------
PASSED, FAILED, BLOCKED, NOT_EVALUATED = "passed", "failed", "blocked", "not-evaluated"
STATUSES = (PASSED, FAILED, BLOCKED, NOT_EVALUATED)
LIVE_ONLY = "needs a live cluster"  # what a not-evaluated check says, first thing


@dataclass(frozen=True)
class Outcome:
    """What a check found. ``skipped``: not run, a check it needs did not pass (status ``blocked``);
    ``not_evaluated``: this target cannot show the evidence (status ``not-evaluated``)."""

    passed: bool
    message: str
    hints: tuple[str, ...] = ()
    skipped: bool = False
    not_evaluated: bool = False
    include: str = "grade a live cluster to include it"  # how a not-evaluated check's points come back


def passed(message: str) -> Outcome:
    return Outcome(True, message)


def failed(message: str, *hints: str) -> Outcome:
    return Outcome(False, message, tuple(h for h in hints if h))


def blocked(titles: Sequence[str], why: str = "") -> Outcome:
    """Not run on its merits: the check cannot pass until the checks titled ``titles`` pass (status
    ``blocked``, no points, no hint). The framework returns it for ``needs``; a check returns it itself
    when only some cases depend on another check (``why`` says which)."""
    listed = ", ".join(f"“{t}”" for t in titles)
    return Outcome(False, f"skipped: needs {listed} first{f' ({why})' if why else ''}.", skipped=True)


def needs_live(message: str) -> Outcome:
    """The check's evidence exists only on a live cluster (a real request, a container log), and this
    target (simulated, snapshot) cannot show it: not passed, not failed, and its points are left out of
    ``max_score``, never awarded by default. ``message`` says what a live cluster would show.

    Decide it from the mode alone (``ctx.state.mode``), never from what the learner wrote, so every
    learner graded in one mode has the same ``max_score``."""
    return Outcome(False, f"{LIVE_ONLY[0].upper()}{LIVE_ONLY[1:]}: {message}", not_evaluated=True)


def grader_cannot(message: str, include: str) -> Outcome:
    """The grader itself could not gather the evidence on this target (its credentials lack an optional
    grant, e.g. ``get pods/log``): ``not-evaluated``, never a failure charged to the learner (issue #12).

    The one exception to "``max_score`` depends on the mode only": here it also depends on the grader's
    own permissions, which are the same for every learner graded with one context and never on what a
    learner wrote. ``include`` says what to grant to have the points counted."""
    return Outcome(False, f"Not evaluated: {message}", not_evaluated=True, include=include)


CheckFn = Callable[["Context"], Outcome]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    points: int
    fn: CheckFn
    needs: tuple[str, ...] = ()
    live_only: bool = False  # evaluated only on a live cluster; elsewhere ``not-evaluated`` without running


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    points: int
    passed: bool
    message: str
    hints: tuple[str, ...] = ()
    skipped: bool = False
    not_evaluated: bool = False
    include: str = "grade a live cluster to include it"  # how a not-evaluated check's points come back

    @property
    def hint(self) -> str | None:
        return None if self.passed or self.skipped or self.not_evaluated or not self.hints else self.hints[0]

    @property
    def status(self) -> str:
        """``passed``; ``failed``; ``blocked`` (not run because a check it needs did not pass), so one
        mistake is shown as one failure and its consequences as blocked; ``not-evaluated`` (this target
        cannot show the evidence: its points are not in ``max_score``)."""
        if self.passed:
            return PASSED
        if self.not_evaluated:
            return NOT_EVALUATED
        return BLOCKED if self.skipped else FAILED

    @property
    def counted(self) -> bool:
        """Do this check's points count in ``max_score``? All but the not-evaluated ones do."""
        return not self.not_evaluated

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "points": self.points, "passed": self.passed,
                "status": self.status, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class LabResult:
    lab: str
    title: str
    mode: str
    description: str
    checks: tuple[CheckResult, ...]
    notes: tuple[str, ...] = ()  # shown to people (text, notebook), not part of the JSON
    chapter: str = ""  # the chapter to re-read when stuck ("chapters/02-gateway-resource")

    @property
    def score(self) -> int:
        return sum(c.points for c in self.checks if c.passed)

    @property
    def max_score(self) -> int:
        """The points this target can show evidence for: not-evaluated checks are left out."""
        return sum(c.points for c in self.checks if c.counted)

    @property
    def not_evaluated_points(self) -> int:
        return sum(c.points for c in self.checks if not c.counted)

    @property
    def all_passed(self) -> bool:
        """Every check this target can evaluate passed (not-evaluated ones are neither passed nor failed)."""
        return all(c.passed for c in self.checks if c.counted)

    def check(self, check_id: str) -> CheckResult:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "mode": self.mode, "score": self.score, "max_score": self.max_score,
                "not_evaluated_points": self.not_evaluated_points, "checks": [c.to_json() for c in self.checks]}


class Lab:
    """A lab: its id ("lab01"), title, chapter link and ordered checks (registered with ``@lab.check``)."""

    def __init__(self, id: str, title: str, *, chapter: str, notebook: str, summary: str = ""):
        self.id, self.title, self.chapter, self.notebook, self.summary = id, title, chapter, notebook, summary
        self.checks: list[Check] = []

    def check(self, id: str, title: str, *, points: int = 1, needs: Sequence[str] = (),
              live_only: bool = False) -> Callable[[CheckFn], CheckFn]:
        """Register a check. ``needs``: checks that must pass first (else this one is ``blocked``);
        ``live_only``: its evidence exists only on a live cluster (else it is ``not-evaluated``)."""
        known = {c.id for c in self.checks}
        if id in known:
            raise ValueError(f"{self.id}: duplicate check id {id!r}")
        missing = [n for n in needs if n not in known]
        if missing:
            raise ValueError(f"{self.id}/{id}: needs {missing} must be declared before it")

        def register(fn: CheckFn) -> CheckFn:
            self.checks.append(Check(id, title, points, fn, tuple(needs), live_only))
            return fn
        return register

    def get(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(f"{self.id} has no check {check_id!r}; its checks are: {', '.join(c.id for c in self.checks)}")

    def evaluate(self, ctx: Context, only: Sequence[str] | None = None, notes: Sequence[str] = ()) -> LabResult:
        """Run the checks in order; a check whose prerequisites did not pass is skipped, not run.

        ``only`` limits the report to some checks, but their prerequisites still run (silently) so a
        single notebook check cell gives the same verdict as the whole lab.
        """
        ctx.lab = self.id
        wanted = set(only) if only is not None else None
        if wanted is not None:
            for cid in list(wanted):
                wanted |= self._prerequisites(cid)
        results: dict[str, CheckResult] = {}
        for chk in self.checks:
            if wanted is not None and chk.id not in wanted:
                continue
            outcome = self._outcome(chk, ctx, [results[n] for n in chk.needs if n in results])
            message = outcome.message
            if outcome.not_evaluated:
                message += (f" Its {chk.points} point{'s are' if chk.points != 1 else ' is'} left out of this "
                            f"score ({outcome.include}).")
            results[chk.id] = CheckResult(chk.id, chk.title, chk.points, outcome.passed, message,
                                          () if outcome.not_evaluated else outcome.hints, outcome.skipped,
                                          outcome.not_evaluated)
        shown = [r for cid, r in results.items() if only is None or cid in only]
        return LabResult(self.id, self.title, ctx.state.mode, ctx.state.description, tuple(shown), tuple(notes),
                         self.chapter)

    @staticmethod
    def _outcome(chk: Check, ctx: Context, prerequisites: Sequence[CheckResult]) -> Outcome:
        """Not-evaluated first (it depends on the mode only, so ``max_score`` is the same for every learner
        in a mode), then blocked (a check it needs failed or was blocked), else the check's own verdict."""
        if chk.live_only and ctx.state.mode != "live":
            return needs_live(f"“{chk.title}” is shown only by a live cluster; this {ctx.state.mode} target "
                              "holds no evidence for it.")
        waiting = [r for r in prerequisites if r.not_evaluated]
        if waiting:
            titles = ", ".join(f"“{r.title}”" for r in waiting)
            return needs_live(f"it builds on {titles}, which this {ctx.state.mode} target cannot evaluate.")
        blocking = [r for r in prerequisites if not r.passed]
        if blocking:
            return blocked([b.title for b in blocking])
        return chk.fn(ctx)

    def _prerequisites(self, check_id: str) -> set[str]:
        out: set[str] = set()
        for n in self.get(check_id).needs:
            out |= {n, *self._prerequisites(n)}
        return out


# --- building blocks labs share ---------------------------------------------------------------------
def gateway_service(state: State, ref: str = INGRESS) -> Service | None:
    ns, _, name = ref.partition("/")
    return state.service(ns, name)


def gateway_service_pods(state: State, ref: str = INGRESS) -> list[Pod]:
    """The pods behind a gateway Service (ready or not)."""
    svc = gateway_service(state, ref)
    return state.pods_matching(svc.selector, svc.meta.namespace) if svc and svc.selector else []


def gateway_services(state: State, ref: str = INGRESS) -> list[Service]:
    """The gateway Service ``ref`` first, then every other Service that selects the same pods (a learner
    may expose a gateway port with a Service of their own); each reaches the pods on its targetPorts."""
    pods = gateway_service_pods(state, ref)
    main = gateway_service(state, ref)
    if not pods:
        return [main] if main else []
    pod = pods[0]
    return [*([main] if main else []), *(s for s in state.services_selecting(pod) if s is not main)]


def gateways_on(state: State, ref: str = INGRESS) -> list[Gateway]:
    """Gateways (oldest first) whose selector matches at least one pod behind the gateway Service ``ref``."""
    pods = {p.meta.key for p in gateway_service_pods(state, ref)}
    return [g for g in state.ordered_gateways if any(p.meta.key in pods for p in mesh.gateway_pods(state, g))]


def of_lab(meta: Meta, lab: str | None) -> bool:
    """Is this object the learner's for ``lab`` ("lab01"; None: any lab)? Not when it comes from the simulated cluster's
    baseline, nor when ``lab setup/solve`` of another lab put it there (both course labels, see
    graders/labenv/ownership.py, with another lab's number). An unlabelled object is the learner's: on a
    live cluster or a snapshot nothing else tells whose it is; from files, every object is."""
    if meta.origin.startswith("baseline"):
        return False
    if meta.labels.get(versions.COURSE_LABEL) != versions.COURSE_NAME:
        return True
    placed_for = meta.labels.get(versions.LAB_LABEL)
    return lab is None or not placed_for or placed_for == lab.removeprefix("lab")


def lab_gateways(state: State, lab: str | None) -> list[Gateway]:
    """The learner's Gateways for ``lab`` (oldest first), whatever they select: another lab's Gateways left
    on the cluster (``lab setup 3`` and so on) are not the learner's work for this one."""
    return [g for g in state.ordered_gateways if of_lab(g.meta, lab)]


def learner_gateways(state: State, ref: str = INGRESS, *, lab: str) -> list[Gateway]:
    """The Gateways a check judges: the learner's (``lab_gateways``) on the gateway ``ref``, else all the
    learner's, so a Gateway whose selector is wrong is still judged on its other fields (its selector has
    a check of its own: one mistake costs points once). Never another lab's Gateway: on a live cluster
    with lab 2's Gateway still there, lab 1's VirtualService must bind to the learner's own (``lab``: the
    lab's id)."""
    mine = lab_gateways(state, lab)
    keys = {g.meta.key for g in mine}
    return [g for g in gateways_on(state, ref) if g.meta.key in keys] or mine


def assume_gateways_fixed(ctx: Context, gateways: Sequence[Gateway], *, port: int | None = None,
                          ref: str = INGRESS) -> Context:
    """A context over the state as if ``gateways`` selected the pods of the gateway Service ``ref`` (their
    selector replaced by the Service's) and, given ``port``, as if their plain-HTTP servers listened on it
    whenever their own port is not reached through that Service port. ``ctx`` itself when nothing needs
    fixing. Checks of a VirtualService's routes trace in it, so they judge the VirtualService alone."""
    state = ctx.state
    svc = gateway_service(state, ref)
    if svc is None or not svc.selector or not gateways:
        return ctx
    on = {g.meta.key for g in gateways_on(state, ref)}

    def fixed(gw: Gateway) -> Gateway:
        servers = tuple(replace(s, port=port) if port is not None and s.is_plain_http
                        and port not in client_ports(state, s.port, ref) else s for s in gw.servers)
        selector = gw.selector if gw.meta.key in on else dict(svc.selector)
        return gw if (servers, selector) == (gw.servers, gw.selector) else replace(gw, selector=selector,
                                                                                   servers=servers)

    keys = {g.meta.key for g in gateways}
    new = tuple(fixed(g) if g.meta.key in keys else g for g in state.gateways)
    if all(a is b for a, b in zip(new, state.gateways, strict=True)):
        return ctx
    return ctx.derived(("gateways-fixed", tuple(sorted(keys)), port, ref),
                       lambda: Context(replace(state, gateways=new), target=ctx.target, lab=ctx.lab))


def judged_on_gateway(ctx: Context, *, port: int | None = None, ref: str = INGRESS) -> tuple[Context, str]:
    """(context, note): ``assume_gateways_fixed`` for the learner's Gateways, and the words a message adds
    to say what was assumed ("" when nothing was)."""
    gws = learner_gateways(ctx.state, ref, lab=ctx.lab or None)
    fixed = assume_gateways_fixed(ctx, gws, port=port, ref=ref)
    if fixed is ctx:
        return ctx, ""
    what, judged = (f"selected {ref} on port {port}", "its selector and port") if port is not None else \
        (f"selected {ref}", "its selector")
    return fixed, f" (judged as if Gateway {names(gws)} {what}; the Gateway's own checks judge {judged})"


def invalid_documents(ctx: Context, kind: str) -> list:
    """MANIFEST-INVALID findings for documents of ``kind``: objects the API server would reject, which
    the state therefore does not contain."""
    return [f for f in ctx.findings_for("MANIFEST-INVALID") if any(r.startswith(f"{kind} ") for r in f.resources)]


def rejected(ctx: Context, kind: str, more: str) -> Outcome | None:
    """A failure naming the first invalid ``kind`` document (file, line, problem, fix), else None."""
    found = invalid_documents(ctx, kind)
    if not found:
        return None
    what = found[0].message.split(" The object was left out")[0].rstrip(".")
    return failed(f"{what}: the API server rejects such a {kind}, so it is never created.", found[0].hint, more)


def client_ports(state: State, server_port: int, ref: str = INGRESS) -> list[int]:
    """Ports of the gateway Service ``ref`` through which a client reaches a Gateway server on ``server_port``:
    those whose targetPort is the listener istiod opens for it (none when the listener is dropped)."""
    svc, pods = gateway_service(state, ref), gateway_service_pods(state, ref)
    if svc is None or not pods:
        return []
    pod = pods[0]
    listener = mesh.resolve_listener_port(state, pod, server_port).listener
    if mesh.privileged_dropped(pod, listener):
        return []
    return [sp.port for sp in svc.ports if mesh.target_port_number(sp, pod) == listener]


def names(objs) -> str:
    """``ns/name, ns/name`` of state records, for messages."""
    return ", ".join(o.meta.key for o in objs)


def http_servers(gw: Gateway) -> list[Server]:
    return [s for s in gw.servers if s.is_plain_http]


def bound_virtual_services(state: State, gateways: Sequence[Gateway]) -> list[VirtualService]:
    """VirtualServices whose spec.gateways resolves to one of ``gateways`` (creation order)."""
    keys = {g.meta.key for g in gateways}
    return [vs for vs in state.ordered_virtual_services if keys & set(mesh.vs_gateway_refs(vs))]


def served_host(ctx: Context, preferred: str, ref: str = INGRESS) -> str:
    """``preferred`` when a VirtualService on the gateway serves it, else a host one does serve.

    Route checks trace with this host so they judge routes, not hosts; the request check sends the
    lab's own host and so judges the host."""
    state = ctx.state
    pods = gateway_service_pods(state, ref)
    proxy_ns = pods[0].meta.namespace if pods else "istio-system"
    domains = [d for gw in gateways_on(state, ref) for s in http_servers(gw)
               for _, ds in mesh.bound_virtual_services(state, gw, s, proxy_ns) for d in ds]
    if not domains or any(mesh.host_covers(d, preferred) for d in domains):
        return preferred
    return domains[0].replace("*", "www")


def virtual_service_bound(ctx: Context, work: str, ref: str = INGRESS,
                          gateways: Sequence[Gateway] | None = None) -> Outcome:
    """Some VirtualService lists one of ``gateways`` (default: the Gateways that program the gateway
    ``ref``); else say why not."""
    state = ctx.state
    gws = list(gateways) if gateways is not None else gateways_on(state, ref)
    bound = bound_virtual_services(state, gws)
    if bound:
        return passed(f"VirtualService {names(bound)} lists Gateway {names(gws)} in spec.gateways.")
    if not state.virtual_services:
        return failed("No VirtualService found, so the Gateway has no routes and answers every request with 404.",
                      f"Write a VirtualService in {work} whose spec.gateways names your Gateway.",
                      "A VirtualService for a gateway needs spec.hosts, spec.gateways and spec.http routes.")
    for vs in state.ordered_virtual_services:
        for f in ctx.findings_for("VS-GATEWAY-NOT-FOUND", vs.meta.ref):
            gw_ref, resolved = f.details.get("ref"), str(f.details.get("resolved", "")).removeprefix("Gateway ")
            return failed(f"VirtualService {vs.meta.key} lists gateway '{gw_ref}', which means {resolved}; no such "
                          "Gateway exists, so its routes are attached to no gateway.",
                          f"Look at spec.gateways of VirtualService {vs.meta.key}: a name without a namespace "
                          "means the VirtualService's own namespace.",
                          f"Your Gateway is {names(gws)}; a reference to a Gateway in another namespace is "
                          "written <namespace>/<name>.")
    vs = state.ordered_virtual_services[0]
    where = ", ".join(vs.gateways) if vs.gateways else "nothing (so it applies to the mesh sidecars only)"
    return failed(f"VirtualService {vs.meta.key} lists {where} in spec.gateways, not Gateway {names(gws)}.",
                  f"Look at spec.gateways of VirtualService {vs.meta.key}.",
                  "Without spec.gateways a VirtualService programs sidecars (`mesh`), not the ingress gateway.")


BOOKINFO_SERVICES = ("productpage", "details", "reviews", "ratings")


def istio_and_bookinfo_ready(ctx: Context, bookinfo_ns: str = "default") -> Outcome:
    """The shared first check of every lab: Istio installed, istiod and the ingress gateway ready, Bookinfo ready."""
    state = ctx.state
    if ctx.findings_for("ISTIO-NOT-INSTALLED"):
        return failed(f"Istio is not installed on {state.description or 'this cluster'}: there are no "
                      "networking.istio.io resource types, so no Gateway can exist.",
                      "On a live cluster `kubectl get crd gateways.networking.istio.io` should list the CRD; "
                      "`python -m graders doctor` checks the whole setup.",
                      "`python -m graders cluster up` creates the course's kind cluster with Istio and Bookinfo.")
    problems = []
    if not any(p.ready for p in state.pods_matching({"app": "istiod"}, "istio-system")):
        problems.append("istiod (istio-system) has no ready pod")
    gw = gateway_service(state)
    if gw is None:
        problems.append(f"there is no Service {INGRESS}")
    elif not state.ready_pods_for(gw):
        problems.append(f"the ingress gateway Service {INGRESS} has no ready pod")
    for name in BOOKINFO_SERVICES:
        svc = state.service(bookinfo_ns, name)
        if svc is None:
            problems.append(f"Service {bookinfo_ns}/{name} is missing")
        elif not state.ready_pods_for(svc):
            problems.append(f"Service {bookinfo_ns}/{name} has no ready pod")
    if problems:
        return failed("Not ready yet: " + "; ".join(problems) + ".",
                      f"{ctx.look('get pods -n istio-system')} and {ctx.look(f'get pods -n {bookinfo_ns}')} show "
                      "which pods are not Running and Ready; on a live cluster `kubectl describe pod` says why.",
                      "Pods can take a minute or two after `cluster up`; `kubectl wait --for=condition=Ready pods "
                      f"--all -n {bookinfo_ns} --timeout=180s` waits for them.")
    return passed(f"Istio (istiod and the ingress gateway) and Bookinfo ({', '.join(BOOKINFO_SERVICES)} in "
                  f"{bookinfo_ns}) are installed and have ready pods.")


# --- evidence that a request works -----------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """What one request through a gateway did, from whichever source the mode allows."""

    source: str  # live | recorded | simulated
    request: str  # "GET http://host/path via istio-system/istio-ingressgateway port 80"
    ok: bool  # 200 from the expected application (and the expected text, when one was asked for)
    status: int | None
    detail: str  # what happened, in words
    record: ProbeRecord | None = None
    trace: Any = None
    # Who answered, in graders.probes.classify's words: app, gateway-404-nr, gateway-503-nc,
    # gateway-503-uh, connection-refused, ... (traces are mapped onto the same words).
    verdict: str = ""

    @property
    def sentence(self) -> str:
        prefix = {"live": "Live request", "recorded": "Recorded request (from the snapshot)",
                  "simulated": "Simulated request (no real request sent)"}[self.source]
        return f"{prefix}: {self.request} -> {self.detail}."


@dataclass(frozen=True)
class Target:
    """The live cluster a Context may send real requests to."""

    context: str | None = None
    kubeconfig: str | None = None


@dataclass(frozen=True)
class PodLogs:
    """Container logs read from a live cluster: (``ns/pod``, text) per pod, or why they could not be."""

    logs: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    forbidden: bool = False  # the error is a 403: the grader lacks the grant, the learner did nothing wrong


class Context:
    """Everything a check may read: the state plus (cached) findings, traces, request evidence and,
    on a live cluster, container logs."""

    def __init__(self, state: State, *, target: Target | None = None, lab: str = ""):
        self.state = state
        self.target = target or Target()
        self.lab = lab  # the lab being graded ("lab01"); Lab.evaluate sets it
        self._traces: dict[tuple, Any] = {}
        self._evidence: dict[tuple, Evidence] = {}
        self._logs: dict[tuple, PodLogs] = {}
        self._derived: dict[tuple, Context] = {}

    def derived(self, key: tuple, build: Callable[[], Context]) -> Context:
        """A context over a what-if state (``assume_gateways_fixed``), built once per key."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def pod_logs(self, namespace: str, selector: str, container: str, tail: int) -> PodLogs:
        """The last ``tail`` lines of ``container`` in the pods of ``namespace`` matching ``selector``,
        read through the API (never exec); live mode only. A refusal or an unreachable cluster comes
        back as ``error`` for the check to report, never as an exception."""
        if self.state.mode != "live":
            raise ValueError("container logs exist only on a live cluster")
        key = (namespace, selector, container, tail)
        if key not in self._logs:
            from graders.errors import ClusterError, PermissionDenied
            from graders.sources.live import read_pod_logs

            try:
                logs = PodLogs(tuple(read_pod_logs(self.target.context, self.target.kubeconfig, namespace, selector,
                                                   container, tail)))
            except ClusterError as err:
                logs = PodLogs(error=str(err), forbidden=isinstance(err, PermissionDenied))
            self._logs[key] = logs
        return self._logs[key]

    @cached_property
    def findings(self) -> tuple:
        from graders.analyzers import analyze

        return tuple(analyze(self.state))

    def look(self, args: str) -> str:
        """The command (in backticks) that shows ``args`` (kubectl's words, e.g. ``get pods -n istio-system
        --show-labels``) in the current mode: kubectl on a live cluster, the read-only ``graders get``
        view over the simulated cluster or a snapshot, where no kubectl can work. Off-cluster the command
        names the same files the check graded (the snapshot, the lab's start and work folders), so it
        shows exactly the state the check saw."""
        if self.state.mode == "live":
            return f"`kubectl {args}`"
        import shlex

        from graders.labs import _shown

        words = args.split()
        if "get" in words:
            words.remove("get")
        sources = [_shown(Path(s)) for s in self.state.sources]
        if self.state.mode == "snapshot" and sources:
            words += ["--snapshot", sources.pop(0)]
        if self.state.mode == "manifests":
            words.append("--no-baseline")
        return f"`python -m graders get {' '.join(shlex.quote(w) for w in words + sources)}`"

    def findings_for(self, code: str, resource: str | None = None) -> list:
        """Findings with ``code`` (optionally naming ``resource``, e.g. "Gateway default/bookinfo")."""
        return [f for f in self.findings if f.code == code and (resource is None or resource in f.resources)]

    def trace(self, *, port: int, host: str, path: str, gateway: str = INGRESS, method: str = "GET",
              headers: Mapping[str, str] | None = None) -> Any:
        from graders.trace import Request, trace

        key = (gateway, port, host, path, method, tuple(sorted((headers or {}).items())))
        if key not in self._traces:
            self._traces[key] = trace(self.state, Request(gateway=gateway, port=port, host=host, path=path,
                                                          method=method, headers=dict(headers or {})))
        return self._traces[key]

    def request(self, *, port: int, host: str, path: str, service: str, gateway: str = INGRESS,
                expect_text: str | None = None) -> Evidence:
        """Does ``GET http://host{path}`` on the gateway Service ``port`` reach ``service`` (ns/name) with 200?

        Live: a real request through a port-forward to a gateway pod (graders.probes; bounded timeouts,
        retried while pods start). Snapshot: the probe recorded for the same request, or the trace
        when none was recorded. Simulated: the request trace.
        """
        key = (gateway, port, host.lower(), path, service, expect_text)
        if key not in self._evidence:
            self._evidence[key] = self._gather(gateway, port, host, path, service, expect_text)
        return self._evidence[key]

    def _gather(self, gateway: str, port: int, host: str, path: str, service: str,
                expect_text: str | None) -> Evidence:
        desc = f"GET http://{host}{path} via {gateway} port {port}"
        if self.state.mode == "live":
            from graders.probes import PortForward, probe

            rec = probe(PortForward(self.target.context, self.target.kubeconfig), gateway=gateway, port=port,
                        host=host, path=path)
            return from_record("live", desc, rec, expect_text)
        if self.state.mode == "snapshot":
            rec = recorded_probe(self.state, gateway, port, host, path)
            if rec is not None:
                return from_record("recorded", desc, rec, expect_text)
            desc += " (the snapshot recorded no such request)"
        return from_trace(desc, self.trace(port=port, host=host, path=path, gateway=gateway), service)


def recorded_probe(state: State, gateway: str, port: int, host: str, path: str) -> ProbeRecord | None:
    """The last probe the snapshot recorded for this exact request (host compared case-insensitively)."""
    found = [p for p in state.probes if p.gateway == gateway and p.port == port and p.path == path
             and p.host.lower() == host.lower() and p.method.upper() == "GET"]
    return found[-1] if found else None


_VERDICT_WORDS = {
    "gateway-404-nr": "from the gateway itself (no virtual host or route matched: 404 NR)",
    "gateway-503-nc": "from the gateway itself (the route's upstream cluster does not exist: 503 NC)",
    "gateway-503-uh": "from the gateway itself ('no healthy upstream': no ready endpoint, 503 UH)",
    "gateway-503-uf": "from the gateway itself (the upstream refused or reset the connection: 503 UF)",
    "not-gateway": "from something that is not an Istio gateway (no server: istio-envoy)",
}


def from_record(source: str, desc: str, rec: ProbeRecord, expect_text: str | None) -> Evidence:
    """Evidence from a real (or recorded) response; ``classify`` tells an app reply from a gateway reply."""
    from graders.probes import classify

    verdict = classify(rec)
    if rec.status is None:
        return Evidence(source, desc, False, None, f"no HTTP response ({rec.error or verdict})", rec,
                        verdict=verdict)
    if verdict == "app":
        text_ok = expect_text is None or expect_text in rec.body_excerpt
        detail = f"HTTP {rec.status} from the application (it passed the gateway: x-envoy-upstream-service-time)"
        if rec.status == 200 and not text_ok:
            detail += f", but the page is not the expected one (no “{expect_text}” in it)"
        return Evidence(source, desc, rec.status == 200 and text_ok, rec.status, detail, rec, verdict=verdict)
    words = _VERDICT_WORDS.get(verdict, "answered by the gateway itself, not by the application")
    return Evidence(source, desc, False, rec.status, f"HTTP {rec.status} {words}", rec, verdict=verdict)


_TRACE_VERDICT = {"not-found": "gateway-404-nr", "no-cluster": "gateway-503-nc",
                  "no-healthy-upstream": "gateway-503-uh", "connection-refused": "connection-refused",
                  "connection-closed": "connection-reset", "unreachable": "unreachable"}


def from_trace(desc: str, tr: Any, service: str) -> Evidence:
    dest = tr.destination or {}
    reached = dest.get("service")
    if tr.outcome == "ok" and tr.http_status is None and reached == service:
        detail = (f"reaches {reached} port {dest.get('port')}, which has ready pods, so the application itself "
                  "answers (HTTP 200 from a healthy app)")
        return Evidence("simulated", desc, True, 200, detail, trace=tr, verdict="app")
    if tr.outcome == "ok" and tr.http_status is not None:
        detail = f"the gateway answers HTTP {tr.http_status} itself instead of forwarding to {service}"
        verdict = f"gateway-{tr.http_status}"
    elif tr.outcome == "ok":
        detail, verdict = f"reaches {reached} port {dest.get('port')}, not {service}", "app"
    else:
        code = f"HTTP {tr.http_status} from the gateway" if tr.http_status else tr.outcome.replace("-", " ")
        detail = f"{code}: {tr.steps[-1].result}" if tr.steps else code
        verdict = _TRACE_VERDICT.get(tr.outcome, tr.outcome)
    return Evidence("simulated", desc, False, tr.http_status, detail.rstrip("."), trace=tr, verdict=verdict)


def request_hints(ev: Evidence, host: str, ctx: Context | None = None) -> tuple[str, str]:
    """Two progressive hints for a request that did not return the page, chosen by who answered.
    With ``ctx``, commands are the ones that work in its mode (``Context.look``)."""
    look = ctx.look if ctx is not None else (lambda args: f"`kubectl {args}`")
    live = ctx is None or ctx.state.mode == "live"
    if ev.verdict == "gateway-404-nr":
        return (f"A 404 from the gateway itself means no virtual host or route matched: compare the hosts of "
                f"your Gateway and VirtualService with the Host header the request carries ({host}), then the "
                "route's path matches.",
                f"curl sends the URL's host and port unless told otherwise (`curl http://localhost:8080/` sends "
                "`Host: localhost:8080`; the gateway ignores the port when it matches hosts): "
                f"`curl -H 'Host: {host}' ...` sends the same request as this check.")
    if ev.verdict.startswith("gateway-503"):
        return ("A 503 from the gateway means the route's destination is wrong (host, port) or has no ready pod: "
                "look at route.destination in your VirtualService.",
                f"{look('get svc,pods -n default')} shows each Service's port and whether its pods are Ready.")
    if ev.verdict == "app":
        return ("The application answered, but not with the page: look at which Service and path your route "
                "sends this request to.",
                "A 404 with x-envoy-upstream-service-time came from the application, not from the gateway: the "
                "gateway routed it, so the route's destination or a rewrite is what to check.")
    listeners = ("`istioctl proxy-config listeners -n istio-system deploy/istio-ingressgateway` lists the listeners "
                 "the gateway really has." if live else
                 "`python -m graders trace` with your files, the port and the Host header shows the step where the "
                 "request stops.")
    return ("No HTTP answer means nothing listens behind that Service port: check the Gateway's selector and "
            "port against the gateway pods and the gateway Service.", listeners)
