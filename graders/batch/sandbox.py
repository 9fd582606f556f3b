"""Run a learner's own notebook (``grade --execute-submitted-notebooks``) inside a bubblewrap sandbox.

Design: one small executor process per learner runs INSIDE ``bwrap`` and does everything that
touches learner code there -- it starts the kernel, executes the notebook with nbclient over
loopback (the sandbox's own network namespace has only ``lo``), and prints the executed notebook
as JSON on its standard output. The grader, outside, reads that output with a size limit, kills
the sandbox's whole process tree, and treats what it read as untrusted: the harvested result only
counts once it matches the lab's definition and the course's own grading of the same files
(``graders.batch.run``). Results, feedback and gradebooks are written by the grader, in a folder
the sandbox never sees.

What the sandbox contains (see the README's "Batch grading" promises):
- no network: a new network namespace with loopback only;
- file system: read-only ``/usr``, the Python installation and virtual environment, the course's
  ``graders/`` package and the simulated cluster's files (``labs/cluster``, the lab's ``start/``);
  a private scratch folder ``/scratch`` (``TMPDIR``, ``HOME``, gone with the sandbox); the learner's own
  COPY of their submission at ``/submission``; nothing else is writable (``/tmp`` included). Not the
  class folder, not the output folder, not the lab solutions, not ``/etc``
  (beyond the dynamic loader's cache), not ``/root`` or ``/home``;
- processes: a new PID namespace (``/proc`` shows only the sandbox), a new session (no terminal
  to inject keystrokes into), all capabilities dropped, ``--die-with-parent``; when the executor
  ends or is killed, the PID namespace ends and the kernel takes every process with it, ``setsid``
  daemons included.
What it does not contain: CPU and memory use (the per-learner timeout bounds time, not memory),
and the kernel's own view of the executor (learner code can tamper with what the executor prints;
that is why the output is checked, never trusted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.errors import InputError

INSIDE = "/submission"  # where the learner's copy is mounted inside the sandbox
SCRATCH = "/scratch"  # the private, writable tmpfs (HOME, TMPDIR, Jupyter's runtime files)
MAX_OUTPUT = 32 * 1024 * 1024  # bytes of executed notebook read back; more is refused
STARTUP_GRACE = 90.0  # kernel start (60 s limit) and shutdown inside the sandbox, beyond the learner budget
INSTALL_HINT = "install it with: sudo apt-get install -y bubblewrap (Debian/Ubuntu package `bubblewrap`)"


@dataclass(frozen=True)
class Sandboxed:
    """What came back from the sandbox (all of it untrusted)."""

    nb: dict[str, Any] | None
    error: str | None
    seconds: float


def find_bwrap() -> str:
    """The bwrap binary, checked to work here; one InputError line (exit 2) when it is missing or
    cannot create namespaces (for example unprivileged user namespaces are disabled)."""
    path = shutil.which("bwrap")
    if path is None:
        raise InputError(f"--execute-submitted-notebooks runs learner code in a bubblewrap sandbox and `bwrap` "
                         f"is not installed; {INSTALL_HINT}")
    probe = [path, "--ro-bind", "/usr", "/usr", *_usr_links(), "--proc", "/proc", "--dev", "/dev",
             "--unshare-all", "--die-with-parent", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InputError(f"--execute-submitted-notebooks: `bwrap` could not be run ({err}); {INSTALL_HINT}") from None
    if proc.returncode != 0:
        why = " ".join(proc.stderr.split())[:200] or f"exit code {proc.returncode}"
        raise InputError(f"--execute-submitted-notebooks: `bwrap` cannot create a sandbox here ({why}); run as "
                         "root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")
    return path


def _usr_links() -> list[str]:
    """Merged-/usr systems have /bin, /lib... as symlinks into /usr; recreate them, else bind them."""
    out: list[str] = []
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/", top)
        if p.is_symlink():
            out += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            out += ["--ro-bind", str(p), str(p)]
    return out


def python_paths() -> tuple[str, list[Path]]:
    """The interpreter to run inside, and the folders it needs (real paths, bound read-only)."""
    prefix = Path(sys.prefix).resolve()
    exe = prefix / "bin" / Path(sys.executable).name
    if not exe.exists():
        exe = Path(sys.executable)
    roots = {prefix, Path(sys.base_prefix).resolve(), Path(sys.exec_prefix).resolve(),
             Path(sys.base_exec_prefix).resolve()}
    return str(exe), sorted(r for r in roots if r.is_dir() and r != Path("/usr") and Path("/usr") not in r.parents)


def command(bwrap: str, repo: Path, lab_id: str, copy: Path, env: dict[str, str]) -> list[str]:
    """The bwrap command line that runs the executor on ``copy`` (mounted at /submission)."""
    exe, roots = python_paths()
    # Scratch space is a private tmpfs at SCRATCH, not /tmp: a repository or virtual environment that lives
    # under /tmp (a CI clone) is bound read-only at its own path, and the folders bwrap makes for it stay in
    # the read-only root instead of a writable /tmp.
    args = [bwrap, "--ro-bind", "/usr", "/usr", *_usr_links(), "--tmpfs", SCRATCH]
    for root in roots:
        args += ["--ro-bind", str(root), str(root)]
    for extra in ("/etc/ld.so.cache", "/etc/localtime"):
        if Path(extra).exists():
            args += ["--ro-bind", extra, extra]
    for part in (repo / "graders", repo / "labs" / "cluster", repo / "labs" / lab_id / "start"):
        if part.is_dir():
            args += ["--ro-bind", str(part), str(part)]
    args += ["--bind", str(copy), INSIDE, "--chdir", INSIDE, "--proc", "/proc", "--dev", "/dev",
             "--unshare-all", "--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
             "--remount-ro", "/", "--clearenv"]
    for key, value in {**env, "HOME": SCRATCH, "TMPDIR": SCRATCH, "JUPYTER_RUNTIME_DIR": f"{SCRATCH}/jupyter-runtime",
                       "IPYTHONDIR": f"{SCRATCH}/ipython", "MPLCONFIGDIR": f"{SCRATCH}/matplotlib",
                       "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(repo)}.items():
        args += ["--setenv", key, value]
    return [*args, exe, "-m", "graders.batch.sandbox"]


async def run(bwrap: str, repo: Path, lab_id: str, copy: Path, nb: dict[str, Any], timeout: float,
              injected_at: int | None, env: dict[str, str]) -> Sandboxed:
    """Execute ``nb`` inside the sandbox; kill it (and so everything it started) when it is done or
    over ``timeout`` plus start-up."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    # The options go through a pipe (bwrap --args), so the sandbox's /proc/1/cmdline does not even
    # name the folders outside it.
    argv = command(bwrap, repo, lab_id, copy, env)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"".join(a.encode() + b"\0" for a in argv[1:-3]))
        os.close(write_end)
        proc = await asyncio.create_subprocess_exec(
            argv[0], "--args", str(read_end), *argv[-3:], stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=MAX_OUTPUT, pass_fds=(read_end,))
    finally:
        os.close(read_end)
    job = json.dumps({"nb": nb, "timeout": timeout, "injected_at": injected_at, "cwd": INSIDE}).encode()
    try:
        out = await asyncio.wait_for(_talk(proc, job), timeout + STARTUP_GRACE)
    except TimeoutError:
        return Sandboxed(None, f"timed out after {timeout:g} s (the sandbox was stopped)", loop.time() - started)
    except _TooMuch:
        return Sandboxed(None, f"the notebook's output exceeds {MAX_OUTPUT // 2**20} MiB; refused",
                         loop.time() - started)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()  # --die-with-parent + the PID namespace take the kernel and any daemon along
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)
    seconds = loop.time() - started
    try:
        answer = json.loads(out)
    except ValueError:
        return Sandboxed(None, "the sandboxed run ended without a readable answer (did the code kill it?)", seconds)
    if not isinstance(answer, dict):
        return Sandboxed(None, "the sandboxed run gave a malformed answer", seconds)
    error = answer.get("error")
    nb_out = answer.get("nb")
    return Sandboxed(nb_out if isinstance(nb_out, dict) else None,
                     str(error)[:500] if error is not None else None, seconds)


