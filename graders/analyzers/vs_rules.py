"""VirtualService rule order: rules that can never receive a request.

Two ways a rule of one VirtualService is dead, both because Envoy takes the first route that
matches and istiod keeps one VirtualService's rules in the order written:

1. It comes after a catch-all rule (no match, prefix ``/`` or regex ``.*``, with no header or query
   conditions): istiod stops building the VirtualService's routes there
   (pilot/pkg/networking/core/route/route.go, BuildHTTPRoutesForVirtualService breaks on
   IsCatchAllRoute). A catch-all that is limited to some gateways, a port or a source only ends
   the list where it applies, so it is not flagged.
2. Every one of its matches repeats, or is covered by, a match of an earlier rule (``prefix: /api``
   before ``prefix: /api/v1``; the same match written twice): the earlier route takes each of its
   requests. Coverage is decided condition by condition, conservatively (a regex covers only the
   identical regex, or ``.*``).

istioctl's IST0130 (VirtualServiceUnreachableRule) is not an analyzer of its own: istiod's
VirtualService validation raises it as a warning (pkg/config/validation/validation.go:1847-1853,
analyzeUnreachableHTTPRules at :2053), which `istioctl analyze` reports through the schema
analyzer (pkg/config/analysis/analyzers/schema/validation.go:100). It fires for a rule after a rule
with no match at all (validation.go:2063-2075) and for a rule whose matches are all identical, as
JSON without their names, to earlier rules' matches (:2077-2093). A uri-prefix match covered by an
earlier uri prefix with the same other conditions gets only IST0131 (VirtualServiceIneffectiveMatch,
info, coveredValidation at :1974 and :2096-2113); so does a prefix rule after a ``prefix: /``
match, and an exact-uri rule after it gets nothing. Here all are VS-RULE-UNREACHABLE: the rule is
dead either way."""

from __future__ import annotations

from collections.abc import Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.state import HttpMatch, HttpRoute, State, StringMatch


def _takes_everything(m: HttpMatch) -> bool:
    return m.catch_all and not (m.gateways or m.port is not None or m.source_labels or m.source_namespace)


def _why(rule: HttpRoute) -> str:
    if not rule.matches:
        return "it has no match"
    m = next(m for m in rule.matches if _takes_everything(m))
    return f"its match uri {m.uri.describe()}" if m.uri else "its match has no conditions"


def _name(rule: HttpRoute) -> str:
    return f"http[{rule.index}]" + (f" '{rule.name}'" if rule.name else "")


def string_covers(a: StringMatch | None, b: StringMatch | None, *, fold_a: bool = False, fold_b: bool = False) -> bool:
    """Does condition ``a`` accept every value condition ``b`` accepts? None means no condition."""
    if a is None or (a.kind == "regex" and a.value == ".*"):
        return True
    if b is None or b.kind == "present":
        return False
    if a.kind == "present":
        return True  # b requires the header (or parameter) with some value
    if fold_b and not fold_a:
        return False  # b also accepts other casings
    av, bv = (a.value.lower(), b.value.lower()) if fold_a else (a.value, b.value)
    if a.kind == b.kind and av == bv:
        return True
    return a.kind == "prefix" and b.kind in ("exact", "prefix") and bv.startswith(av)


def _map_covers(a: tuple[tuple[str, StringMatch], ...], b: tuple[tuple[str, StringMatch], ...]) -> bool:
    other = dict(b)
    return all(name in other and string_covers(cond, other[name]) for name, cond in a)


def match_covers(a: HttpMatch, b: HttpMatch) -> bool:
    """Does every request that ``b`` matches also match ``a`` (so a route for ``a`` placed first
    leaves ``b``'s route nothing)?"""
    def fold(m: HttpMatch) -> bool:
        return m.ignore_uri_case and m.uri is not None and m.uri.kind != "regex"

    return (
        string_covers(a.uri, b.uri, fold_a=fold(a), fold_b=fold(b))
        and all(string_covers(x, y) for x, y in ((a.method, b.method), (a.authority, b.authority),
                                                 (a.scheme, b.scheme)))
        and _map_covers(a.headers, b.headers) and _map_covers(a.query_params, b.query_params)
        and set(a.without_headers) <= set(b.without_headers)
        and (a.port is None or a.port == b.port)
        and (not a.gateways or (bool(b.gateways) and set(b.gateways) <= set(a.gateways)))
        and all(b.source_labels.get(k) == v for k, v in a.source_labels.items())
        and (not a.source_namespace or a.source_namespace == b.source_namespace)
    )


