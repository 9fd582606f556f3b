"""The built book, as a learner's browser sees it: served on 127.0.0.1 and driven with Chromium.

The site must work offline (classrooms, trains, locked-down networks), so the strongest check is
that no page asks for anything outside the local server. Requests that try to leave are recorded and
aborted rather than attempted, so the test neither needs nor uses the network.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = SITE / "_screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Every Jupyter Book 1 page declares this twice (sphinx-thebe); harmless, and the only error allowed.
KNOWN_PAGE_ERROR = "Identifier 'THEBE_JS_URL' has already been declared"
# Pages that draw diagrams at build time (graphviz -> SVG).
DIAGRAM_PAGES = [f"chapters/{name}.html" for name in (
    "00-setup", "01-why-gateway", "02-gateway-resource", "03-ports", "04-conflicts", "05-adding-gateways",
    "06-egress", "07-gateway-api", "08-https", "troubleshooting")]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 720}  # Playwright's default viewport, which `visits` uses
# Smallest label a diagram may show on a phone, in CSS pixels.
MIN_LABEL_PX = 11
SCREENSHOT_PAGES = ["intro.html", "chapters/03-ports.html", "chapters/04-conflicts.html",
                    "chapters/analyzer-codes.html"]
# Folders of the build that hold assets, not pages.
NOT_PAGES = {"_static", "_sources", "_images", "_screenshots", "_sphinx_design_static", "_panels_static"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (SITE / "index.html").exists(),
                       reason="the book is not built (_build/html missing): run `make test`, which builds it first"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not installed: `make system-deps` installs it"),
]


def site_pages() -> list[str]:
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
                  if not NOT_PAGES & set(p.relative_to(SITE).parts)
                  and not any(part.startswith(".") for part in p.relative_to(SITE).parts))


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


@functools.cache
def anchors(page: str) -> frozenset[str]:
    parser = _Ids()
    parser.feed((SITE / page).read_text(encoding="utf-8"))
    return frozenset(parser.ids)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def load(page, url: str, quiet_ms: int = 500, cap_ms: int = 8000) -> None:
    """Load a page, then wait until no request has been in flight for ``quiet_ms`` (fonts and lazy
    scripts arrive after "load"). Playwright's own "networkidle" never fires on these pages even
    with nothing pending, so the quiet period is tracked here, capped at ``cap_ms``.
    """
    pending: set = set()
    last = [time.monotonic()]

    def started(request) -> None:
        pending.add(request)
        last[0] = time.monotonic()

    def ended(request) -> None:
        pending.discard(request)
        last[0] = time.monotonic()

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        deadline = time.monotonic() + cap_ms / 1000
        while time.monotonic() < deadline and (pending or time.monotonic() - last[0] < quiet_ms / 1000):
            page.wait_for_timeout(100)
    finally:
        page.remove_listener("request", started)
        page.remove_listener("requestfinished", ended)
        page.remove_listener("requestfailed", ended)


class Visit:
    """One page load with everything it asked for, every error it raised and every link it shows."""

    def __init__(self, browser, base_url: str, page_path: str) -> None:
        self.outside: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        context = browser.new_context()
        self.page = context.new_page()
        host = urlsplit(base_url).netloc

        def gate(route) -> None:
            url = route.request.url
            if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == host:
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        self.page.route("**/*", gate)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page.on("requestfailed",
                     lambda r: None if r.url in self.outside else self.failed.append(f"failed {r.url}"))
        self.context = context
        load(self.page, base_url + page_path)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def visits(browser, base_url):
    """Load every page once; the checks below read the recorded visits."""
    loaded = {page: Visit(browser, base_url, page) for page in site_pages()}
    yield loaded
    for visit in loaded.values():
        visit.close()


def test_the_site_has_the_course_pages():
    pages = site_pages()
    for expected in ["intro.html", "search.html", "chapters/00-setup.html", "chapters/03-ports.html",
                     "chapters/troubleshooting.html", "chapters/analyzer-codes.html", "chapters/glossary.html",
                     "chapters/instructor-guide.html"]:
        assert expected in pages


def test_no_page_requests_anything_outside_127_0_0_1(visits):
    leaks = {page: v.outside for page, v in visits.items() if v.outside}
    assert not leaks, f"pages requested outside resources (CDN?): {leaks}"


def test_every_local_resource_loads(visits):
    broken = {page: v.failed for page, v in visits.items() if v.failed}
    assert not broken, f"local resources failed to load: {broken}"


def test_no_page_errors_except_the_known_jupyter_book_one(visits):
    errors = {page: [e for e in v.errors if KNOWN_PAGE_ERROR not in e] for page, v in visits.items()}
    errors = {page: e for page, e in errors.items() if e}
    assert not errors, f"JavaScript errors: {errors}"


def test_every_internal_link_resolves(visits, base_url):
    problems = []
    for page, visit in visits.items():
        hrefs = visit.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in hrefs:
            parts = urlsplit(href)
            if not href.startswith(base_url):
                continue
            target = unquote(parts.path[len(urlsplit(base_url).path):]) or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (SITE / target).is_file():
                problems.append(f"{page}: {href} (no such file)")
            elif parts.fragment and target.endswith(".html") and unquote(parts.fragment) not in anchors(target):
                problems.append(f"{page}: {href} (no such anchor)")
    assert not problems, "broken internal links:\n" + "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("page_path", DIAGRAM_PAGES)
def test_diagrams_are_svg(visits, page_path):
    visit = visits[page_path]
    sources = visit.page.eval_on_selector_all(
        "div.graphviz object, div.graphviz img, div.graphviz svg",
        "els => els.map(e => e.tagName.toLowerCase() === 'svg' ? 'inline' : (e.data || e.src))")
    assert sources, f"{page_path} has no diagram"
    for src in sources:
        if src == "inline":
            continue
        assert src.endswith(".svg"), f"{page_path}: diagram {src} is not SVG"
        path = SITE / unquote(urlsplit(src).path).lstrip("/")
        text = path.read_text(encoding="utf-8")
        assert "<svg" in text and "</svg>" in text, f"{src} is not an SVG document"
        assert re.search(r"<text[^>]*>", text), f"{src} has no labels (empty drawing?)"


def test_screenshots_of_key_pages(browser, base_url):
    """Pictures for a human reviewer; the test only checks that they were taken."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        for page_path in SCREENSHOT_PAGES:
            load(page, base_url + page_path)
            out = SCREENSHOTS / (page_path.replace("/", "_").removesuffix(".html") + ".png")
            page.screenshot(path=str(out), full_page=True)
            assert out.stat().st_size > 10_000, f"{out} looks blank"
        load(page, base_url + "search.html?q=targetPort")
        page.wait_for_selector("#search-results ul.search li", timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "search.png"))
    finally:
        page.close()


