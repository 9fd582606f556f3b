"""Create, update and delete course objects: the only writes the lab environment makes through
the API. Every write is reported as an ``Outcome`` so the commands can print what changed and
exit 1 when an object that is not the course's stood in the way."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from graders.errors import ClusterError
from graders.labenv import residents
from graders.labenv.kube import UNREAD_KINDS, Kube, Ref
from graders.labenv.manifests import KIND_ORDER, Manifest
from graders.labenv.ownership import BASELINE, COURSE_SELECTOR, contains, course_labels, lab_of, labelled, owned
from graders.labenv.residents import ApiResource

CREATED, UPDATED, RELABELLED, UNCHANGED, CONFLICT, KEPT, DELETED, LEFT, WOULD_DELETE = (
    "created", "updated", "relabelled", "unchanged", "CONFLICT", "kept", "deleted", "left", "would delete")
# Kinds reset looks through for course objects (plus any kind a lab file uses). The RBAC, PDB and HPA
# kinds are what istioctl creates for a gateway (lab 4); a kind the cluster does not serve is skipped.
SCAN_KINDS: tuple[tuple[str, str], ...] = (
    ("networking.istio.io/v1", "Gateway"), ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "DestinationRule"), ("networking.istio.io/v1", "ServiceEntry"),
    ("networking.istio.io/v1", "Sidecar"), ("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("policy/v1", "PodDisruptionBudget"), ("autoscaling/v2", "HorizontalPodAutoscaler"), ("v1", "Namespace"),
)
# ConfigMaps and Secrets are never read in full (that would return their data, which the course does not
# read): Kube.get asks for their metadata only, and whether a namespace holds some is seen through
# metadata-only lists (graders.labenv.residents).
OWNER_LABEL = "install.operator.istio.io/owning-resource"
KEPT_FOREIGN = "already there, not created by the course; left as it is"


@dataclass(frozen=True)
class Outcome:
    action: str
    ref: Ref
    detail: str = ""

    def line(self) -> str:
        return f"  {self.action:<9} {self.ref}" + (f"  ({self.detail})" if self.detail else "")


def apply(kube: Kube, manifests: Sequence[Manifest], lab: str, *, foreign: str = "conflict") -> list[Outcome]:
    """Create or update each object with the course labels for ``lab``.

    An object that exists without the course label is never changed: it is reported as a
    CONFLICT (``foreign="conflict"``, lab files) or KEPT (``foreign="keep"``, the baseline: a Bookinfo
    the learner deployed themselves serves as well). The one exception is a baseline Namespace,
    which only gains the labels the file gives it (``default`` needs ``istio-injection``).
    """
    out: list[Outcome] = []
    for m in manifests:
        obj = dict(m.obj)
        if kube.namespaced(obj["apiVersion"], obj["kind"]):
            obj["metadata"] = {**obj["metadata"], "namespace": obj["metadata"].get("namespace") or "default"}
        ref = Ref.of(obj)
        live = kube.get(ref)
        if live is not None and (live.get("metadata") or {}).get("deletionTimestamp"):
            wait_until_gone(kube, ref)  # a namespace still terminating from a reset: create it anew
            live = None
        if live is None:
            kube.create(labelled(obj, lab))
            out.append(Outcome(CREATED, ref, m.origin))
        elif owned(live):
            want = labelled(obj, lab)
            if ref.kind in UNREAD_KINDS:  # its data is not read, so it cannot be compared: write the lab's version
                kube.patch(ref, want)
                out.append(Outcome(UPDATED, ref, f"{m.origin}; written again: its contents are never read"))
            elif contains(live, want):
                out.append(Outcome(UNCHANGED, ref))
            elif contains(live, {k: v for k, v in want.items() if k != "metadata"}):
                kube.patch(ref, {"metadata": {"labels": want["metadata"]["labels"]}})
                out.append(Outcome(RELABELLED, ref, f"{m.origin}; was lab {lab_of(live)}"))
            else:
                kube.patch(ref, want)
                previous = lab_of(live)
                out.append(Outcome(UPDATED, ref, m.origin + (f"; was lab {previous}" if previous != lab else "")))
        elif foreign == "keep" and ref.kind == "Namespace":
            labels = obj["metadata"].get("labels") or {}
            if contains(live, {"metadata": {"labels": labels}}):
                out.append(Outcome(UNCHANGED, ref))
            else:
                kube.patch(ref, {"metadata": {"labels": labels}})
                out.append(Outcome(UPDATED, ref, "labels " + ", ".join(f"{k}={v}" for k, v in labels.items())))
        elif foreign == "keep":
            out.append(Outcome(KEPT, ref, KEPT_FOREIGN))
        elif contains(live, obj):
            out.append(Outcome(KEPT, ref, "not created by the course, but already as the lab has it; left alone"))
        else:
            out.append(Outcome(CONFLICT, ref, f"already exists and was not created by the course, so it was left "
                                              f"unchanged; the lab expects {m.origin}. If it is yours and you want "
                                              f"the lab's version: kubectl --context {kube.context} delete "
                                              f"{ref.kind.lower()} {ref.name}"
                                              + (f" -n {ref.namespace}" if ref.namespace else "")
                                              + ", then run this again"))
    return out


def scan_kinds(extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    kinds = [k for k in dict.fromkeys([*SCAN_KINDS, *extra]) if k[1] not in UNREAD_KINDS]
    return sorted(kinds, key=lambda k: -KIND_ORDER.get(k[1], 9))  # namespaces last


def course_objects(kube: Kube, kinds: Sequence[tuple[str, str]], labs: Callable[[str], bool]) -> list[dict]:
    """Live objects carrying the course label whose lab label ``labs`` accepts, in delete order."""
    out = []
    for api_version, kind in kinds:
        for obj in kube.list(api_version, kind, label_selector=COURSE_SELECTOR):
            lab = lab_of(obj)  # re-checked here: the label selector is the server's, ownership is ours
            if lab is not None and labs(lab):
                out.append(obj)
    return out


def delete(kube: Kube, objs: Sequence[dict], kinds: Sequence[tuple[str, str]], *,
           dry_run: bool = False) -> list[Outcome]:
    """Delete course objects; a course namespace that still holds anything that is not the course's
    (graders.labenv.residents) is kept. ``dry_run``: read the cluster and take the same decisions,
    reporting them (WOULD_DELETE) instead of deleting."""
    for obj in objs:
        if not owned(obj):  # never reached through course_objects; a guard against future callers
            raise ClusterError(f"refusing to delete {Ref.of(obj)}: it does not carry {COURSE_SELECTOR}")
    # Every namespace is judged before anything is deleted: what the dry run sees. Judged later, a
    # course Deployment's Pods, still terminating with an owner already gone, would look like nobody's.
    namespaces = [Ref.of(o).name for o in objs if Ref.of(o).kind == "Namespace"]
    scan = kube.namespaced_resources() if namespaces else ([], [])
    keep = {ns: keep_namespace(kube, ns, *scan) for ns in namespaces}
    out: list[Outcome] = []
    for obj in objs:
        ref = Ref.of(obj)
        if ref.kind == "Namespace" and keep[ref.name]:
            out.append(Outcome(KEPT, ref, keep[ref.name]))
            continue
        if dry_run:
            out.append(Outcome(WOULD_DELETE, ref, f"lab {lab_of(obj)}"))
        elif kube.delete(ref):
            out.append(Outcome(DELETED, ref, f"lab {lab_of(obj)}"))
            if ref.kind == "Namespace":
                wait_until_gone(kube, ref)  # so the next setup can create it again
    return out


def keep_namespace(kube: Kube, namespace: str, resources: Sequence[ApiResource], unseen: Sequence[str]) -> str:
    """Why the course namespace must stay ("" when it may go): it holds objects that are not the
    course's, or part of what it holds could not be seen."""
    objs, unlisted = kube.namespace_objects(namespace, list(resources))
    mine = residents.learner_objects(objs)
    if mine:
        return (f"it also holds {len(mine)} object(s) the course did not create ({residents.describe(mine)}); "
                "the course's own objects in it are deleted, the namespace is kept for yours. Delete those, or "
                "the namespace yourself, if you no longer need them")
    blind = [*unseen, *unlisted]
    if blind:
        return (f"what it holds could not all be seen ({'; '.join(blind[:3])}), so it may hold objects of yours; "
                "the course's own objects in it are deleted, the namespace is kept")
    return ""


