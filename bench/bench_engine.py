"""Benchmark the grading engine at class-cluster scale (not a timed test: the README reports it).

Builds a state of about 10,000 objects across 1,000 namespaces with 2,000 Gateways, all
selecting the one ingress gateway (the worst case for conflict detection: every server lands on
the same workload), then times state building, ``analyze`` and ``trace``. A second run doubles
the Gateways that all share host ``*`` on one listener, to show conflict detection grows
linearly. Results go to stdout and bench/results/engine.json.

    .venv/bin/python bench/bench_engine.py
"""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graders.analyzers import analyze
from graders.objects import RawObject
from graders.sources.build import build_state
from graders.sources.simulated import baseline_objects, render_operators
from graders.trace import Request, trace

NAMESPACES = 1000
GATEWAYS_PER_NS = 2


def namespace_objects(i: int) -> list[dict]:
    ns = f"team-{i:04d}"
    objs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    for version in ("v1", "v2"):  # a stable and a canary Deployment behind one Service
        labels = {"app": "web", "version": version}
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": f"web-{version}", "namespace": ns},
                     "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels},
                                           "spec": {"containers": [{"name": "web", "image": "nginx",
                                                                    "ports": [{"containerPort": 8000}]}]}}}})
    objs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
                 "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8000}]}})
    for g in range(GATEWAYS_PER_NS):
        host = f"app{g}.{ns}.example.com"
        port = 80 if g == 0 else 8080  # both resolve to listener 8080
        objs.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                     "metadata": {"name": f"gw-{g}", "namespace": ns},
                     "spec": {"selector": {"istio": "ingressgateway"},
                              "servers": [{"port": {"number": port, "name": "http", "protocol": "HTTP"},
                                           "hosts": [host]}]}})
        objs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": f"vs-{g}", "namespace": ns},
                     "spec": {"hosts": [host], "gateways": [f"gw-{g}"],
                              "http": [{"match": [{"uri": {"prefix": "/api"}}],
                                        "route": [{"destination": {"host": "web", "port": {"number": 80}}}]},
                                       {"route": [{"destination": {"host": "web"}}]}]}})
    return objs


def timed(fn, repeat: int = 1):
    start = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    return result, (time.perf_counter() - start) / repeat


def best_of(n: int, fn):
    best = None
    for _ in range(n):
        result, t = timed(fn)
        best = t if best is None else min(best, t)
    return result, best


def star_gateways(n: int) -> list[dict]:
    return [{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
             "metadata": {"name": f"star-{i}", "namespace": "default"},
             "spec": {"selector": {"istio": "ingressgateway"},
                      "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}
            for i in range(n)]


def main() -> dict:
    base = render_operators(baseline_objects())
    raw_dicts = [o for i in range(NAMESPACES) for o in namespace_objects(i)]
    raws = base + [RawObject(o, "bench", 1000 + i) for i, o in enumerate(raw_dicts)]
    state, t_build = timed(lambda: build_state(raws, "simulated"))
    n_objects = sum(len(getattr(state, f)) for f in ("namespaces", "pods", "deployments", "services", "gateways",
                                                     "virtual_services"))
    findings, t_analyze = timed(lambda: analyze(state))
    requests = [Request(host=f"app{i % 2}.team-{i:04d}.example.com", path="/api/items") for i in range(0, 1000, 10)]
    traces, t_trace_total = timed(lambda: [trace(state, r) for r in requests])
    assert all(t.outcome == "ok" for t in traces), {t.outcome for t in traces}
    scaling = {}
    for n in (1000, 2000, 4000):
        s = build_state(base + [RawObject(o, "bench", 10 + i) for i, o in enumerate(star_gateways(n))], "simulated")
        f, t = best_of(3, lambda s=s: analyze(s))
        scaling[n] = {"seconds": round(t, 3), "conflicts": sum(1 for x in f if x.code == "GW-CONFLICT")}
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "objects": n_objects, "namespaces": NAMESPACES, "gateways": len(state.gateways),
        "build_seconds": round(t_build, 3), "analyze_seconds": round(t_analyze, 3),
        "findings": len(findings), "trace_ms_each": round(1000 * t_trace_total / len(requests), 2),
        "conflict_scaling_all_star": scaling,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = Path(__file__).parent / "results" / "engine.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
