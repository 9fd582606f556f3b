"""README's figure for the conformance suite is the number of cases pytest collects here, so it can
never drift: adding or removing a case without updating README fails this test (and says the figure)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FIGURE = re.compile(r"The conformance suite \(`tests/conformance/`, (\d+) cases, all passing\)")


def collected_cases() -> list[str]:
    """The ids of every conformance case, through pytest's own collection (``--collect-only -q``), this
    file's test aside; ``-m ''`` so that no marker filter in the project's addopts leaves one out."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "", "-p", "no:cacheprovider",
                          str(HERE.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    return [i for i in ids if not i.startswith(f"{HERE.relative_to(ROOT).as_posix()}/{Path(__file__).name}::")]


def readme_figure() -> int:
    found = FIGURE.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(found) == 1, "README.md must say once: The conformance suite (`tests/conformance/`, N cases, ...)"
    return int(found[0])


def test_readme_states_the_number_of_conformance_cases():
    cases = collected_cases()
    assert len(cases) > 200  # the whole suite was collected, not an error page
    assert readme_figure() == len(cases), f"README.md says {readme_figure()} conformance cases; pytest collects " \
                                          f"{len(cases)}: update the figure in README.md's engine section"
