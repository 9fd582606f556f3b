"""Sphinx extension for the course site (loaded through _config.yml's ``local_extensions``).

Two things Jupyter Book 1 cannot be told in its configuration:

- Figure numbers per chapter. The chapters' toctree is not numbered (each title carries its own
  number, "3. Ports ..."), and without section numbers Sphinx counts figures across the whole
  book, so chapter 5's only diagram was "Fig. 7". Chapter pages named ``chapters/NN-*`` get
  "Fig. N.1, N.2, ..."; other pages count their own figures from 1.
- Lab pages without answers. The lab notebooks are rendered, never executed, on the site; their
  ``quiz(..., answer=...)`` cells are for a running kernel and print the answer index in the code.
  The questions (with folded answers) are in the notebooks' Markdown, so the site drops those cells.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes

_CHAPTER = re.compile(r"^chapters/(\d+)-")
_QUIZ_CALL = re.compile(r"^\s*quiz\(")


def chapter_number(docname: str) -> int | None:
    """The chapter number of a numbered chapter page ("chapters/05-adding-gateways" -> 5), else None."""
    match = _CHAPTER.match(docname)
    return int(match.group(1)) if match else None


def per_chapter(fignumbers: dict[str, dict[str, dict[str, tuple[int, ...]]]]) -> dict[str, Any]:
    """Renumber every figure type of every page from 1 in page order, prefixed by the chapter number."""
    out: dict[str, dict[str, dict[str, tuple[int, ...]]]] = {}
    for docname, by_type in fignumbers.items():
        prefix = chapter_number(docname)
        out[docname] = {
            figtype: {ident: ((prefix, n) if prefix is not None else (n,))
                      for n, ident in enumerate(ids, 1)}
            for figtype, ids in by_type.items()}
    return out


def _renumber(app: Any, env: Any) -> list[str]:
    before = env.toc_fignumbers
    env.toc_fignumbers = per_chapter(before)
    return [doc for doc in env.toc_fignumbers if env.toc_fignumbers[doc] != before.get(doc)]


def _is_quiz_cell(cell: nodes.Element) -> bool:
    for source in cell.findall(nodes.literal_block):
        if isinstance(source.parent, nodes.Element) and "cell_input" in source.parent.get("classes", []):
            return bool(_QUIZ_CALL.match(source.astext()))
    return False


def _drop_quiz_cells(app: Any, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not docname.startswith("labs/"):
        return
    for cell in list(doctree.findall(nodes.container)):
        if "cell" in cell.get("classes", []) and _is_quiz_cell(cell):
            cell.parent.remove(cell)


def setup(app: Any) -> dict[str, Any]:
    # After Sphinx's own TocTreeCollector (priority 500) has assigned the book-wide numbers.
    app.connect("env-get-updated", _renumber, priority=900)
    app.connect("doctree-read", _drop_quiz_cells)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