def wait_until_gone(kube: Kube, ref: Ref, *, timeout: float = 180.0, poll: float = 2.0) -> None:
    """Wait while an object is terminating (a namespace takes a while to empty itself)."""
    deadline = time.monotonic() + timeout
    while kube.get(ref) is not None:
        if time.monotonic() > deadline:
            raise ClusterError(f"{ref} is still terminating after {timeout:.0f}s; see what holds it with "
                               f"`kubectl --context {kube.context} get {ref.kind.lower()} {ref.name} -o yaml` and run "
                               "the command again once it is gone")
        time.sleep(poll)


def leftovers(kube: Kube, kinds: Sequence[tuple[str, str]]) -> list[Ref]:
    """Istio configuration the course did not create (the learner's own), reported after a reset."""
    out = []
    for api_version, kind in kinds:
        if api_version.startswith("networking.istio.io/"):
            out += [Ref.of(o) for o in kube.list(api_version, kind) if not owned(o)]
    return out


def foreign_installs(kube: Kube, course_iop: str) -> dict[str, list[Ref]]:
    """Gateways istioctl installed from some other IstioOperator (the learner's own lab 4 attempt)."""
    out: dict[str, list[Ref]] = {}
    for obj in kube.list("apps/v1", "Deployment", label_selector=OWNER_LABEL):
        name = ((obj.get("metadata") or {}).get("labels") or {}).get(OWNER_LABEL, "")
        if name and name != course_iop and not owned(obj):
            out.setdefault(name, []).append(Ref.of(obj))
    return out


