"""Preflight checks for the course cluster (`python -m graders doctor`, and the start of `cluster up`).

Each check says what it found and, when something is wrong, the exact command that fixes it.
Install commands are printed for the learner, never run: the course downloads nothing itself.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graders import versions
from graders.labenv.runner import REPO_ROOT, Runner

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
GIB = 1024**3
# The course's own estimate: the kind node, istiod, two gateways and Bookinfo with sidecars need about
# 3 GiB; labs 3 and 4 add a second Bookinfo and a second gateway.
MIN_MEMORY_GIB = 3
RECOMMENDED_MEMORY_GIB = 6
_SEMVER = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | FAIL | skip
    detail: str
    fix: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status.lower(), "detail": self.detail, "fix": list(self.fix)}


@dataclass(frozen=True)
class HostPort:
    port: int
    role: str  # what the port carries, for the message
    flag: str = ""  # the cluster-up flag that moves it, if any


@dataclass
class Toolchain:
    """Where the tools are: PATH, plus istioctl's download folder (istio-X.Y.Z/bin) if not on PATH."""

    env: Mapping[str, str]
    extra_path: list[str] = field(default_factory=list)

    def which(self, tool: str, istio_version: str) -> str | None:
        found = shutil.which(tool, path=self.env.get("PATH", ""))
        if found or tool != "istioctl":
            return found
        for base in dict.fromkeys((Path.cwd(), REPO_ROOT)):
            candidate = base / f"istio-{istio_version}" / "bin" / "istioctl"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                if str(candidate.parent) not in self.extra_path:
                    self.extra_path.append(str(candidate.parent))
                return str(candidate)
        return None

    def run_env(self) -> dict[str, str]:
        env = dict(self.env)
        if self.extra_path:
            env["PATH"] = os.pathsep.join([*self.extra_path, env.get("PATH", "")])
        return env


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = _SEMVER.search(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _fmt(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


def check_container_runtime(runner: Runner) -> tuple[Check, int | None]:
    """Docker (or the provider named by KIND_EXPERIMENTAL_PROVIDER) must answer; returns its memory too."""
    provider = (runner.env or os.environ).get("KIND_EXPERIMENTAL_PROVIDER", "docker") or "docker"
    fields = "{{.Version.Version}} {{.Host.MemTotal}} {{.Host.CPUs}}" if provider == "podman" else \
        "{{.ServerVersion}} {{.MemTotal}} {{.NCPU}}"
    res = runner.query([provider, "info", "--format", fields], timeout=30)
    if res.returncode == 127:
        return Check(provider, FAIL, f"{provider} is not installed (kind runs its node in a {provider} container)",
                     tuple(versions.install_commands("docker"))), None
    if res.returncode != 0:
        why = (res.stderr or res.stdout).strip().splitlines()
        return Check(provider, FAIL, f"{provider} is installed but its daemon does not answer: "
                     f"{why[0] if why else 'exit ' + str(res.returncode)}",
                     ("start Docker (Docker Desktop, or on Linux: sudo systemctl start docker)",
                      "on Linux, if the error says 'permission denied': sudo usermod -aG docker $USER  "
                      "(then log out and in)")), None
    parts = res.stdout.split()
    memory = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    cpus = f", {parts[2]} CPUs" if len(parts) > 2 else ""
    mem = f", {memory / GIB:.1f} GiB memory" if memory else ""
    version = f" {parts[0]}" if parts else ""
    return Check(provider, OK, f"{provider}{version} is running{mem}{cpus}"), memory


def check_memory(memory: int | None) -> Check:
    if memory is None:
        return Check("memory", SKIP, "unknown (the container runtime did not report it)")
    gib = memory / GIB
    if gib < MIN_MEMORY_GIB:
        return Check("memory", FAIL, f"the container runtime has {gib:.1f} GiB; the course cluster needs about "
                     f"{MIN_MEMORY_GIB} GiB", (f"give Docker at least {RECOMMENDED_MEMORY_GIB} GiB (Docker Desktop: "
                                               "Settings > Resources > Memory), or close other containers",))
    if gib < RECOMMENDED_MEMORY_GIB:
        return Check("memory", WARN, f"{gib:.1f} GiB is enough for the baseline; labs 3 and 4 add a second Bookinfo "
                     f"and gateway, for which {RECOMMENDED_MEMORY_GIB} GiB is comfortable")
    return Check("memory", OK, f"{gib:.1f} GiB available to containers")


def _tool_version(runner: Runner, argv: Sequence[str]) -> tuple[tuple[int, int, int] | None, str]:
    res = runner.query(argv, timeout=30)
    text = res.stdout + "\n" + res.stderr
    if argv[0].endswith("kubectl") and res.returncode == 0:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            text = json.loads(res.stdout)["clientVersion"]["gitVersion"]
    return (parse_version(text) if res.returncode == 0 else None), text.strip()


def check_kind(runner: Runner, tools: Toolchain) -> Check:
    fix = tuple(versions.install_commands("kind"))
    path = tools.which("kind", versions.ISTIO_VERSION)
    if not path:
        return Check("kind", FAIL, f"kind is not on PATH (the course uses kind {versions.KIND_VERSION})", fix)
    found, text = _tool_version(runner, [path, "version"])
    want = parse_version(versions.KIND_VERSION)
    assert want is not None
    if found is None:
        return Check("kind", FAIL, f"`{path} version` did not print a version ({text[:80]!r})", fix)
    if found[:2] == want[:2]:
        return Check("kind", OK, f"kind v{_fmt(found)}")
    if found[:2] > want[:2]:
        return Check("kind", WARN, f"kind v{_fmt(found)} is newer than the course's {versions.KIND_VERSION}; the "
                     f"pinned node image was built for {versions.KIND_VERSION} and usually works with later releases")
    return Check("kind", FAIL, f"kind v{_fmt(found)} is older than {versions.KIND_VERSION}, the release the pinned "
                 "node image was built for", fix)


def check_kubectl(runner: Runner, tools: Toolchain) -> Check:
    fix = tuple(versions.install_commands("kubectl"))
    low, high = versions.kubectl_minor_range()
    path = tools.which("kubectl", versions.ISTIO_VERSION)
    if not path:
        return Check("kubectl", FAIL, f"kubectl is not on PATH (the course cluster runs Kubernetes "
                     f"{versions.KUBERNETES_VERSION}; kubectl v1.{low} to v1.{high} work)", fix)
    found, text = _tool_version(runner, [path, "version", "--client", "-o", "json"])
    if found is None:
        return Check("kubectl", FAIL, f"`kubectl version --client` did not print a version ({text[:80]!r})", fix)
    if found[0] == 1 and low <= found[1] <= high:
        return Check("kubectl", OK, f"kubectl v{_fmt(found)}")
    return Check("kubectl", FAIL, f"kubectl v{_fmt(found)} is more than one minor version away from the cluster's "
                 f"Kubernetes {versions.KUBERNETES_VERSION} (supported: v1.{low} to v1.{high})", fix)


def check_istioctl(runner: Runner, tools: Toolchain, istio_version: str) -> Check:
    fix = tuple(versions.install_commands("istioctl", istio_version=istio_version))
    path = tools.which("istioctl", istio_version)
    if not path:
        return Check("istioctl", FAIL, f"istioctl is not on PATH (the course installs Istio {istio_version} with "
                     "istioctl of that same version)", fix)
    found, text = _tool_version(runner, [path, "version", "--remote=false"])
    want = parse_version(istio_version)
    where = f" (at {path})" if tools.extra_path and path.startswith(tools.extra_path[-1]) else ""
    if found is None or want is None:
        return Check("istioctl", FAIL, f"`istioctl version --remote=false` did not print a version ({text[:80]!r})",
                     fix)
    if found == want:
        return Check("istioctl", OK, f"istioctl {_fmt(found)}{where}")
    if found[:2] == want[:2]:
        return Check("istioctl", WARN, f"istioctl {_fmt(found)}{where}: same minor as the course's {istio_version}, "
                     f"so it installs Istio {_fmt(found)}; the course was checked with {istio_version}")
    return Check("istioctl", FAIL, f"istioctl {_fmt(found)}{where} installs Istio {_fmt(found)}, but the course needs "
                 f"{istio_version} (istioctl always installs its own version)", fix)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            return err.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def check_ports(ports: Sequence[HostPort], *, cluster_exists: bool, name: str) -> list[Check]:
    if cluster_exists:
        return [Check("ports", SKIP, f"kind cluster {name} exists and already holds its host ports")]
    out = []
    for hp in ports:
        label = f"port {hp.port}"
        if not port_in_use(hp.port):
            out.append(Check(label, OK, f"127.0.0.1:{hp.port} is free ({hp.role})"))
            continue
        fix = [f"find what listens there: lsof -nP -iTCP:{hp.port} -sTCP:LISTEN  "
               f"(Linux: ss -ltnp 'sport = :{hp.port}')"]
        if hp.flag:
            fix.append(f"or use another port: python -m graders cluster up {hp.flag} <free port>")
        else:
            fix.append("stop that program; this port is fixed in labs/cluster/kind-config.yaml.tmpl")
        out.append(Check(label, FAIL, f"127.0.0.1:{hp.port} is already in use; the kind node needs it for {hp.role}",
                         tuple(fix)))
    return out


def cluster_exists(runner: Runner, tools: Toolchain, name: str) -> bool | None:
    """Whether kind already has the cluster (None when kind cannot tell)."""
    kind = tools.which("kind", versions.ISTIO_VERSION)
    if not kind:
        return None
    res = runner.query([kind, "get", "clusters"], timeout=30)
    if res.returncode != 0:
        return None
    return name in res.stdout.split()


def run_checks(runner: Runner, tools: Toolchain, *, istio_version: str, ports: Sequence[HostPort],
               name: str) -> list[Check]:
    runtime, memory = check_container_runtime(runner)
    checks = [runtime]
    if runtime.status == OK:
        checks.append(check_memory(memory))
    checks += [check_kind(runner, tools), check_kubectl(runner, tools), check_istioctl(runner, tools, istio_version)]
    exists = cluster_exists(runner, tools, name) if runtime.status == OK else None
    if exists is not None:
        checks.append(Check("cluster", OK, f"kind cluster {name} exists (context kind-{name})" if exists else
                            f"no kind cluster {name} yet; `python -m graders cluster up` creates it"))
    checks += check_ports(ports, cluster_exists=bool(exists), name=name)
    return checks


def render(checks: Sequence[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{c.status:<5} {c.name:<11} {c.detail}")
        for i, fix in enumerate(c.fix):
            lines.append(f"{'':17}{'fix: ' if i == 0 else '     '}{fix}")
    failed = sum(c.status == FAIL for c in checks)
    lines.append("")
    lines.append(f"{failed} problem(s) to fix before `python -m graders cluster up`." if failed
                 else "Ready for `python -m graders cluster up`.")
    return "\n".join(lines)
