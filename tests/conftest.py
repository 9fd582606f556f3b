"""Shared fixtures. The fake API server (tests/fakeapi.py) stands in for a cluster; the real
``kubernetes`` client talks to it over HTTP on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `.venv/bin/pytest` (unlike `python -m pytest`) does not put the repository on sys.path.
REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from fakeapi import FakeApiServer, FakeGateway  # noqa: E402  (tests/ is on sys.path: pytest's rootdir-less import mode)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kubernetes client honours proxy variables even for 127.0.0.1; tests talk to loopback only."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    if request.node.get_closest_marker("kind") is None:
        # Never fall back to a developer's own kubeconfig (tests marked `kind` are meant to use it).
        monkeypatch.delenv("KUBECONFIG", raising=False)


@pytest.fixture
def fake_api() -> Iterator[FakeApiServer]:
    """A running fake API server seeded with the course cluster (Istio installed, Bookinfo running)."""
    with FakeApiServer() as api:
        yield api


@pytest.fixture
def fake_kubeconfig(fake_api: FakeApiServer, tmp_path: Path) -> str:
    """Path of a kubeconfig whose context ``kind-istio-lab`` (also the current one) points at ``fake_api``."""
    return fake_api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def fake_gateway() -> Iterator[FakeGateway]:
    """An HTTP server answering like the ingress gateway (/productpage -> Bookinfo, else 404 NR).
    Wire it behind ``fake_api``'s port-forward with ``fake_api.set_portforward_backend(gw.address, 8080)``,
    or probe ``gw.url`` directly as if it were the kind host port."""
    with FakeGateway() as gw:
        yield gw