def widest(page) -> tuple[int, int, list[str]]:
    """The page's scroll width, its viewport width, and, when the page is too wide, the chain of
    elements down to the smallest one whose removal makes it fit (text overflowing its box has no
    box of its own, so it is found by hiding elements one at a time, then put back)."""
    return page.evaluate("""() => {
      const W = document.documentElement.clientWidth, wide = () => document.documentElement.scrollWidth > W;
      const path = [];
      let candidates = wide() ? [...document.body.children] : [];
      while (candidates.length) {
        let found = null;
        for (const c of candidates) {
          const before = c.style.display; c.style.display = 'none';
          const fits = !wide(); c.style.display = before;
          if (fits) { found = c; break; }
        }
        if (!found) break;
        path.push(found.tagName.toLowerCase() + (found.className ? '.' + String(found.className).split(' ')[0] : ''));
        candidates = [...found.children];
      }
      const last = path.length ? path.slice(-3) : [];
      return [document.documentElement.scrollWidth, W, last];
    }""")


def test_no_page_is_wider_than_a_desktop_window(visits):
    too_wide = {}
    for page_path, visit in visits.items():
        assert visit.page.viewport_size == DESKTOP
        width, window, culprits = widest(visit.page)
        if width > window:
            too_wide[page_path] = (width, culprits)
    assert not too_wide, f"pages wider than {DESKTOP['width']} px: {too_wide}"


def test_the_four_numbers_table_fits_a_desktop_column(visits):
    """Chapter 3's table of object paths once ran past its column on a desktop; the paths now wrap
    after their dots (_static/code-breaks.js) instead."""
    page = visits["chapters/03-ports.html"].page
    overflow = page.evaluate("""() => { const t = document.querySelector('article table');
        const box = t.closest('.pst-scrollable-table-container') || t;
        return [box.scrollWidth, box.clientWidth, t.querySelectorAll('code wbr').length]; }""")
    assert overflow[2] > 0, "no break points were added to the table's object paths"
    assert overflow[0] <= overflow[1], f"the table is wider than its column at {DESKTOP['width']} px: {overflow}"


@pytest.fixture(scope="module")
def phone_visits(visits):
    """The same loaded pages, re-laid out at a phone's width (390 px)."""
    for visit in visits.values():
        visit.page.set_viewport_size(PHONE)
    for visit in visits.values():
        visit.page.wait_for_timeout(50)
    yield visits
    for visit in visits.values():
        visit.page.set_viewport_size(DESKTOP)


