"""``python -m graders doctor``: is this machine ready for the course cluster?"""

from __future__ import annotations

import argparse

from graders import versions


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check docker, kind, kubectl, istioctl, ports and memory for the course cluster",
                       description="Check what `cluster up` needs: the container runtime answers, kind, kubectl and "
                                   "istioctl are on PATH in versions that fit the course's pins, the host ports are "
                                   "free and there is enough memory. Every problem comes with the command that fixes "
                                   "it (printed, never run). Exit codes: 0 ready, 1 problems found.")
    p.add_argument("--name", default=versions.CLUSTER_NAME, help="kind cluster name (its ports are not re-checked "
                                                                 "once it exists)")
    p.add_argument("--istio-version", default=versions.ISTIO_VERSION, help="the Istio version istioctl must be")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--https-port", type=int, default=8443)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from graders.labenv import cluster, preflight
    from graders.labenv.runner import Runner

    opts = cluster.ClusterOptions(name=args.name, istio_version=args.istio_version, http_port=args.http_port,
                                  https_port=args.https_port)
    opts.validate()
    runner = Runner()
    checks = preflight.run_checks(runner, preflight.Toolchain(dict(os.environ)), istio_version=opts.istio_version,
                                  ports=opts.host_ports(), name=opts.name)
    failed = any(c.status == preflight.FAIL for c in checks)
    if args.output == "json":
        print(json.dumps({"ok": not failed, "pinned": versions.pinned_toolchain(),
                          "checks": [c.to_json() for c in checks]}, indent=2))
    else:
        print(preflight.render(checks))
    return 1 if failed else 0
