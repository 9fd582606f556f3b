"""The book's sources: structure every chapter promises, examples that exist and are current, a
configuration that keeps the site offline, and page guards that really fail when a claim drifts.

Checks on the built HTML skip when the book has not been built (`make test` builds it first).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from graders import versions
from graders.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
EXAMPLES = CHAPTERS / "examples"
SITE = ROOT / "_build" / "html"
NUMBERED = sorted(CHAPTERS.glob("0[0-9]-*.md"))
needs_build = pytest.mark.skipif(not (SITE / "index.html").exists(),
                                 reason="the book is not built (_build/html missing): run `make test`")


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part["chapters"]]
    return files


def source_of(entry: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (ROOT / (entry + suffix)).exists():
            return ROOT / (entry + suffix)
    raise AssertionError(f"_toc.yml lists {entry}, which has no .md or .ipynb file")


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def test_toc_lists_existing_pages_and_every_chapter():
    listed = {source_of(entry) for entry in toc_files()}
    pages = {p for p in CHAPTERS.glob("*.md")}
    assert pages <= listed, f"chapters not in _toc.yml (they would not be built): {sorted(pages - listed)}"
    assert len(NUMBERED) == 9, "chapters 0-8"


@pytest.mark.parametrize("chapter", NUMBERED, ids=lambda p: p.stem)
def test_each_chapter_has_objectives_a_self_check_a_diagram_and_an_example(chapter):
    text = chapter.read_text(encoding="utf-8")
    assert "Learning objectives" in text
    assert "Self-check" in text
    assert "{code-cell}" in text, "every chapter runs at least one example when the book is built"
    assert "{graphviz}" in text, "every chapter draws at least one diagram at build time"
    if chapter.stem != "07-gateway-api":  # no lab practises the Gateway API
        assert "../labs/lab0" in text, "each chapter links the lab that practises it"


def test_every_example_file_is_used_and_every_used_example_exists():
    used = set()
    for page in CHAPTERS.glob("*.md"):
        used |= set(re.findall(r"examples/([\w.-]+\.yaml)", page.read_text(encoding="utf-8")))
    present = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert used - present == set(), f"pages use missing examples: {used - present}"
    assert present - used == set(), f"examples no page shows: {present - used}"


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid_objects_on_current_api_versions(example):
    docs = [d for d in yaml.safe_load_all(example.read_text(encoding="utf-8")) if d is not None]
    assert docs
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys()
        assert doc["metadata"].get("name")
        if doc["apiVersion"].startswith("networking.istio.io/"):
            assert doc["apiVersion"] == "networking.istio.io/v1", "v1 since Istio 1.22; v1alpha3/v1beta1 are old"


def test_site_configuration_stays_offline_and_current():
    cfg = config()
    extensions = cfg["parse"]["myst_enable_extensions"]
    assert "dollarmath" not in extensions and "amsmath" not in extensions, "MathJax would load from a CDN"
    sphinx = cfg["sphinx"]["config"]
    assert sphinx["nb_ipywidgets_js"] == {}, "myst-nb's default widget JS comes from CDNs"
    vendor_script = (ROOT / "tools" / "vendor.sh").read_text(encoding="utf-8")
    for js in sphinx["html_js_files"]:
        name = Path(js).name
        assert (ROOT / "_static" / js).exists() or name in vendor_script, f"{js} is neither in _static nor vendored"
    assert cfg["only_build_toc_files"] is True
    assert "labs/*" in cfg["execute"]["exclude_patterns"]
    assert re.fullmatch(r"20\d\d", str(cfg["copyright"]))
    assert "sphinx.ext.graphviz" in cfg["sphinx"]["extra_extensions"]
    assert sphinx["graphviz_output_format"] == "svg"


def test_lab_notebooks_in_the_toc_carry_language_info():
    """Never-executed notebooks without it make Pygments warn, and -W turns that into a failed build."""
    labs = [source_of(e) for e in toc_files() if e.startswith("labs/")]
    for lab in labs:
        meta = json.loads(lab.read_text(encoding="utf-8"))["metadata"]
        assert meta.get("language_info", {}).get("pygments_lexer") == "ipython3", lab.name


@pytest.fixture
def bookcell():
    sys.path.insert(0, str(CHAPTERS))
    try:
        yield importlib.import_module("bookcell")
    finally:
        sys.path.remove(str(CHAPTERS))


def test_page_guard_passes_when_the_tool_agrees(bookcell):
    page = bookcell.Page()
    analyzed = bookcell.render("python -m graders analyze chapters/examples/ports-7070.yaml", expect=1,
                               codes=("GW-PORT-NOT-ON-SERVICE",), page=page)
    traced = bookcell.render("python -m graders trace chapters/examples/ports-80.yaml --port 80 --path /productpage",
                             outcome="ok", page=page)
    assert analyzed.problems == [] and traced.problems == []
    assert analyzed.html.startswith('<div class="course-run"><pre class="course-cmd">$ python -m graders analyze '
                                    "chapters/examples/ports-7070.yaml</pre>")
    assert "exit code 1" in analyzed.html, "a non-zero exit code is part of what the reader must see"
    assert "exit code 0" not in traced.html, "exit code 0 is noise on every example"


def test_outputs_are_laid_out_for_a_browser(bookcell):
    """No terminal hard-wraps, the banner once per page, and a trace folded down to its deciding step."""
    page = bookcell.Page()
    first = bookcell.render("python -m graders analyze", page=page)
    assert "Mode: simulated" in first.html
    first = bookcell.render("python -m graders analyze chapters/examples/ports-7070.yaml", page=page)
    assert "Mode: simulated" not in first.html, "same mode, other files: the banner is not repeated"
    message = first.data["findings"][0]["message"]
    assert len(message) > 100 and bookcell.html.escape(message, quote=False) in first.html, \
        "the finding's sentence is shown whole, for the browser to wrap"
    assert "\n  " in first.text, "(the same command's text output is hard-wrapped for a terminal)"
    second = bookcell.render("python -m graders trace chapters/examples/ports-7070.yaml --port 80 --path /productpage",
                             page=page)
    assert "Mode: simulated" not in second.html, "the banner is repeated on the same page"
    steps = second.data["steps"]
    assert len(steps) > 1
    shown, folded = second.html.split("</details>")[-1], second.html.split("</details>")[0]
    assert "<details>" in second.html and f"[{steps[0]['step']}]" in folded
    assert f"[{steps[-1]['step']}]" in shown, "the step that stopped the request is not hidden"
    ok = bookcell.render("python -m graders trace chapters/examples/ports-80.yaml --port 80 --path /productpage",
                         page=page)
    visible = [part.split("</details>")[-1] for part in ok.html.split("<details>")]
    assert ok.data["outcome"] == "ok" and any("[route]" in part for part in visible), \
        "a request that reached the application shows the route that matched it"
    focused = bookcell.render("python -m graders trace chapters/examples/ports-80.yaml --port 80 --path /productpage",
                              focus="listener", page=page)
    visible = [part.split("</details>")[-1] for part in focused.html.split("<details>")]
    assert any("[listener]" in part for part in visible) and focused.html.count("<details>") == 2


@pytest.mark.parametrize("kwargs", [{"expect": 0}, {"codes": ("GW-CONFLICT",)}, {"outcome": "ok"},
                                    {"outcome": "connection-refused", "focus": "no-such-step"}],
                         ids=["exit-code", "finding", "outcome", "focus"])
def test_page_guard_fails_the_build_when_a_claim_drifts(bookcell, kwargs):
    with pytest.raises(AssertionError, match="no longer holds"):
        bookcell.run("python -m graders trace chapters/examples/ports-7070.yaml --port 80 --path /productpage"
                     if "outcome" in kwargs else "python -m graders analyze chapters/examples/ports-7070.yaml",
                     **kwargs)


@needs_build
def test_reference_page_lists_every_analyzer_code():
    html = (SITE / "chapters" / "analyzer-codes.html").read_text(encoding="utf-8")
    missing = [code for code in CATALOGUE if code not in html]
    assert not missing, f"codes missing from the reference page (stale build?): {missing}"


@needs_build
def test_setup_page_shows_the_pinned_versions():
    html = (SITE / "chapters" / "00-setup.html").read_text(encoding="utf-8")
    for pin in (versions.ISTIO_VERSION, versions.KIND_VERSION, versions.KIND_NODE_IMAGE.split("@")[1]):
        assert pin in html, f"{pin} not on the setup page (stale build?)"


@needs_build
def test_built_pages_show_no_execution_errors():
    for page in (SITE / "chapters").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" not in html, page.name
        assert "AssertionError" not in html, page.name


def test_figures_are_numbered_per_chapter():
    sys.path.insert(0, str(CHAPTERS))
    try:
        booksite = importlib.import_module("booksite")
    finally:
        sys.path.remove(str(CHAPTERS))
    book_wide = {"chapters/01-why-gateway": {"figure": {"id1": (2,), "id2": (3,)}},
                 "chapters/05-adding-gateways": {"figure": {"id3": (7,)}},
                 "chapters/troubleshooting": {"figure": {"id4": (10,)}}}
    assert booksite.per_chapter(book_wide) == {
        "chapters/01-why-gateway": {"figure": {"id1": (1, 1), "id2": (1, 2)}},
        "chapters/05-adding-gateways": {"figure": {"id3": (5, 1)}},
        "chapters/troubleshooting": {"figure": {"id4": (1,)}}}


@needs_build
def test_site_has_per_chapter_figure_numbers_the_footer_and_no_lab_quiz_code():
    ch5 = (SITE / "chapters" / "05-adding-gateways.html").read_text(encoding="utf-8")
    assert re.search(r"Fig\. 5\.1", ch5), "chapter 5's first figure is Fig. 5.1"
    assert "Written for Istio 1.30" in ch5, "the footer configured in _config.yml"
    for lab in (SITE / "labs").glob("*.html"):
        assert "answer=" not in lab.read_text(encoding="utf-8"), f"{lab.name} shows a quiz's answer in its code"
    setup = (SITE / "chapters" / "00-setup.html").read_text(encoding="utf-8")
    assert "pinned_toolchain" not in setup, "chapter 0 shows the Python that prints its version table"


@pytest.mark.parametrize("chapter", NUMBERED, ids=lambda p: p.stem)
def test_self_check_answers_are_folded(chapter):
    """Answers printed right after the questions are read before the reader has thought."""
    text = chapter.read_text(encoding="utf-8")
    block = text[text.index("Self-check"):]
    block = block[:block.index("\n:::")]
    assert not re.search(r"\*\([^)]", block), "an answer *(...)* sits right after its question"
    assert re.search(r":class: dropdown", text[text.index("Self-check"):]), "the answers follow, folded"