class _TooMuch(Exception):
    pass


async def _talk(proc: asyncio.subprocess.Process, job: bytes) -> bytes:
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(job)
        await proc.stdin.drain()
        proc.stdin.close()
    chunks: list[bytes] = []
    size = 0
    while chunk := await proc.stdout.read(1 << 20):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise _TooMuch
        chunks.append(chunk)
    await proc.wait()
    return b"".join(chunks)


# --- inside the sandbox ----------------------------------------------------------------------------
def _main() -> None:
    """Executor: read the job on stdin, run it in a fresh kernel, print {"nb", "error"} on stdout.
    The kernel must not inherit stdout (learner code could print a forged answer there), so the
    answer goes to a private duplicate and fd 1 points at stderr from here on."""
    import nbformat

    from graders.batch.execute import Job, KernelSlot

    answer_fd = os.dup(1)  # not inheritable (PEP 446)
    os.dup2(2, 1)
    job = json.loads(sys.stdin.buffer.read())
    nb = nbformat.from_dict(job["nb"])
    os.makedirs(os.environ["JUPYTER_RUNTIME_DIR"], exist_ok=True)
    slot = KernelSlot(reuse=False)
    outcome = asyncio.run(slot.execute(Job(nb, Path(job["cwd"]), False, float(job["timeout"]), dict(os.environ),
                                           job.get("injected_at"))))
    data = json.dumps({"nb": outcome.nb, "error": outcome.error}).encode()
    with os.fdopen(answer_fd, "wb") as fh:
        fh.write(data)


if __name__ == "__main__":
    _main()
