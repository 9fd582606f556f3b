"""Fault injection: the real graders command line (a child process, so stderr is exactly what a user
sees: no log lines, no warnings) against a misbehaving API server (faultyapi.py, built on the fake).

Each case asserts the exit code, that stderr is ONE line saying the real cause, and that the command
ended within its deadline plus a margin for starting Python on a busy machine. Deadlines are small
(2-3 s) so the suite is fast; the only timing assertion is "finished under deadline + margin".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fakeapi import DEFAULT_TOKEN, FakeGateway, bookinfo_routing, write_kubeconfig_for
from faultyapi import FaultyApiServer, self_signed, wait_gone

REPO = Path(__file__).resolve().parents[2]
CONTEXT = "kind-istio-lab"
DEADLINE = 2
MARGIN = 12.0  # starting Python and importing the kubernetes client on a loaded 2-core machine


@pytest.fixture
def api() -> Iterator[FaultyApiServer]:
    with FaultyApiServer() as server:
        yield server


def graders(*argv: str, timeout: float = 90) -> tuple[int, str, str, float]:
    """``python -m graders ARGV`` as a child process: (exit code, stdout, stderr, seconds)."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "graders", *argv], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "default"})
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def analyze(kubeconfig: str, *extra: str) -> tuple[int, str, str, float]:
    return graders("analyze", "--context", CONTEXT, "--kubeconfig", kubeconfig, "--deadline", str(DEADLINE),
                   "--fail-on", "never", *extra)


# --- trickle and silence: one deadline for the whole command ------------------------------------------
def test_a_trickling_api_server_is_cut_off_at_the_deadline(api: FaultyApiServer, tmp_path: Path) -> None:
    api.inject("/api/v1/pods", "trickle", every=0.3)  # 400 bytes at 0.3 s each: 2 minutes, never a read timeout
    rc, _, err, took = analyze(api.write_kubeconfig(tmp_path / "config"))
    line = one_line(err)
    assert rc == 2 and took < DEADLINE + MARGIN
    assert line.startswith(f"error: gave up after {DEADLINE} s (--deadline {DEADLINE}): reading pods (cluster-wide "
                           f"list) from {api.url} took too long"), line


def test_a_silent_api_server_stops_lab_setup_at_the_deadline(api: FaultyApiServer, tmp_path: Path) -> None:
    api.inject("/", "silence")  # accepts, reads the request, never answers
    rc, out, err, took = graders("lab", "setup", "2", "--kubeconfig", api.write_kubeconfig(tmp_path / "config"),
                                 "--deadline", str(DEADLINE))
    line = one_line(err)
    assert rc == 2 and took < DEADLINE + MARGIN, out
    assert line.startswith(f"error: gave up after {DEADLINE} s (--deadline {DEADLINE}): "), line
    assert "discover the API (context kind-istio-lab) took too long" in line, line


def test_a_trickling_gateway_stops_snapshot_probes_at_the_deadline(api: FaultyApiServer, tmp_path: Path) -> None:
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(4096)
            for byte in b"HTTP/1.1 200 OK\r\nserver: istio-envoy\r\ncontent-length: 100\r\n\r\n" + b"x" * 100:
                if stop.wait(0.3):
                    break
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break
            conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    try:
        rc, _, err, took = graders("snapshot", "--context", CONTEXT, "--kubeconfig",
                                   api.write_kubeconfig(tmp_path / "config"), "--deadline", "3", "--probe-url",
                                   f"http://127.0.0.1:{listener.getsockname()[1]}", "-o", str(tmp_path / "s.yaml"))
    finally:
        stop.set()
        listener.close()
    line = one_line(err)
    assert rc == 2 and took < 3 + MARGIN
    assert line.startswith("error: gave up after 3 s (--deadline 3): "), line
    assert not (tmp_path / "s.yaml").exists()


# --- Retry-After, overload, pagination ---------------------------------------------------------------
def test_a_single_429_with_retry_after_is_waited_for(api: FaultyApiServer, tmp_path: Path) -> None:
    fault = api.inject("/api/v1/pods", "status", status=429, retry_after="1", times=1)
    rc, out, err, took = graders("analyze", "--context", CONTEXT, "--kubeconfig", api.write_kubeconfig(
        tmp_path / "config"), "--deadline", "6", "-o", "json")  # room for the 1 s wait on a busy machine
    assert (rc, err) == (0, ""), err
    assert fault.hits == 1 and yaml.safe_load(out)["mode"] == "live"
    assert took < 6 + MARGIN


def test_a_retry_after_beyond_the_deadline_says_so(api: FaultyApiServer, tmp_path: Path) -> None:
    api.inject("/api/v1/pods", "status", status=429, retry_after="30")
    rc, _, err, took = analyze(api.write_kubeconfig(tmp_path / "config"))
    line = one_line(err)
    assert rc == 2 and took < DEADLINE + MARGIN
    assert "is busy (HTTP 429) and asked to retry after 30 s, past the deadline" in line, line
    assert "is the cluster running" not in line


