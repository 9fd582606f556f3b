"""What "created by the course" means, in one place: two labels set at apply time.

The YAML files the learner reads stay free of them; ``labelled`` adds them to a copy just before
the object is sent. Reset deletes an object only when ``owned`` says so.
"""

from __future__ import annotations

import copy
from typing import Any

from graders.versions import COURSE_LABEL, COURSE_NAME, LAB_LABEL

BASELINE = "baseline"
COURSE_SELECTOR = f"{COURSE_LABEL}={COURSE_NAME}"


def course_labels(lab: str) -> dict[str, str]:
    return {COURSE_LABEL: COURSE_NAME, LAB_LABEL: lab}


def labelled(obj: dict, lab: str) -> dict:
    out = copy.deepcopy(obj)
    md = out.setdefault("metadata", {})
    md["labels"] = {**(md.get("labels") or {}), **course_labels(lab)}
    return out


def owned(obj: dict) -> bool:
    """Both labels, as only the lab environment sets them: a learner's copy of a course file that
    carries the part-of label alone is still the learner's."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(COURSE_LABEL) == COURSE_NAME and bool(labels.get(LAB_LABEL))


def lab_of(obj: dict) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LAB_LABEL) if owned(obj) else None


def contains(have: Any, want: Any) -> bool:
    """Whether the live object already holds every field we would send (server defaults aside).

    Lists must match item by item: a merge patch replaces a list whole, so a shorter live list
    means a change.
    """
    if isinstance(want, dict):
        return isinstance(have, dict) and all(contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(contains, have, want))
    if isinstance(want, (int, float)) and not isinstance(want, bool) and isinstance(have, str):
        return str(want) == have
    return have == want
