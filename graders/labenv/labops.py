"""`lab setup`, `lab solve`, `lab reset`: bring the course cluster to a lab's start state, its
reference solution, or back to the baseline.

Only objects carrying the course labels are updated or deleted; istioctl steps go through the
runner. With ``dry_run`` nothing is written: what would be applied is printed from the lab's files,
and what would be deleted (or kept, and why) is decided by reading the cluster (GET only) with the
same code the real run uses (``apply.delete(..., dry_run=True)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graders.errors import ClusterError
from graders.labenv import apply as ops
from graders.labenv import manifests
from graders.labenv.kube import Kube, Ref
from graders.labenv.labspec import LabSpec, Step, load_all, require_paths
from graders.labenv.ownership import BASELINE, COURSE_SELECTOR, owned
from graders.labenv.runner import Runner, relpath
from graders.sources.simulated import BOOKINFO_FILE, ISTIO_OPERATOR_FILE, NAMESPACES_FILE
from graders.versions import LAB_LABEL


def baseline_iop_name() -> str:
    """The course installation's IstioOperator name: a lab operator with this name updates that
    installation (lab 5) rather than adding one (lab 4)."""
    found = manifests.istio_operator_files(ISTIO_OPERATOR_FILE)
    return str(found[0][1].get("metadata", {}).get("name", "")) if found else ""


@dataclass
class LabEnv:
    runner: Runner
    context: str
    kubeconfig: str | None = None
    rollout_timeout: float = 300.0
    kube_factory: Callable[[str, str | None], Kube] = Kube
    _kube: Kube | None = field(default=None, init=False)
    _kind_list: list[tuple[str, str]] | None = field(default=None, init=False)
    outcomes: list[ops.Outcome] = field(default_factory=list, init=False)

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def dry(self) -> bool:
        return self.runner.dry_run

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = self.kube_factory(self.context, self.kubeconfig)
        return self._kube

    def close(self) -> None:
        if self._kube is not None:
            self._kube.close()

    def say(self, text: str = "") -> None:
        self.runner.say(text)

    def _report(self, outcomes: Sequence[ops.Outcome]) -> None:
        self.outcomes.extend(outcomes)
        quiet = [o for o in outcomes if o.action == ops.UNCHANGED]
        kept = [o for o in outcomes if o.action == ops.KEPT and o.detail == ops.KEPT_FOREIGN]
        for o in outcomes:
            if o not in quiet and o not in kept:
                self.say(o.line())
        if quiet:
            self.say(f"  unchanged {len(quiet)} object(s) already as the files say")
        if kept:
            self.say(f"  kept      {len(kept)} object(s) that exist but were not created by the course "
                     f"({', '.join(o.ref.name for o in kept[:4])}{' ...' if len(kept) > 4 else ''}); left as they are")

    def _kinds(self) -> list[tuple[str, str]]:
        if self._kind_list is None:
            self._kind_list = self._scan_kinds()
        return self._kind_list

    def _scan_kinds(self) -> list[tuple[str, str]]:
        """The kinds reset looks through: the usual ones plus every kind a lab file uses."""
        extra = set()
        for spec in load_all():
            for phase in ("setup", "solve"):
                for step in spec.steps(phase):
                    if step.action == "apply" and step.path.exists():
                        extra |= {(m.obj["apiVersion"], m.kind) for m in manifests.load(step.path)
                                  if not m.is_istio_operator}
        return ops.scan_kinds(sorted(extra))

    def _istioctl(self, file: Path, sets: Sequence[str]) -> list[str]:
        argv = ["istioctl", "install", "-f", relpath(file), "-y", "--context", self.context]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        for s in sets:
            argv += ["--set", s]
        return argv

    # -- steps ---------------------------------------------------------------------------------------
    def apply_files(self, paths: Sequence[Path], lab: str, *, foreign: str) -> list[ops.Outcome]:
        objs = [m for p in paths for m in manifests.load(p) if not m.is_istio_operator]
        if self.dry:
            self.say(f"  create or update, each labelled {COURSE_SELECTOR},{LAB_LABEL}={lab}"
                     + (" (an existing object without the course label is left as it is; an existing namespace "
                        "only gets the file's labels)" if foreign == "keep" else
                        " (an existing object without the course label is reported, not changed)"))
            for m in objs:
                self.say(f"  apply     {manifests.ref(m)}  ({m.origin})")
            return []
        out = ops.apply(self.kube, objs, lab, foreign=foreign)
        self._report(out)
        return out

    def run_step(self, step: Step, lab: str) -> list[ops.Outcome]:
        self.say(f"  - {step.describe()}")
        if step.action == "apply":
            return self.apply_files([step.path], lab, foreign="conflict")
        if step.action == "delete":
            return self._delete_named(step.path)
        return self._istioctl_install(step, lab)

    def _istioctl_install(self, step: Step, lab: str) -> list[ops.Outcome]:
        out: list[ops.Outcome] = []
        for file, iop in manifests.istio_operator_files(step.path):
            self.runner.run(self._istioctl(file, step.set), what="istioctl install")
            name = str((iop.get("metadata") or {}).get("name") or "")
            if name == baseline_iop_name():
                self.say(f"  (IstioOperator {name} is the course's own installation: updated in place, not labelled)")
                continue
            if not name:
                self.say(f"  note: {relpath(file)} has no metadata.name, so what it installed cannot be told apart "
                         "from the course's installation; `lab reset` will not remove it")
                continue
            if self.dry:
                self.say(f"  label     what istioctl created for IstioOperator {name} "
                         f"(install.operator.istio.io/owning-resource={name}) with {LAB_LABEL}={lab}")
                continue
            labelled = ops.label_istio_install(self.kube, name, lab, self._install_kinds())
            self._report(labelled)
            out += labelled
        return out

    def _install_kinds(self) -> list[tuple[str, str]]:
        return [k for k in ops.SCAN_KINDS if not k[0].startswith("networking.istio.io/") and k[1] != "Namespace"]

    def _delete_named(self, path: Path) -> list[ops.Outcome]:
        objs = [m for m in manifests.load(path) if not m.is_istio_operator]
        found = []
        for m in objs:
            ref = Ref.of({**m.obj, "metadata": {**m.obj["metadata"], "namespace": m.obj["metadata"].get(
                "namespace") or ("default" if self.kube.namespaced(m.obj["apiVersion"], m.kind) else "")}})
            live = self.kube.get(ref)
            if live is None:
                continue
            if owned(live):
                found.append(live)
            else:
                self._report([ops.Outcome(ops.LEFT, ref, "not created by the course; left in place")])
        out = ops.delete(self.kube, found, self._kinds(), dry_run=self.dry)
        self._report(out)
        return [] if self.dry else out

    def baseline(self) -> list[ops.Outcome]:
        """The course cluster as `cluster up` leaves it: namespaces labelled, Bookinfo in default."""
        return self.apply_files([NAMESPACES_FILE, BOOKINFO_FILE], BASELINE, foreign="keep")

    def remove(self, accept: Callable[[str], bool], describe: str, keep: set[Ref] | frozenset = frozenset()
               ) -> set[str]:
        """Delete course objects whose lab label ``accept`` admits, except those in ``keep`` (compared
        without apiVersion); returns the labs the deleted objects belonged to."""
        kinds = self._kinds()
        if self.dry:
            self.say(f"  delete    every object labelled {COURSE_SELECTOR} and {describe}; a course namespace "
                     "that also holds anything the course did not create is kept (read from the cluster now):")
        kept = {(r.kind, r.namespace, r.name) for r in keep}
        objs = [o for o in ops.course_objects(self.kube, kinds, accept)
                if (Ref.of(o).kind, Ref.of(o).namespace, Ref.of(o).name) not in kept]
        out = ops.delete(self.kube, objs, kinds, dry_run=self.dry)
        self._report(out)
        if not objs:
            self.say("  nothing to delete")
        return {str(o["metadata"]["labels"][LAB_LABEL]) for o in objs}

    def wait(self, outcomes: Sequence[ops.Outcome]) -> None:
        deps = ops.deployments_touched(outcomes)
        if self.dry:
            self.say("  wait until every Deployment created or updated above has rolled out "
                     f"(up to {self.rollout_timeout:.0f}s)")
            return
        if not deps:
            self.say("  no Deployment was created or changed")
            return
        ops.wait_for_rollouts(self.kube, deps, self.say, timeout=self.rollout_timeout)

    def report_leftovers(self, quiet: bool = False) -> None:
        """Name the Istio configuration that is not the course's (the learner's own), which a lab's
        results also depend on. ``quiet``: say nothing when there is none."""
        if self.dry:
            self.say("  list Istio configuration the course did not create (yours): reported, never deleted")
            return
        mine = ops.leftovers(self.kube, self._kinds())
        if mine and quiet:
            self.say(f"  Note: Istio configuration of your own is in the cluster too and takes part in what this lab "
                     f"shows ({len(mine)}): " + ", ".join(map(str, mine)))
            return
        if quiet:
            return
        if mine:
            self.say(f"  Not created by the course, so left in place ({len(mine)}): " + ", ".join(map(str, mine)))
            self.say(f"  Delete what you no longer need with kubectl --context {self.context} delete ...")
        else:
            self.say("  No Istio configuration of your own is left in the cluster.")
        installs = ops.foreign_installs(self.kube, baseline_iop_name())
        for name, refs in installs.items():
            self.say(f"  istioctl installation {name!r} was not made by `lab solve` and is left in place "
                     f"({', '.join(map(str, refs[:3]))}); remove it with istioctl uninstall -f <its file> "
                     f"--context {self.context} if you no longer need it")

    def conflicts(self) -> list[ops.Outcome]:
        return [o for o in self.outcomes if o.action == ops.CONFLICT]


# --- the three commands -------------------------------------------------------------------------------
def _header(env: LabEnv, verb: str, spec: LabSpec | None) -> None:
    what = f"lab {verb} {spec.id}: {spec.title}" if spec else f"lab {verb} --all"
    dry = "  [dry run: nothing is changed; the cluster is only read]" if env.dry else ""
    env.say(f"{what}  (context {env.context}){dry}")


def _finish(env: LabEnv, done: str) -> int:
    bad = env.conflicts()
    if bad:
        env.say(f"\n{len(bad)} object(s) already existed without the course label and were left unchanged:")
        for o in bad:
            env.say(o.line())
        return 1
    env.say(f"\n{done}")
    return 0


def _reset_steps_for(env: LabEnv, labs: set[str], specs: Sequence[LabSpec]) -> None:
    for spec in specs:
        if spec.id in labs and spec.reset:
            env.say(f"  lab {spec.id}'s reset steps:")
            for step in spec.reset:
                env.run_step(step, spec.id)


def setup(env: LabEnv, spec: LabSpec) -> int:
    require_paths(spec, "setup")
    specs = load_all()
    _header(env, "setup", spec)
    env.say("[1/4] Remove what earlier `lab setup` / `lab solve` runs created")
    start = {manifests.ref(m) for step in spec.setup if step.action == "apply"
             for m in manifests.load(step.path) if not m.is_istio_operator}
    found = env.remove(lambda lab: lab != BASELINE, "any lab label but baseline, except the objects of this lab's "
                       "start state (they are updated in place)", keep=start)
    _reset_steps_for(env, found, specs)
    env.say("[2/4] Course baseline (what `cluster up` installed)")
    outcomes = env.baseline()
    env.say(f"[3/4] Lab {spec.id} start state")
    if not spec.setup:
        env.say("  (none: this lab starts from the baseline)")
    for step in spec.setup:
        outcomes += env.run_step(step, spec.id)
    env.say("[4/4] Wait for rollouts")
    env.wait(outcomes)
    if not env.dry:
        env.report_leftovers(quiet=True)
    notebook = f" Open labs/{spec.notebook}." if spec.notebook else ""
    return _finish(env, f"Lab {spec.id} is at its start state.{notebook} Check your work with: python -m graders "
                        f"check lab{spec.id} --context {env.context}")


def _require_namespaces(env: LabEnv, spec: LabSpec) -> None:
    """The solution goes on top of the start state: its namespaces must be there (or come with it)."""
    objs = [m for step in spec.solve if step.action == "apply" for m in manifests.load(step.path)
            if not m.is_istio_operator]
    brought = {m.obj["metadata"]["name"] for m in objs if m.kind == "Namespace"}
    needed = sorted({r.namespace for r in map(manifests.ref, objs) if r.namespace} - brought)
    missing = [ns for ns in needed if env.kube.get(Ref("Namespace", "", ns, "v1")) is None]
    if missing:
        raise ClusterError(f"namespace {', '.join(missing)} does not exist; lab {spec.id}'s solution goes on top of "
                           f"its start state: run `python -m graders lab setup {spec.id}` first")


def solve(env: LabEnv, spec: LabSpec) -> int:
    require_paths(spec, "solve")
    if not env.dry:
        _require_namespaces(env, spec)
    _header(env, "solve", spec)
    outcomes: list[ops.Outcome] = []
    env.say(f"[1/2] Lab {spec.id} reference solution")
    for step in spec.solve:
        outcomes += env.run_step(step, spec.id)
    env.say("[2/2] Wait for rollouts")
    env.wait(outcomes)
    return _finish(env, f"Lab {spec.id}'s reference solution is applied. `python -m graders lab reset {spec.id}` "
                        "takes it away again.")


def reset(env: LabEnv, spec: LabSpec | None) -> int:
    """Reset one lab (``spec``) or, with None, every lab."""
    specs = load_all()
    chosen = [spec] if spec else specs
    for s in chosen:
        require_paths(s, "reset")
    _header(env, "reset", spec)
    if spec:
        env.say(f"[1/4] Delete lab {spec.id}'s objects")
        env.remove(lambda lab: lab == spec.id, f"{LAB_LABEL}={spec.id}")
    else:
        env.say("[1/4] Delete every lab's objects")
        env.remove(lambda lab: lab != BASELINE, "any lab label but baseline")
    env.say("[2/4] Reset steps")
    if not any(s.reset for s in chosen):
        env.say("  (none)")
    _reset_steps_for(env, {s.id for s in chosen}, chosen)
    env.say("[3/4] Course baseline (what `cluster up` installed)")
    outcomes = env.baseline()
    env.wait(outcomes)
    env.say("[4/4] What is left")
    env.report_leftovers()
    return _finish(env, "The course objects are back at the baseline." if not spec
                   else f"Lab {spec.id}'s objects are gone; the course objects are back at the baseline.")
