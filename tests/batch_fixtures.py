"""Builders for batch-grading tests and the benchmark: a generated class of submissions made from a
lab's real solution and wrong-attempt YAML, plus hostile ones (tampered, hanging, malformed, unsafe
ids, zip traversal, zip bomb), each with the row the gradebook must show for it.

The expected score of a real submission comes from an independent path: ``graders.labs.run`` (what
``python -m graders check`` prints) for the course's labs, or the fixture notebook's own cells run
in-process for the fixture lab -- never from the batch grader under test.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURE_NOTEBOOK = REPO / "tests" / "data" / "batch" / "lab99-fixture.ipynb"
RESULT_MIME = "application/vnd.istio-gateway-course.lab-result+json"
# The fixture stands in for a course lab and grades against lab01's real YAML.
YAML_LAB = REPO / "labs" / "lab01"


def lab_notebook() -> tuple[Path, str]:
    """The real lab01 notebook once it exists and follows the contract, else the fixture notebook."""
    real = sorted((REPO / "labs").glob("lab01-*.ipynb"))
    if real and os.environ.get("BATCH_TESTS_LAB", "auto") != "fixture":
        nb = nbformat.read(real[0], as_version=4)
        if any("parameters" in (c.metadata.get("tags") or []) for c in nb.cells):
            return real[0], "lab01"
    return FIXTURE_NOTEBOOK, "lab99"


def solution_dir() -> Path:
    return YAML_LAB / "solutions" / "reference"


def wrong_attempts() -> list[Path]:
    return sorted(p for p in (YAML_LAB / "wrong").iterdir() if p.is_dir())


# --- oracle --------------------------------------------------------------------------------------
def oracle(lab_id: str, notebook: Path, *, manifests: Path | None = None, snapshot: Path | None = None) -> dict:
    """The lab result for this target, computed without nbclient or the batch grader."""
    if lab_id != "lab99":
        from graders.labs import run

        return run(lab_id, paths=[str(manifests)] if manifests else None,
                   snapshot=str(snapshot) if snapshot else None).to_json()
    ns: dict[str, Any] = {"CONTEXT": None, "KUBECONFIG": None, "SNAPSHOT": str(snapshot) if snapshot else None,
                          "MANIFESTS": [str(manifests)] if manifests else None, "print": lambda *a, **k: None,
                          "display": lambda *a, **k: None}
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" not in (cell.metadata.get("tags") or []):
            source = cell.source.replace("from IPython.display import display\n", "")
            exec(compile(source, str(notebook), "exec"), ns)
    return ns["result"]


# --- snapshot files ------------------------------------------------------------------------------
def make_snapshot(manifests: Path) -> str:
    """What `kubectl get ... -A -o yaml` on a healthy course cluster with ``manifests`` applied
    would give: the course's cluster files (IstioOperator rendered as istioctl would), ready
    Deployments, timestamps, and the x-graders block saying Istio is installed."""
    from graders.sources.istio_install import render
    from graders.yamlio import load_paths

    cluster = REPO / "labs" / "cluster"
    items: list[dict] = []
    for raw in load_paths([str(cluster / "namespaces.yaml"), str(cluster / "istio-operator.yaml"),
                           str(cluster / "bookinfo.yaml"), str(manifests)]):
        obj = raw.obj
        if not isinstance(obj, dict):
            continue
        if obj.get("kind") == "IstioOperator":
            items.extend(render(obj))
            continue
        items.append(obj)
    for i, item in enumerate(items):
        item.setdefault("metadata", {})["creationTimestamp"] = f"2026-05-01T10:{i // 60:02d}:{i % 60:02d}Z"
        if item.get("kind") == "Deployment":
            n = item.get("spec", {}).get("replicas", 1)
            item["status"] = {"replicas": n, "readyReplicas": n}
    doc = {"apiVersion": "v1", "kind": "List", "items": items,
           "x-graders": {"version": 1, "context": "kind-istio-lab", "takenAt": "2026-05-01T11:00:00Z",
                         "istioInstalled": True, "probes": []}}
    return yaml.safe_dump(doc, sort_keys=False)


# --- notebooks -----------------------------------------------------------------------------------
def tampered_notebook(notebook: Path, lab_id: str) -> str:
    """The lab notebook with a pasted full-marks result panel in its outputs."""
    nb = nbformat.read(notebook, as_version=4)
    checks = [{"id": f"c{i}", "title": "x", "points": 5, "passed": True, "message": "PASS", "hint": None}
              for i in range(3)]
    fake = {"lab": lab_id, "mode": "simulated", "score": 15, "max_score": 15, "checks": checks}
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    last.outputs = [nbformat.v4.new_output("display_data", data={RESULT_MIME: fake, "text/plain": "PASS 15/15"})]
    last.execution_count = 9
    return nbformat.writes(nb)


def notebook_with_cell(notebook: Path, source: str) -> str:
    """The lab notebook with one extra code cell (learner code) right after the parameters cell."""
    nb = nbformat.read(notebook, as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in (c.metadata.get("tags") or []))
    nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(source))
    return nbformat.writes(nb)


# --- zips ----------------------------------------------------------------------------------------
def zip_of(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def zip_folder(folder: Path, prefix: str) -> bytes:
    return zip_of({f"{prefix}/{p.relative_to(folder)}": p.read_bytes()
                   for p in sorted(folder.rglob("*")) if p.is_file()})


# --- the class -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    status: str
    score: float | None = None
    max_score: float | None = None
    reason: str = ""  # substring the row's reason must contain
    checks: tuple[tuple[str, bool], ...] = ()  # (check id, passed) in order, for graded rows


def _expect(result: dict) -> Expect:
    return Expect("graded", result["score"], result["max_score"], "",
                  tuple((c["id"], c["passed"]) for c in result["checks"]))


def _manifests(folder: Path, source: Path) -> Path:
    dest = folder / "manifests"
    shutil.copytree(source, dest)
    return dest


UNSAFE_CONTROL = "bad\x07id"
UNSAFE_LONG = "x" * 70
ROSTER_ONLY_UNSAFE = "../x"


def build_class(root: Path, notebook: Path, lab_id: str, size: int = 40) -> tuple[dict[str, Expect], Path]:
    """Write ``size`` submissions under ``root``; returns {learner id: expected row} and a roster CSV."""
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, Expect] = {}
    ok_manifests = oracle(lab_id, notebook, manifests=solution_dir())
    snapshot_text = make_snapshot(solution_dir())

    def folder(name: str) -> Path:
        p = root / name
        p.mkdir()
        return p

    # Each known wrong attempt, as manifests.
    for attempt in wrong_attempts():
        learner = f"wrong-{attempt.name}"
        m = _manifests(folder(learner), attempt)
        expect[learner] = _expect(oracle(lab_id, notebook, manifests=m))
    # A wrong attempt as a snapshot too: the snapshot wins over manifests when both are present.
    f = folder("snap-wrong")
    attempt = wrong_attempts()[0]
    (f / "snapshot.yaml").write_text(make_snapshot(attempt))
    _manifests(f, solution_dir())
    expect["snap-wrong"] = _expect(oracle(lab_id, notebook, snapshot=f / "snapshot.yaml"))
    # Tampered: wrong YAML plus the notebook with a pasted PASS panel -> graded on the YAML only.
    f = folder("tampered")
    m = _manifests(f, wrong_attempts()[-1])
    (f / notebook.name).write_text(tampered_notebook(notebook, lab_id))
    expect["tampered"] = _expect(oracle(lab_id, notebook, manifests=m))
    # A notebook alone is never trusted: nothing to grade.
    f = folder("notebook-only")
    (f / notebook.name).write_text(tampered_notebook(notebook, lab_id))
    expect["notebook-only"] = Expect("error", reason="never trusted")
    # Learner code in a submitted notebook must not run by default.
    f = folder("pwn-attempt")
    _manifests(f, solution_dir())
    (f / notebook.name).write_text(notebook_with_cell(notebook, "open('PWNED', 'w').write('ran')"))
    expect["pwn-attempt"] = _expect(ok_manifests)
    # Malformed notebook next to good YAML: the notebook is ignored by default.
    f = folder("malformed-notebook")
    _manifests(f, solution_dir())
    (f / notebook.name).write_text('{"cells": [ this is not json')
    expect["malformed-notebook"] = _expect(ok_manifests)
    # Malformed snapshot.
    f = folder("malformed-snapshot")
    (f / "snapshot.yaml").write_text("apiVersion: v1\nkind: List\nitems: [\n  - {kind: Pod\n")
    expect["malformed-snapshot"] = Expect("error", reason="YAML syntax error")
    # Missing snapshot (and no manifests).
    f = folder("missing-snapshot")
    (f / "notes.txt").write_text("I forgot to export my snapshot\n")
    expect["missing-snapshot"] = Expect("error",
                                        reason="no snapshot.yaml and no YAML files in manifests/, work/ or labs/")
    # Unsafe ids.
    f = folder(UNSAFE_CONTROL)
    _manifests(f, solution_dir())
    expect[UNSAFE_CONTROL.encode("unicode_escape").decode()] = Expect("error", reason="control")
    f = folder(UNSAFE_LONG)
    _manifests(f, solution_dir())
    expect[UNSAFE_LONG] = Expect("error", reason="characters long")
    expect[ROSTER_ONLY_UNSAFE] = Expect("error", reason="path separator")
    # Zips: a good LMS export (wrapped in one folder), path traversal, symlink, bomb.
    good = root.parent / "zip-src"
    shutil.copytree(solution_dir(), good / "manifests")
    (root / "zipped.zip").write_bytes(zip_folder(good, "zipped"))
    shutil.rmtree(good)
    expect["zipped"] = _expect(ok_manifests)
    (root / "zip-traversal.zip").write_bytes(zip_of({"manifests/a.yaml": b"kind: List\n",
                                                     "../../escaped.txt": b"gotcha"}))
    expect["zip-traversal"] = Expect("error", reason="points outside")
    (root / "zip-symlink.zip").write_bytes(zip_of({"manifests/a.yaml": b"kind: List\n"}, symlink="snapshot.yaml"))
    expect["zip-symlink"] = Expect("error", reason="symbolic link")
    (root / "zip-bomb.zip").write_bytes(zip_of({"snapshot.yaml": b"\0" * (40 * 2**20)}))
    expect["zip-bomb"] = Expect("error", reason="zip bomb")
    # Roster learner who handed in nothing.
    expect["absent"] = Expect("error", reason="no submission found")
    # Fill up with correct submissions, alternating snapshot and manifests.
    n = 0
    while len(expect) < size:
        n += 1
        learner = f"learner{n:02d}"
        f = folder(learner)
        if n % 2:
            (f / "snapshot.yaml").write_text(snapshot_text)
            expect[learner] = _expect(oracle(lab_id, notebook, snapshot=f / "snapshot.yaml"))
        else:
            _manifests(f, solution_dir())
            expect[learner] = _expect(ok_manifests)
    roster = root.parent / "roster.csv"
    rows = ["id,name,email,sis_user_id,section"]
    rows += [f"{lid},Learner {lid},{lid}@example.edu,S-{lid},A" for lid in sorted(expect)
             if lid not in (UNSAFE_CONTROL.encode("unicode_escape").decode(), UNSAFE_LONG)]
    roster.write_text("\n".join(rows) + "\n")
    return expect, roster


def read_gradebook_json(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "gradebook.json").read_text())
    return {r["learner"]: r for r in doc["learners"]}
