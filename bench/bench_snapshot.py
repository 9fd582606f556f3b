"""Benchmark: write and re-read snapshots of big clusters (5,000 and 50,000 pods by default).

    .venv/bin/python bench/bench_snapshot.py [--pods 5000 50000]

For each size, the course's cluster plus N pods (shaped like real ones: labels, annotations, an
owner reference, two containers with ports, four conditions; managedFields are dropped by the
reader as on a real cluster) is served by the fake API server (tests/fakeapi.py) over HTTP on
127.0.0.1, and the real CLI runs in a subprocess:

- write: ``python -m graders snapshot --kubeconfig K -o FILE`` (list every kind, write JSON);
- re-read: graders.yamlio only (parse); ``load_state`` (parse and build the state); and
  ``python -m graders analyze --snapshot FILE -o json`` (parse, build the state, analyze);
- for comparison, the same snapshot as YAML (what ``kubectl get -o yaml`` gives), parsed by
  graders.yamlio only, while it is under the YAML size limit.

Seconds of wall time and the peak RSS of each subprocess (``wait4``) go to
bench/results/snapshot.json, with the load average, since other work on the machine slows wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from fakeapi import FakeApiServer  # noqa: E402

CONTEXT = "kind-istio-lab"


def pod(i: int) -> dict:
    ns, app = f"team-{i % 200}", f"app-{i % 500}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{app}-7d9f8c6b5-{i:05d}", "namespace": ns,
            "labels": {"app": app, "version": "v1", "pod-template-hash": "7d9f8c6b5",
                       "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": app},
            "annotations": {"sidecar.istio.io/status":
                            '{"initContainers":["istio-init"],"containers":["istio-proxy"]}'},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-7d9f8c6b5",
                                 "uid": f"rs-{i % 500}", "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"containers": [{"name": app, "image": f"registry.example.com/{app}:1.2.3",
                                 "ports": [{"containerPort": 9080, "protocol": "TCP"}]},
                                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3",
                                 "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}]}],
                 "nodeName": f"node-{i % 50}", "serviceAccountName": "default"},
        "status": {"phase": "Running", "podIP": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z"}
                                  for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]},
    }


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (MiB) of that process alone, exit code, load average."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "exit_code": os.waitstatus_to_exitcode(status), "load_before": round(load, 2),
            "stderr_tail": err.strip().splitlines()[-1:] if err.strip() else []}


def bench(pods: int, work: Path) -> dict:
    py = sys.executable
    snap = work / f"snapshot-{pods}.json"
    with FakeApiServer() as api:
        api.add_all({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{t}"}}
                    for t in range(min(pods, 200)))
        api.add_all(pod(i) for i in range(pods))
        kubeconfig = api.write_kubeconfig(work / "kubeconfig")
        write = timed([py, "-m", "graders", "snapshot", "--context", CONTEXT, "--kubeconfig", kubeconfig,
                       "--timeout", "60", "-o", str(snap)])
    row = {"pods": pods, "file_mib": round(snap.stat().st_size / 2**20, 1) if snap.exists() else None,
           "write": write}
    row["reread_parse_only"] = timed([py, "-c", "from pathlib import Path; from graders.yamlio import "
                                      f"load_documents; load_documents(Path({str(snap)!r}))"])
    row["reread_load_state"] = timed([py, "-c", "from graders.sources import load_state; "
                                      f"load_state(snapshot={str(snap)!r})"])
    row["reread_analyze"] = timed([py, "-m", "graders", "analyze", "--snapshot", str(snap), "-o", "json"])
    # The same objects as YAML (kubectl get -o yaml), parsed only, while under the YAML limit (the
    # YAML is about as large as the JSON).
    from graders import yamlio

    if snap.stat().st_size <= yamlio.MAX_FILE_BYTES * 0.9:
        import yaml

        yml = work / f"snapshot-{pods}.yaml"
        doc = json.loads(snap.read_text())
        yml.write_text(yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False))
        del doc
        row["yaml_mib"] = round(yml.stat().st_size / 2**20, 1)
        code = ("from pathlib import Path; from graders.yamlio import load_documents; "
                f"load_documents(Path({str(yml)!r}))")
        row["yaml_parse_only"] = timed([py, "-c", code])
        yml.unlink()
    else:
        row["yaml_parse_only"] = f"not measured: as YAML over the {yamlio.MAX_FILE_BYTES // 2**20} MiB limit"
    snap.unlink(missing_ok=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[5000, 50000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        for n in args.pods:
            rows.append(bench(n, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "arch": platform.machine()},
              "runs": rows}
    out = REPO / "bench" / "results" / "snapshot.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