def _describe(m: HttpMatch) -> str:
    parts = [f"uri {m.uri.describe()}" if m.uri else ""]
    parts += [f"{k} {v.describe()}" for k, v in (("method", m.method), ("authority", m.authority),
                                                  ("scheme", m.scheme)) if v]
    parts += [f"header {n} {c.describe()}" for n, c in m.headers]
    parts += [f"query {n} {c.describe()}" for n, c in m.query_params]
    parts += [f"port {m.port}"] if m.port is not None else []
    return ", ".join(p for p in parts if p) or "no conditions"


def _coverers(earlier: list[HttpRoute], rule: HttpRoute) -> list[tuple[HttpMatch, HttpRoute, HttpMatch]] | None:
    """For each match of ``rule``, the earlier rule and match that take its requests (None if some
    match of ``rule`` is reachable)."""
    out = []
    for m in rule.matches:
        hit = next(((r, a) for r in earlier for a in r.matches if match_covers(a, m)), None)
        if hit is None:
            return None
        out.append((m, *hit))
    return out


def _after_code(first: HttpRoute, prefix_slash: bool) -> str | None:
    """What istioctl says about the same rules: IST0130 after a rule with no match, at most IST0131
    after a ``prefix: /`` match, nothing after ``regex: .*`` or an empty match."""
    if not first.matches:
        return "IST0130"
    return "IST0131" if prefix_slash else None


def _after_catch_all(vs_key: str, origin: str, ref: str, first: HttpRoute, later: list[HttpRoute]) -> Finding:
    one = len(later) == 1
    these, reach, them = ("it", "reaches", "it") if one else ("they", "reach", "them")
    m = next((m for m in first.matches if _takes_everything(m)), None)
    prefix_slash = m is not None and m.uri is not None and m.uri.kind == "prefix"
    return finding(
        "VS-RULE-UNREACHABLE", [ref], origin=origin, istio_code=_after_code(first, prefix_slash),
        vs=vs_key, rules=", ".join(_name(r) for r in later),
        verb="comes" if one else "come", catch_all=_name(first),
        takes=f"takes every request ({_why(first)})",
        mechanism=(f"; it even stops building them at the first catch-all rule, so {these} never {reach} Envoy, "
                   f"and moving catch-alls last (across VirtualServices) does not bring {them} back"),
        fix=f"move {_name(first)} to the end of spec.http, or give it a match that leaves room for the rules "
            "below it.")


def _covered(vs_key: str, origin: str, ref: str, rule: HttpRoute,
             cover: list[tuple[HttpMatch, HttpRoute, HttpMatch]]) -> Finding:
    by = list(dict.fromkeys(_name(r) for _, r, _ in cover))
    how = "; ".join(f"{_describe(a)} ({_name(r)}) " + ("repeats" if a == m else "covers") + f" {_describe(m)}"
                    for m, r, a in cover)
    repeats_only = all(a == m for m, _, a in cover)
    return finding(
        "VS-RULE-UNREACHABLE", [ref], origin=origin, istio_code="IST0130" if repeats_only else "IST0131",
        vs=vs_key, rules=_name(rule), verb="comes",
        catch_all=", ".join(by), takes=f"already takes every request it matches ({how})",
        mechanism=", so it never receives a request",
        fix=f"put {_name(rule)} before {by[0]} if it is the more specific rule, or remove the repeated match.")


def run(state: State) -> Iterator[Finding]:
    for vs in state.virtual_services:
        meta = vs.meta
        first = next((r for r in vs.http if not r.matches or any(_takes_everything(m) for m in r.matches)), None)
        end = first.index if first is not None else len(vs.http)
        for rule in vs.http[:end]:
            cover = _coverers(list(vs.http[:rule.index]), rule) if rule.matches else None
            if cover:
                yield _covered(meta.key, meta.origin, meta.ref, rule, cover)
        later = [r for r in vs.http if r.index > end]
        if first is not None and later:
            yield _after_catch_all(meta.key, meta.origin, meta.ref, first, later)


ANALYZER = Analyzer("vs-rules", reads=("VirtualService",), codes=("VS-RULE-UNREACHABLE",), run=run)