def test_no_page_is_wider_than_a_phone(phone_visits):
    too_wide = {}
    for page_path, visit in phone_visits.items():
        width, window, culprits = widest(visit.page)
        if width > window:
            too_wide[page_path] = (width, culprits)
    assert not too_wide, f"pages wider than a {PHONE['width']} px phone (page width, what sticks out): {too_wide}"


def diagram_label_sizes(page) -> list[tuple[str, float]]:
    """For each diagram: its file and the on-screen size of its smallest label, in CSS pixels
    (font size in the drawing's units x displayed width / the drawing's own width)."""
    return page.evaluate("""() => [...document.querySelectorAll('div.graphviz object')].map(o => {
        const svg = o.contentDocument && o.contentDocument.querySelector('svg');
        if (!svg) return [o.data, -1];
        const sizes = [...svg.querySelectorAll('text')].map(t => parseFloat(t.getAttribute('font-size')));
        const scale = o.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        return [o.data.split('/').pop(), Math.min(...sizes) * scale];
      })""")


@pytest.mark.parametrize("page_path", DIAGRAM_PAGES)
def test_diagram_labels_stay_readable_on_a_phone(phone_visits, page_path):
    page = phone_visits[page_path].page
    page.wait_for_function("() => [...document.querySelectorAll('div.graphviz object')]"
                           ".every(o => o.contentDocument && o.contentDocument.querySelector('svg'))", timeout=10_000)
    sizes = diagram_label_sizes(page)
    assert sizes, f"{page_path} has no diagram"
    small = [(name, round(px, 1)) for name, px in sizes if px < MIN_LABEL_PX]
    assert not small, f"{page_path}: labels smaller than {MIN_LABEL_PX} px at {PHONE['width']} px: {small}"


@pytest.mark.parametrize("toggle, drawer, shows", [
    (".bd-header-article .primary-toggle", "#pst-primary-sidebar-modal", "Chapters"),
    (".bd-header-article .secondary-toggle", "#pst-secondary-sidebar-modal", "The four numbers"),
], ids=["menu", "contents"])
def test_phone_buttons_open_their_drawers(browser, base_url, toggle, drawer, shows):
    """The theme once bound these buttons' handler to hidden header icons: tapping them did nothing."""
    page = browser.new_page(viewport=PHONE)
    try:
        load(page, base_url + "chapters/03-ports.html")
        button = page.locator(toggle).first
        assert button.is_visible(), f"{toggle} is not shown on a phone"
        panel = page.locator(drawer)
        assert not panel.is_visible(), f"{drawer} is open before anything was tapped"
        button.click()
        page.wait_for_timeout(600)
        box = panel.bounding_box()
        assert panel.is_visible() and box is not None and box["width"] > 200, \
            f"tapping {toggle} did not open {drawer}: {box}"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, f"{drawer} is off screen: {box}"
        link = panel.get_by_text(shows).first
        assert link.is_visible(), f"{drawer} opened without its links ({shows!r} not visible)"
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"phone_{drawer.strip('#')}.png"))
    finally:
        page.close()


def test_desktop_has_one_header_row_with_one_search_box(browser, base_url):
    page = browser.new_page(viewport=DESKTOP)
    try:
        load(page, base_url + "chapters/03-ports.html")
        boxes = [b for b in page.locator(".search-button-field, .bd-search").all() if b.is_visible()]
        assert len(boxes) == 1, f"{len(boxes)} search boxes on a desktop page"
        header = page.locator("#pst-header, header.bd-header")
        assert header.count() == 0 or not header.first.is_visible(), "a second header row is shown"
    finally:
        page.close()


@pytest.mark.parametrize("query", ["targetPort", "8080", "30080", "8443"])
def test_search_finds_the_ports_chapter(browser, base_url, query):
    """Port numbers included: Sphinx's search drops queries made only of digits (_static/search-digits.js)."""
    page = browser.new_page()
    try:
        load(page, base_url + f"search.html?q={query}")
        page.wait_for_selector("#search-results ul.search li", timeout=30_000)
        hits = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.href)")
        assert any("chapters/03-ports.html" in h for h in hits), f"search for {query} missed the ports chapter: {hits}"
    finally:
        page.close()


def test_phone_screenshots(browser, base_url):
    """Pictures of the phone layout for a human reviewer."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=PHONE)
    try:
        for page_path in ["chapters/01-why-gateway.html", "chapters/03-ports.html", "chapters/troubleshooting.html"]:
            load(page, base_url + page_path)
            out = SCREENSHOTS / ("phone_" + page_path.replace("/", "_").removesuffix(".html") + ".png")
            page.screenshot(path=str(out), full_page=True)
            assert out.stat().st_size > 10_000, f"{out} looks blank"
    finally:
        page.close()
