"""VirtualService rule order: rules written after a catch-all rule are never built.

istiod builds one VirtualService's routes in order and stops at the first catch-all (no match,
prefix ``/`` or regex ``.*``, with no header or query conditions), since Envoy takes the first
matching route. istioctl's IST0130 flags only rules after a rule with no match at all; after a
``prefix: /`` match, which ends the list just as surely, it has only IST0131 (info) for later
rules matching on a URI prefix. A catch-all that is limited to some gateways,
a port or a source only ends the list where it applies, so it is not flagged here."""

from __future__ import annotations

from collections.abc import Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.state import HttpMatch, HttpRoute, State


def _takes_everything(m: HttpMatch) -> bool:
    return m.catch_all and not (m.gateways or m.port is not None or m.source_labels or m.source_namespace)


def _why(rule: HttpRoute) -> str:
    if not rule.matches:
        return "it has no match"
    m = next(m for m in rule.matches if _takes_everything(m))
    return f"its match uri {m.uri.describe()}" if m.uri else "its match has no conditions"


def _name(rule: HttpRoute) -> str:
    return f"http[{rule.index}]" + (f" '{rule.name}'" if rule.name else "")


def run(state: State) -> Iterator[Finding]:
    for vs in state.virtual_services:
        first = next((r for r in vs.http if not r.matches or any(_takes_everything(m) for m in r.matches)), None)
        later = [r for r in vs.http if first is not None and r.index > first.index]
        if first is None or not later:
            continue
        one = len(later) == 1
        yield finding("VS-RULE-UNREACHABLE", [vs.meta.ref], origin=vs.meta.origin, vs=vs.meta.key,
                      rules=", ".join(_name(r) for r in later), verb="comes" if one else "come",
                      catch_all=_name(first), why=_why(first), these="it" if one else "they",
                      reach="reaches" if one else "reach", them="it" if one else "them")


ANALYZER = Analyzer("vs-rules", reads=("VirtualService",), codes=("VS-RULE-UNREACHABLE",), run=run)