def label_istio_install(kube: Kube, iop_name: str, lab: str, kinds: Sequence[tuple[str, str]]) -> list[Outcome]:
    """Mark what ``istioctl install`` created for a lab's IstioOperator as the course's, so reset can
    remove it. istioctl labels everything it applies with the operator's metadata.name."""
    out = []
    for api_version, kind in kinds:
        for obj in kube.list(api_version, kind, label_selector=f"{OWNER_LABEL}={iop_name}"):
            ref = Ref.of(obj)
            if lab_of(obj) == lab:
                continue
            kube.patch(ref, {"metadata": {"labels": course_labels(lab)}})
            out.append(Outcome(UPDATED, ref, f"installed by istioctl for IstioOperator {iop_name}; labelled lab {lab}"))
    return out


def wait_for_rollouts(kube: Kube, deployments: Sequence[Ref], say: Callable[[str], None], *,
                      timeout: float = 300.0, poll: float = 2.0, every: float = 15.0) -> None:
    """Wait until each Deployment has its updated replicas available (what `kubectl rollout status`
    waits for), printing one line per Deployment as it becomes ready and, while images are still
    being pulled, what is pending every ``every`` seconds."""
    if not deployments:
        return
    start = time.monotonic()
    deadline, next_note = start + timeout, start + every
    pending = list(deployments)
    total = len(pending)
    shown: dict[Ref, str] = {}
    while pending:
        for ref in list(pending):
            dep = kube.get(ref)
            state = _rollout_state(dep)
            if state == "ready":
                pending.remove(ref)
                say(f"  [{total - len(pending)}/{total}] {ref.namespace}/{ref.name} ready")
            elif shown.get(ref) != state:
                shown[ref] = state
        if not pending:
            return
        now = time.monotonic()
        if now >= next_note:
            next_note = now + every
            say(f"  ... {now - start:.0f}s, waiting for " + ", ".join(
                f"{r.namespace}/{r.name} ({shown.get(r, 'waiting')})" for r in pending[:4])
                + (f" and {len(pending) - 4} more" if len(pending) > 4 else ""))
        if now > deadline:
            waiting = "; ".join(f"{r.namespace}/{r.name}: {shown.get(r, 'waiting')}" for r in pending)
            raise ClusterError(f"not rolled out after {timeout:.0f}s: {waiting}. See why with `kubectl --context "
                               f"{kube.context} get pods -A` and `kubectl describe pod ...` (an image that cannot "
                               "be pulled and too little memory are the usual causes)")
        time.sleep(poll)


def _rollout_state(dep: dict | None) -> str:
    if dep is None:
        return "missing"
    spec, status, md = dep.get("spec") or {}, dep.get("status") or {}, dep.get("metadata") or {}
    want = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < md.get("generation", 1):
        return "waiting for the controller"
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    if updated >= want and available >= want and status.get("replicas", want) <= want:
        return "ready"
    return f"{available}/{want} available"


def changed(outcomes: Iterable[Outcome]) -> bool:
    return any(o.action in (CREATED, UPDATED, RELABELLED, DELETED) for o in outcomes)


def deployments_touched(outcomes: Iterable[Outcome]) -> list[Ref]:
    return [o.ref for o in outcomes if o.ref.kind == "Deployment" and o.action in (CREATED, UPDATED)]


__all__ = ["BASELINE", "Outcome", "apply", "course_objects", "delete", "label_istio_install", "leftovers",
           "scan_kinds", "wait_for_rollouts"]