def test_an_api_server_answering_503_every_time(api: FaultyApiServer, tmp_path: Path) -> None:
    api.inject("/api/v1/pods", "status", status=503, retry_after="0")
    rc, _, err, took = analyze(api.write_kubeconfig(tmp_path / "config"))
    line = one_line(err)
    assert rc == 2 and took < DEADLINE + MARGIN
    assert "overloaded or not ready" in line and "HTTP 503" in line, line


def test_a_paging_api_server_loses_nothing(api: FaultyApiServer, tmp_path: Path) -> None:
    from graders.sources.live import read_cluster

    api.add_all(bookinfo_routing())
    kubeconfig = api.write_kubeconfig(tmp_path / "config")
    whole = read_cluster(CONTEXT, kubeconfig)
    api.page_size = 2  # the server returns at most 2 items per answer, with a continue token
    api.clear_requests()
    paged = read_cluster(CONTEXT, kubeconfig)
    key = sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in whole.objects)
    assert sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in paged.objects) == key
    pod_pages = [r for r in api.calls("list") if r.path == "/api/v1/pods"]
    assert len(pod_pages) > 2 and all(r.query.get("limit") for r in pod_pages)
    assert [bool(r.query.get("continue")) for r in pod_pages] == [False] + [True] * (len(pod_pages) - 1)
    rc, out, err, _ = analyze(kubeconfig, "-o", "json")
    assert (rc, err) == (0, "") and yaml.safe_load(out)["findings"] == []


# --- partial 403, truncated and invalid bodies ----------------------------------------------------------
def test_a_forbidden_list_names_the_resource(api: FaultyApiServer, tmp_path: Path) -> None:
    api.forbid("gateways", "networking.istio.io")
    rc, _, err, _ = analyze(api.write_kubeconfig(tmp_path / "config"))
    line = one_line(err)
    assert rc == 2 and "needs `list` on resource 'gateways' in API group networking.istio.io" in line, line


def test_forbidden_api_discovery_is_not_called_resource_empty(api: FaultyApiServer, tmp_path: Path) -> None:
    api.inject("/apis/networking.istio.io", "status", status=403)
    rc, _, err, _ = analyze(api.write_kubeconfig(tmp_path / "config"))
    line = one_line(err)
    assert rc == 2 and "may not read API discovery for group networking.istio.io" in line, line
    assert "resource ''" not in line


@pytest.mark.parametrize(("kind", "words"), [
    ("truncated", "the answer was cut off"),
    ("invalid", "did not answer /api/v1/pods with JSON; is this a Kubernetes API server?"),
])
def test_a_broken_body_is_one_line(api: FaultyApiServer, tmp_path: Path, kind: str, words: str) -> None:
    api.inject("/api/v1/pods", kind)
    rc, _, err, took = analyze(api.write_kubeconfig(tmp_path / "config"))
    line = one_line(err)
    assert rc == 2 and words in line and took < DEADLINE + MARGIN, line


