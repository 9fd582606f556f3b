"""A lab's grading matrix: every solution and wrong attempt on disk, with the verdict it must get.

``labs/labNN/matrix.yaml`` lists each folder under ``solutions/`` (full marks) and ``wrong/`` (the
exact checks that fail, and the exact checks blocked by them). The test suite grades every row with
``python -m graders check N labs/labNN/<folder> -o json`` on the simulated lab cluster
(``tests/test_grading_matrix.py``), and the instructor guide prints the same file with
``markdown_table`` — so the table a teacher reads is the one the tests hold the graders to.

File format::

    lab: lab01
    rows:
    - folder: solutions/reference
      what: The Gateway and VirtualService the notebook builds.
    - folder: wrong/helm-selector
      what: The selector of a Helm-installed gateway (istio=ingress).
      failed: [gateway-selects-pods]            # status failed: the mistake, each charged once
      blocked: [request-productpage]            # status blocked: cannot pass until the mistake is fixed
      not_evaluated: []                         # status not-evaluated in simulated mode (optional)
      pending: GW-PORT-RESERVED                 # optional: holds once the engine reports this code
    - folder: wrong/cert-wrong-host
      what: A certificate for another host name.
      live_failed: [certificate-host]           # fails only on a live cluster: a live-only check, so it is
                                                # not-evaluated in simulated mode (its evidence, the served
                                                # certificate, exists only there); a wrong attempt needs
                                                # failed or live_failed
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from graders.checks import Lab
from graders.labs import get, lab_dir

KINDS = ("solutions", "wrong")


@dataclass(frozen=True)
class Row:
    folder: str  # "solutions/reference", "wrong/helm-selector"
    what: str
    failed: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    not_evaluated: tuple[str, ...] = ()
    pending: str = ""  # a finding code another change adds; until then the row is expected to fail
    live_failed: tuple[str, ...] = ()  # live-only checks this attempt fails on a live cluster (not-evaluated here)

    @property
    def correct(self) -> bool:
        return self.folder.startswith("solutions/")

    def expected_status(self, check_id: str) -> str:
        for status, ids in (("failed", self.failed), ("blocked", self.blocked),
                            ("not-evaluated", self.not_evaluated + self.live_failed)):
            if check_id in ids:
                return status
        return "passed"

    def expected_score(self, lab: Lab) -> tuple[int, int]:
        """(score, max_score) this row must get, from the lab's check points."""
        counted = [c for c in lab.checks if c.id not in self.not_evaluated + self.live_failed]
        return (sum(c.points for c in counted if self.expected_status(c.id) == "passed"),
                sum(c.points for c in counted))


def matrix_path(lab: Lab) -> Path:
    return lab_dir(lab) / "matrix.yaml"


def load_matrix(name: str | Lab) -> list[Row]:
    """The rows of a lab's matrix, checked against the lab: known check ids, solutions without
    failures, wrong attempts with at least one, every folder on disk listed exactly once."""
    lab = get(name)
    path = matrix_path(lab)
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))  # the course's own file
    if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("lab") != lab.id:
        raise ValueError(f"{path}: one document with lab: {lab.id} expected")
    known = {c.id for c in lab.checks}
    rows = []
    for raw in docs[0].get("rows") or []:
        row = Row(str(raw["folder"]), " ".join(str(raw.get("what", "")).split()),
                  *(tuple(raw.get(k) or ()) for k in ("failed", "blocked", "not_evaluated")),
                  pending=str(raw.get("pending") or ""), live_failed=tuple(raw.get("live_failed") or ()))
        unknown = {*row.failed, *row.blocked, *row.not_evaluated, *row.live_failed} - known
        if unknown:
            raise ValueError(f"{path}: {row.folder} names unknown checks {sorted(unknown)}")
        if [c.id for c in lab.checks if c.id in row.live_failed and not c.live_only]:
            raise ValueError(f"{path}: {row.folder}: live_failed lists only live-only checks")
        if row.correct == bool(row.failed or row.live_failed) or row.folder.split("/")[0] not in KINDS:
            raise ValueError(f"{path}: {row.folder}: a solution fails nothing, a wrong attempt fails something")
        rows.append(row)
    listed = [r.folder for r in rows]
    on_disk = sorted(f"{kind}/{p.name}" for kind in KINDS for p in (lab_dir(lab) / kind).iterdir() if p.is_dir())
    if sorted(listed) != on_disk:
        raise ValueError(f"{path}: rows {sorted(set(listed) ^ set(on_disk))} do not match the folders on disk "
                         "(each folder exactly once)")
    return rows


def _ids(ids: tuple[str, ...]) -> str:
    return ", ".join(f"`{i}`" for i in ids) or "—"


def markdown_table(name: str | Lab) -> str:
    """The matrix as a Markdown table (attempt, what it is, score, failed, blocked) for the instructor guide."""
    lab = get(name)
    lines = [f"**{lab.id}: {lab.title}**", "",
             "| attempt | what it is | score | fails | blocked by it |", "|---|---|---|---|---|"]
    for row in load_matrix(lab):
        score, top = row.expected_score(lab)
        what = row.what.replace("|", "/").replace("*", "\\*").replace("_", "\\_")  # plain text, not Markdown
        live = f"{_ids(row.live_failed)} (live only)" if row.live_failed else ""
        fails = ", ".join(x for x in (_ids(row.failed) if row.failed else "", live) if x) or "—"
        lines.append(f"| `{row.folder}` | {what} | {score}/{top} | {fails} | "
                     f"{_ids(row.blocked)} |")
    return "\n".join(lines)
