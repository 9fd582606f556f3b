"""``labs/labNN/lab.yaml``: what `lab setup`, `lab solve` and `lab reset` do for one lab.

Format (every path is relative to the lab's folder and must stay inside labs/)::

    id: "04"                                  # two digits, same as the folder
    title: A second ingress gateway
    notebook: lab04-second-gateway.ipynb      # in labs/
    summary: one sentence for `lab list`
    setup:                                    # steps, run in order, after the cluster is back at baseline
      - apply: start                          # a file or folder: every object, with the course labels
    solve:
      - istioctl-install: solutions/reference # every IstioOperator file there: istioctl install -f FILE -y
        set: []                               # optional: --set PATH=VALUE for istioctl
      - apply: solutions/reference            # (IstioOperator documents are skipped by apply)
    reset:                                    # extra steps after reset has deleted the lab's objects
      - istioctl-install: ../cluster/istio-operator.yaml

Steps: ``apply: PATH`` creates/updates objects (labelled with the course and lab labels);
``istioctl-install: PATH`` installs IstioOperators with istioctl (what it creates for an operator
whose metadata.name is not the course's own is labelled for the lab, so reset removes it);
``delete: PATH`` removes the course-labelled objects named in PATH (a start object the solution
replaces under another name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graders.errors import InputError
from graders.labenv.runner import REPO_ROOT, relpath
from graders.yamlio import load_documents

LABS_DIR = REPO_ROOT / "labs"
STEP_KINDS = ("apply", "istioctl-install", "delete")
PHASES = ("setup", "solve", "reset")
_SET = re.compile(r"^[A-Za-z0-9_.\[\]\-]+=.+$")


@dataclass(frozen=True)
class Step:
    action: str  # apply | istioctl-install | delete
    path: Path
    set: tuple[str, ...] = ()
    where: str = ""  # lab.yaml position, for messages

    def describe(self) -> str:
        extra = "".join(f" --set {s}" for s in self.set)
        return f"{self.action} {relpath(self.path)}{extra}"


@dataclass(frozen=True)
class LabSpec:
    id: str
    title: str
    folder: Path
    notebook: str = ""
    summary: str = ""
    setup: tuple[Step, ...] = ()
    solve: tuple[Step, ...] = ()
    reset: tuple[Step, ...] = ()
    file: Path = field(default=Path())

    def steps(self, phase: str) -> tuple[Step, ...]:
        return getattr(self, phase)


def lab_id(text: str) -> str:
    """"3", "03", "lab03", "lab03-conflicts" -> "03"."""
    m = re.fullmatch(r"(?:lab)?0*(\d{1,2})(?:-[a-z0-9-]+)?", text.strip().lower())
    if not m or not 1 <= int(m[1]) <= 99:
        raise InputError(f"{text!r} is not a lab; give its number, e.g. 3, 03 or lab03 (see `python -m graders "
                         "lab list`)")
    return f"{int(m[1]):02d}"


def load(lab: str, labs_dir: Path = LABS_DIR) -> LabSpec:
    ident = lab_id(lab)
    file = labs_dir / f"lab{ident}" / "lab.yaml"
    if not file.is_file():
        known = ", ".join(s.id for s in load_all(labs_dir)) or "none"
        raise InputError(f"lab {ident} has no {relpath(file)}; labs with one: {known}")
    docs = load_documents(file)
    data = docs[0].obj if len(docs) == 1 else None
    if not isinstance(data, Mapping):
        raise InputError(f"{relpath(file)}: must be one YAML mapping (id, title, setup, solve, reset)")
    if str(data.get("id", "")) != ident:
        raise InputError(f"{relpath(file)}: id is {data.get('id')!r} but the folder is lab{ident}; make them agree "
                         f'(id: "{ident}", quoted)')
    folder = file.parent
    phases = {p: tuple(_steps(data.get(p), f"{relpath(file)}: {p}", folder, labs_dir)) for p in PHASES}
    return LabSpec(id=ident, title=str(data.get("title") or f"Lab {ident}"), folder=folder,
                   notebook=str(data.get("notebook") or ""), summary=str(data.get("summary") or ""), file=file,
                   **phases)


def load_all(labs_dir: Path = LABS_DIR) -> list[LabSpec]:
    return [load(p.parent.name, labs_dir) for p in sorted(labs_dir.glob("lab[0-9][0-9]/lab.yaml"))]


def _steps(raw: Any, where: str, folder: Path, labs_dir: Path) -> list[Step]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(f"{where}: must be a list of steps such as `- apply: start`")
    out = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(f"{at}: a step is a mapping such as `apply: start`")
        actions = [k for k in item if k in STEP_KINDS]
        unknown = [k for k in item if k not in (*STEP_KINDS, "set")]
        if len(actions) != 1 or unknown:
            raise InputError(f"{at}: a step needs exactly one of {', '.join(STEP_KINDS)} (and `set` only with "
                             f"istioctl-install); got {', '.join(map(str, item)) or 'nothing'}")
        action = actions[0]
        path = (folder / str(item[action])).resolve()
        if not path.is_relative_to(labs_dir.resolve()):
            raise InputError(f"{at}: {item[action]} points outside labs/; lab steps only use the course's files")
        sets = item.get("set") or []
        if sets and action != "istioctl-install":
            raise InputError(f"{at}: `set` only applies to istioctl-install")
        if not isinstance(sets, list) or not all(isinstance(s, str) and _SET.match(s) for s in sets):
            raise InputError(f"{at}: set must be a list of PATH=VALUE strings, e.g. "
                             "meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY")
        out.append(Step(action, path, tuple(sets), at))
    return out


def require_paths(spec: LabSpec, phase: str) -> None:
    """Fail before touching the cluster when a step's files are missing."""
    for step in spec.steps(phase):
        if not step.path.exists():
            raise InputError(f"{step.where}: {relpath(step.path)} does not exist (lab {spec.id} {phase}); the lab's "
                             "files are incomplete")
