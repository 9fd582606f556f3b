"""Analyzers: one small module per concern, each declaring the kinds it reads and the codes it
may emit; every message comes from ``graders.catalogue``.

``analyze(state)`` runs them all and returns findings sorted by severity, then code. Loading
problems (MANIFEST-INVALID) found while building the state are part of the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from graders.catalogue import Finding, sort_findings
from graders.state import State


@dataclass(frozen=True)
class Analyzer:
    name: str
    reads: tuple[str, ...]
    codes: tuple[str, ...]
    run: Callable[[State], Iterable[Finding]]


def _registry() -> tuple[Analyzer, ...]:
    from graders.analyzers import (
        gateway_conflicts,
        gateway_ports,
        gateway_reachability,
        gateway_selector,
        gateway_tls,
        gateway_visibility,
        gwapi,
        istio_installed,
        vs_destinations,
        vs_gateways,
        vs_rules,
    )

    return (
        istio_installed.ANALYZER,
        gateway_selector.ANALYZER,
        gateway_ports.ANALYZER,
        gateway_conflicts.ANALYZER,
        gateway_reachability.ANALYZER,
        vs_gateways.ANALYZER,
        vs_destinations.ANALYZER,
        vs_rules.ANALYZER,
        gateway_visibility.ANALYZER,
        gateway_tls.ANALYZER,  # h9-tls (issue #14)
        gwapi.ANALYZER,  # h10-gwapi (issue #15)
    )


def analyzers() -> tuple[Analyzer, ...]:
    return _registry()


def analyze(state: State) -> list[Finding]:
    findings: list[Finding] = list(state.load_findings)
    for analyzer in _registry():
        findings.extend(analyzer.run(state))
    return sort_findings(findings)