# --- kubeconfig trouble: exec plugins, TLS, server URLs ---------------------------------------------------
def _exec_kubeconfig(tmp_path: Path, server: str, script: str) -> str:
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(f"#!{sys.executable}\n{script}")
    plugin.chmod(0o755)
    cfg = yaml.safe_load(Path(write_kubeconfig_for(tmp_path / "config", {CONTEXT: server})).read_text())
    cfg["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                        "interactiveMode": "Never"}}
    (tmp_path / "config").write_text(yaml.safe_dump(cfg))
    return str(tmp_path / "config")


def test_an_exec_plugin_that_hangs_is_stopped_at_the_deadline(api: FaultyApiServer, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    kubeconfig = _exec_kubeconfig(tmp_path, api.url, f"import os, time\nopen({str(pid_file)!r}, 'w').write("
                                                     "str(os.getpid()))\ntime.sleep(120)\n")
    rc, _, err, took = analyze(kubeconfig)
    line = one_line(err)
    assert rc == 2 and took < DEADLINE + MARGIN
    assert f"error: gave up after {DEADLINE} s (--deadline {DEADLINE}): the exec credential plugin `" in line, line
    assert "401" not in line and api.requests == [], "no request without credentials"
    assert wait_gone(int(pid_file.read_text())), "the hung plugin was left running"


def test_an_exec_plugin_that_fails_is_one_line_with_its_reason(api: FaultyApiServer, tmp_path: Path) -> None:
    kubeconfig = _exec_kubeconfig(tmp_path, api.url, "import sys\nsys.stderr.write('error: you must be logged in "
                                                     "to the server (run `cloud login`)\\n')\nsys.exit(1)\n")
    rc, _, err, _ = analyze(kubeconfig)
    line = one_line(err)
    assert rc == 2 and "ERROR:root" not in err
    assert "failed (exit code 1): error: you must be logged in to the server (run `cloud login`)" in line, line


def test_an_exec_plugin_that_works_is_used(api: FaultyApiServer, tmp_path: Path) -> None:
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": DEFAULT_TOKEN}}
    kubeconfig = _exec_kubeconfig(tmp_path, api.url, f"import json\nprint(json.dumps({credential!r}))\n")
    rc, _, err, _ = analyze(kubeconfig)
    assert (rc, err) == (0, "")


def test_insecure_skip_tls_verify_prints_no_warnings(tmp_path: Path) -> None:
    with FaultyApiServer(tls_cert=self_signed(tmp_path)) as api:
        cfg = yaml.safe_load(Path(api.write_kubeconfig(tmp_path / "config")).read_text())
        cfg["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
        (tmp_path / "config").write_text(yaml.safe_dump(cfg))
        rc, _, err, _ = analyze(str(tmp_path / "config"))
        assert api.requests, "the requests went over TLS to the server"
    assert (rc, err) == (0, "")


def test_an_empty_server_url_is_one_line_without_warnings(tmp_path: Path) -> None:
    rc, _, err, _ = analyze(write_kubeconfig_for(tmp_path / "config", {CONTEXT: ""}))
    line = one_line(err)
    assert rc == 2 and "has no usable server URL (server: '')" in line, line


def test_a_dns_failure_is_not_called_a_timeout(tmp_path: Path) -> None:
    rc, _, err, took = analyze(write_kubeconfig_for(tmp_path / "config", {CONTEXT: "https://no-such-host.invalid:6443"}))
    line = one_line(err)
    assert rc == 2 and took < DEADLINE + MARGIN
    assert "does not resolve (DNS)" in line and "timed out" not in line, line


# --- options are validated when parsed --------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["snapshot", "--timeout", "nan"], ["snapshot", "--timeout", "inf"],
                                  ["analyze", "--deadline", "0"], ["check", "1", "--deadline", "-3"],
                                  ["lab", "reset", "3", "--deadline", "inf"],
                                  ["grade", "x", "--lab", "lab01", "--out", "y", "--timeout", "inf"]])
def test_bad_seconds_are_refused_when_parsed(argv: list[str]) -> None:
    rc, _, err, _ = graders(*argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "positive, finite number of seconds" in err, err


# --- a grader-side failure is the grader's, never the learner's ------------------------------------------
def test_a_refused_port_forward_is_an_error_not_lost_points(api: FaultyApiServer, tmp_path: Path) -> None:
    reference = REPO / "labs/lab01/solutions/reference"
    api.add_all([d for f in sorted(reference.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d])
    with FakeGateway({"/productpage": "app"}, hosts=("bookinfo.example.com",)) as gw:
        api.set_portforward_backend(gw.address, 8080)
        kubeconfig = api.write_kubeconfig(tmp_path / "config")
        rc, out, err, _ = graders("check", "1", "--context", CONTEXT, "--kubeconfig", kubeconfig, "-o", "json")
        assert (rc, err) == (0, ""), out + err  # the solved lab passes when the grader may port-forward
        api.forbid("pods/portforward", verb="create", namespace="istio-system")
        rc, out, err, _ = graders("check", "1", "--context", CONTEXT, "--kubeconfig", kubeconfig, "-o", "json")
    line = one_line(err)
    assert rc == 2 and out == "", "no score at all rather than a wrong one"
    assert "could not open a port-forward to pod istio-system/istio-ingressgateway-" in line, line
    assert "refused it (HTTP 403: " in line and "costs no points" in line and "pods/portforward" in line
    assert "-+-+-" not in line and "audit-id" not in line.lower(), "no raw HTTP headers"


@pytest.mark.parametrize(("fault", "words"), [
    ({"kind": "status", "status": 500}, "could not open a port-forward to pod istio-system/istio-ingressgateway-"),
    ({"kind": "silence"}, "gave up after 2 s (--deadline 2): opening a port-forward to pod istio-system/"),
])
def test_a_broken_port_forward_is_the_graders_error(api: FaultyApiServer, tmp_path: Path, fault: dict,
                                                     words: str) -> None:
    from graders.deadline import Deadline
    from graders.errors import GraderError, GraderSideError
    from graders.probes import PortForward, probe

    api.inject("/api/v1/namespaces/istio-system/pods/", **fault)  # the port-forward, not the list of pods
    started = time.monotonic()
    expected = GraderSideError if fault["kind"] == "status" else GraderError  # silence: the deadline's error
    with pytest.raises(expected) as err, Deadline(DEADLINE):
        probe(PortForward(CONTEXT, api.write_kubeconfig(tmp_path / "config")), retries=3)
    assert words in str(err.value) and "-+-+-" not in str(err.value)
    assert time.monotonic() - started < DEADLINE + 3
