"""ISTIO-NOT-INSTALLED: without the networking.istio.io CRDs nothing else here applies."""

from __future__ import annotations

from collections.abc import Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.state import State


def run(state: State) -> Iterator[Finding]:
    if not state.istio_installed:
        yield finding("ISTIO-NOT-INSTALLED", ["CustomResourceDefinition gateways.networking.istio.io"],
                      where=state.description or "The cluster")


ANALYZER = Analyzer("istio-installed", ("CustomResourceDefinition",), ("ISTIO-NOT-INSTALLED",), run)
