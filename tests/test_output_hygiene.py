"""Text from outside (file and object names, request headers, API error bodies, learner code's
errors) never drives the terminal, and `check -o junit` stays well-formed XML whatever it holds."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from graders.batch.progress import Progress
from graders.cli import main
from graders.report import terminal_safe, xml_safe

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "labs" / "lab01" / "solutions" / "reference"
ESC = "\x1b"


@pytest.fixture
def odd_dir(tmp_path: Path) -> Path:
    """The lab 1 solution whose VirtualService names its gateway with a bell, an OSC sequence that
    retitles the terminal, a clear-screen sequence and a C1 CSI (YAML escapes \\a, \\e, \\x9b)."""
    where = tmp_path / "work"
    shutil.copytree(SOLUTION, where)
    vs = where / "bookinfo-gateway.yaml"
    text = vs.read_text()
    assert "gateways: [default/bookinfo-gateway]" in text
    vs.write_text(text.replace("gateways: [default/bookinfo-gateway]",
                               'gateways: ["default/bookinfo-gateway\\a\\e]0;owned\\a\\e[2J\\x9b31m"]'))
    return where


def test_escapes():
    assert terminal_safe(f"a{ESC}[31mb\x07\tc\n\u202ed\x9b") == "a\\x1b[31mb\\x07\tc\n\\u202ed\\x9b"
    assert xml_safe("<x a='\x01'>\x1f\ufffe</x>") == "<x a='\\x01'>\\x1f\\ufffe</x>"


def test_junit_is_well_formed_with_control_characters(odd_dir: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["check", "1", str(odd_dir), "-o", "junit"]) == 1
    out = capsys.readouterr().out
    ET.fromstring(out.encode())  # raises on a control character
    assert "bookinfo-gateway\\x07\\x1b]0;owned" in out


@pytest.mark.parametrize("command", [["check", "1"], ["analyze"]])
def test_text_output_never_carries_raw_control_characters(odd_dir: Path, capsys: pytest.CaptureFixture[str],
                                                          command: list[str]):
    main([*command, str(odd_dir)])
    out = capsys.readouterr().out
    assert ESC not in out and "\x07" not in out and "\x9b" not in out
    assert "\\x1b[2J" in out  # shown, escaped


def test_error_lines_and_request_headers_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["analyze", str(tmp_path / f"missing{ESC}[2J.yaml")]) == 2
    err = capsys.readouterr().err
    assert ESC not in err and "missing\\x1b[2J.yaml" in err and err.count("\n") == 1
    main(["trace", str(SOLUTION), "--host", f"bookinfo.example.com{ESC}[2J", "-H", f"x-a:{ESC}[5m"])
    out = capsys.readouterr().out
    assert ESC not in out


def test_progress_lines_escape_learner_supplied_reasons():
    stream = io.StringIO()
    progress = Progress(1, stream=stream)
    progress.update({"learner": "alice", "status": "error", "reason": f"cell 3 failed: E: {ESC}]0;pwned\x07"})
    assert ESC not in stream.getvalue() and "\\x1b]0;pwned\\x07" in stream.getvalue()
