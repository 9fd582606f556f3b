"""The course's labs and the one function that grades any of them.

Each lab lives in ``graders/labs/labNN.py`` and exposes ``LAB`` (a ``graders.checks.Lab``); see
``graders.checks`` for how to write one. ``run`` loads the state the way the learner asked (live
cluster, snapshot, or the simulated lab cluster with their YAML laid over it) and evaluates the lab.

In simulated mode the lab's start state (``labs/labNN/start/``, what ``lab setup`` applies) is laid
over the baseline before the learner's files, so a learner's file that edits a start object replaces
it exactly as ``kubectl apply`` would. With no paths and no cluster the learner's working folder
``labs/labNN/work/`` is graded.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from pathlib import Path

from graders.checks import Context, Lab, LabResult, Target
from graders.errors import InputError
from graders.sources.simulated import REPO_ROOT
from graders.yamlio import YAML_SUFFIXES

LAB_IDS = ("lab01", "lab02", "lab03", "lab04", "lab05", "lab06", "lab07")
LABS_DIR = REPO_ROOT / "labs"


def normalize_id(name: str) -> str:
    """"lab01", "01", "1", "Lab1" -> "lab01"."""
    m = re.fullmatch(r"(?:lab)?0*(\d{1,2})", name.strip().lower())
    if not m:
        raise InputError(f"{name!r} is not a lab; use a lab number such as 1, 01 or lab01 (labs: {', '.join(LAB_IDS)})")
    return f"lab{int(m.group(1)):02d}"


def available() -> list[str]:
    return [lab_id for lab_id in LAB_IDS if _module(lab_id) is not None]


def get(name: str | Lab) -> Lab:
    if isinstance(name, Lab):
        return name
    lab_id = normalize_id(name)
    module = _module(lab_id)
    if module is None:
        raise InputError(f"{lab_id} has no checks yet; labs with checks: {', '.join(available()) or 'none'}")
    return module.LAB


def _module(lab_id: str):
    try:
        return importlib.import_module(f"graders.labs.{lab_id}")
    except ModuleNotFoundError as exc:
        if exc.name != f"graders.labs.{lab_id}":
            raise
        return None


def lab_dir(lab: Lab) -> Path:
    return LABS_DIR / lab.id


def _shown(path: Path) -> str:
    """A path as people should see it: relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _yaml_files_in(folder: Path) -> bool:
    return folder.is_dir() and any(f.suffix in YAML_SUFFIXES for f in folder.rglob("*") if f.is_file())


def resolve_target(lab: Lab, paths: Sequence[str] | None, snapshot: str | None, context: str | None,
                   kubeconfig: str | None, baseline: bool) -> tuple[list[str], list[str]]:
    """(paths to load, notes for people) for the target the learner asked for."""
    notes: list[str] = []
    live = context is not None or kubeconfig is not None
    work = lab_dir(lab) / "work"
    rel = _shown(work)
    empty_work = not _yaml_files_in(work)
    # Naming the lab's own work folder while it is still empty (`check 1 labs/lab01/work/` on a fresh clone)
    # is naming nothing: the start state is graded, as in the notebook, instead of failing as an empty PATH.
    named = [p for p in paths or [] if not (empty_work and Path(p).resolve() == work.resolve())]
    chosen = list(named)
    if not chosen and not live and not snapshot:
        if not empty_work:
            chosen = [str(work)]
            notes.append(f"Grading your working folder {rel}/ on the simulated lab cluster "
                         "(pass PATH, --snapshot or --context to grade something else).")
        else:
            notes.append(f"Your working folder {rel}/ has no YAML yet: grading the simulated lab cluster as the "
                         "lab starts.")
    start = lab_dir(lab) / "start"
    if named:
        notes.append(f"Your files: {', '.join(map(str, named))}.")
    if baseline and not live and not snapshot and _yaml_files_in(start):
        chosen = [str(start), *chosen]
        notes.append(f"Laid over the lab's start state ({_shown(start)}/), as `lab setup` applies it.")
    if not live and not snapshot and baseline:
        notes.append("Simulated lab cluster: requests are traced through the configuration, not sent.")
    if not live and not snapshot and not baseline:
        notes.append("Only your files are graded (--no-baseline): with no gateway pods or Bookinfo in them, checks "
                     "that need those cannot pass; leave out --no-baseline to use the simulated lab cluster.")
    return chosen, notes


def run(lab: str | Lab, *, paths: Sequence[str] | None = None, snapshot: str | None = None,
        context: str | None = None, kubeconfig: str | None = None, baseline: bool = True,
        only: Sequence[str] | None = None) -> LabResult:
    """Grade ``lab`` against the chosen target. Raises InputError/ClusterError for bad input."""
    from graders.sources import load_state

    the_lab = get(lab)
    chosen, notes = resolve_target(the_lab, paths, snapshot, context, kubeconfig, baseline)
    if not baseline and not chosen:
        raise InputError("--no-baseline needs at least one PATH of YAML files to grade")
    state = load_state(chosen, snapshot=snapshot, context=context, kubeconfig=kubeconfig, baseline=baseline)
    ctx = Context(state, target=Target(context, kubeconfig))
    for cid in only or ():
        try:
            the_lab.get(cid)
        except KeyError as err:
            raise InputError(err.args[0]) from None
    return the_lab.evaluate(ctx, only=only, notes=notes)
