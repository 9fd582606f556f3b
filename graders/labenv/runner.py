"""One way to run external tools, so ``--dry-run`` can print instead of run and tests can read
back exactly what was run (``history``).

Commands run from the repository root so the file paths they print are the paths they use.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from graders.errors import ClusterError

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stdin: str | None = None  # text fed to the command (kind reads its config from stdin with --config -)
    stdin_name: str = ""  # where that text comes from, for the dry-run listing

    def display(self) -> str:
        line = shlex.join(self.argv)
        return f"{line} < {self.stdin_name}" if self.stdin is not None and self.stdin_name else line


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class Runner:
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    env: Mapping[str, str] | None = None  # None: this process's environment
    cwd: Path = REPO_ROOT
    history: list[Command] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def run(self, argv: Sequence[str], *, stdin: str | None = None, stdin_name: str = "",
            what: str = "", timeout: float | None = None) -> Result:
        """Run a command that changes something, streaming its output; a failure ends the command.

        In dry-run mode the command (and any text it would read on stdin) is printed instead.
        """
        cmd = Command(tuple(argv), stdin, stdin_name)
        self.history.append(cmd)
        if self.dry_run:
            self.say(f"  $ {cmd.display()}")
            if stdin is not None:
                self.say(f"    --- {stdin_name or 'stdin'} ---")
                for line in stdin.rstrip("\n").splitlines():
                    self.say(f"    {line}")
                self.say("    ---")
            return Result(0)
        self.say(f"  $ {cmd.display()}")
        result = self._exec(cmd, capture=False, timeout=timeout)
        if result.returncode == 127 and result.stderr.endswith("command not found"):
            raise ClusterError(f"{argv[0]} is not on PATH, so `{cmd.display()}` could not run; "
                               "`python -m graders doctor` shows how to install it")
        if result.returncode != 0:
            raise ClusterError(f"{what or argv[0]} failed: `{cmd.display()}` exited with {result.returncode}; "
                               "see its output above, fix the cause and run the same command again")
        return result

    def query(self, argv: Sequence[str], *, timeout: float | None = 60) -> Result:
        """Run a read-only command and capture its output (never used in dry-run mode)."""
        cmd = Command(tuple(argv))
        if self.dry_run:
            raise RuntimeError(f"dry-run must not query: {cmd.display()}")
        self.history.append(cmd)
        return self._exec(cmd, capture=True, timeout=timeout)

    def _exec(self, cmd: Command, *, capture: bool, timeout: float | None) -> Result:
        env = dict(os.environ if self.env is None else self.env)
        try:
            proc = subprocess.run(cmd.argv, input=cmd.stdin, text=True, cwd=self.cwd, env=env, timeout=timeout,
                                  stdout=subprocess.PIPE if capture else None,
                                  stderr=subprocess.PIPE if capture else None, check=False)
        except FileNotFoundError:
            return Result(127, "", f"{cmd.argv[0]}: command not found")
        except PermissionError as err:
            return Result(126, "", f"{cmd.argv[0]}: {err.strerror}")
        except subprocess.TimeoutExpired:
            return Result(124, "", f"{cmd.argv[0]}: no answer within {timeout:.0f}s")
        return Result(proc.returncode, proc.stdout or "", proc.stderr or "")


def relpath(path: Path) -> str:
    """A repository file as commands and messages name it (relative to the repo root)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
