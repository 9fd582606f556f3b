"""The lab environment on a real kind cluster: `cluster up`, then for every lab
setup -> check fails -> solve -> check passes -> reset, then `lab reset --all`.

Run with `pytest -m kind tests/kind` on a machine where `python -m graders cluster up` has created
the course cluster (kind cluster istio-lab, context kind-istio-lab). Skipped, with the reason,
when that cluster cannot be reached. It writes to that cluster, and only to the course's objects.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from graders import versions

pytestmark = pytest.mark.kind

REPO = Path(__file__).resolve().parents[2]
CONTEXT = f"kind-{versions.CLUSTER_NAME}"
LABS = ("01", "02", "03", "04", "05")
# Envoy gets new configuration from istiod a moment after the API accepts it, and new pods need to
# start: checks that send real requests are retried for this long before a failure counts.
SETTLE_SECONDS = 120


def graders(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graders", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _skip_reason() -> str | None:
    kind = shutil.which("kind")
    if kind is None:
        return "kind is not on PATH"
    try:
        clusters = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`kind get clusters` failed: {err}"
    if versions.CLUSTER_NAME not in clusters.stdout.split():
        return f"no kind cluster {versions.CLUSTER_NAME}; create it with `python -m graders cluster up`"
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not on PATH"
    nodes = subprocess.run([kubectl, "--context", CONTEXT, "get", "nodes", "-o", "name"], capture_output=True,
                           text=True, timeout=30, check=False)
    if nodes.returncode != 0:
        return f"context {CONTEXT} is not reachable: {nodes.stderr.strip()[:200]}"
    if shutil.which("istioctl") is None:
        return "istioctl is not on PATH (labs 4 and 5 install with it)"
    return None


@pytest.fixture(scope="module")
def cluster() -> str:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    return CONTEXT


def check(lab: str) -> tuple[bool, dict]:
    """(all checks passed, the JSON result) of `python -m graders check LAB --context ... -o json`."""
    res = graders("check", f"lab{lab}", "--context", CONTEXT, "-o", "json", timeout=300)
    assert res.returncode in (0, 1), f"check lab{lab} failed to run: {res.stderr}"
    result = json.loads(res.stdout)
    assert result["mode"] == "live", result
    return res.returncode == 0, result


def check_until_passing(lab: str) -> tuple[bool, dict]:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        ok, result = check(lab)
        if ok or time.monotonic() > deadline:
            return ok, result
        time.sleep(5)


def course_objects(lab: str) -> list[str]:
    selector = f"{versions.COURSE_LABEL}={versions.COURSE_NAME},{versions.LAB_LABEL}={lab}"
    res = subprocess.run(["kubectl", "--context", CONTEXT, "get",
                          "deploy,svc,sa,gateways.networking.istio.io,virtualservices.networking.istio.io,"
                          "destinationrules.networking.istio.io,serviceentries.networking.istio.io,ns",
                          "-A", "-l", selector, "-o", "name"], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_cluster_up_on_an_existing_cluster_changes_nothing(cluster: str) -> None:
    res = graders("cluster", "up")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "exists already" in res.stdout
    assert "http://127.0.0.1:8080/productpage" in res.stdout


@pytest.mark.parametrize("lab", LABS)
def test_lab_setup_check_solve_check_reset(cluster: str, lab: str) -> None:
    res = graders("lab", "setup", lab)
    assert res.returncode == 0, res.stdout + res.stderr
    ok, before = check(lab)
    assert not ok, f"lab {lab}'s start state already passes: {before}"

    res = graders("lab", "solve", lab)
    assert res.returncode == 0, res.stdout + res.stderr
    ok, after = check_until_passing(lab)
    failing = [(c["id"], c["message"]) for c in after["checks"] if not c["passed"]]
    assert ok and not failing, f"lab {lab}'s reference solution fails on the real cluster: {failing}"

    res = graders("lab", "reset", lab)
    assert res.returncode == 0, res.stdout + res.stderr
    assert course_objects(lab) == [], f"lab {lab}'s objects survived reset"


def test_lab1_solution_answers_on_the_host_port(cluster: str) -> None:
    assert graders("lab", "setup", "1").returncode == 0
    assert graders("lab", "solve", "1").returncode == 0
    try:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            req = urllib.request.Request("http://127.0.0.1:8080/productpage", headers={"Host": "bookinfo.example.com"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    body = resp.read().decode("utf-8", "replace")
                    assert resp.status == 200 and "Simple Bookstore App" in body
                    break
            except (urllib.error.URLError, ConnectionError) as err:
                if time.monotonic() > deadline:
                    raise AssertionError(f"http://127.0.0.1:8080/productpage never answered: {err}") from err
                time.sleep(3)
    finally:
        assert graders("lab", "reset", "1").returncode == 0


def test_reset_all_leaves_only_the_baseline(cluster: str) -> None:
    res = graders("lab", "reset", "--all")
    assert res.returncode == 0, res.stdout + res.stderr
    for lab in LABS:
        assert course_objects(lab) == []
    assert course_objects("baseline") or "kept" in res.stdout, "Bookinfo is still there (labelled or the learner's)"
