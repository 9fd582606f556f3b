"""``python -m graders cluster up|down``: the course's kind cluster with Istio and Bookinfo."""

from __future__ import annotations

import argparse

from graders import versions

HELP_UP = (
    "Create the course cluster: kind cluster (node image pinned by digest), Istio via istioctl and "
    "labs/cluster/istio-operator.yaml, namespaces, Bookinfo; then wait for the rollouts. Running it again changes "
    "nothing that is already in place. The first run pulls the kind node image and the Istio and Bookinfo images. "
    "Exit codes: 0 ready, 1 preflight problems, 2 a step failed or the cluster is unreachable."
)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=versions.CLUSTER_NAME, help=f"kind cluster name (default {versions.CLUSTER_NAME})")
    p.add_argument("--kubeconfig", help="kubeconfig file kind writes and the course reads (default: $KUBECONFIG or "
                                        "~/.kube/config)")
    p.add_argument("--dry-run", action="store_true", help="print every command and file it would use; run nothing")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cluster", help="create or delete the course's kind cluster (writes to your machine)",
                            description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    up = actions.add_parser("up", help="create the kind cluster, install Istio and Bookinfo", description=HELP_UP)
    _common(up)
    up.add_argument("--istio-version", default=versions.ISTIO_VERSION,
                    help=f"the Istio version your istioctl must be (default {versions.ISTIO_VERSION})")
    up.add_argument("--http-port", type=int, default=8080, help="host port for the gateway's HTTP port (default 8080)")
    up.add_argument("--https-port", type=int, default=8443, help="host port for its HTTPS port (default 8443)")
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for rollouts (default 300)")
    up.set_defaults(func=run_up)
    down = actions.add_parser("down", help="delete the course's kind cluster (and only that one)",
                              description="Delete the kind cluster `cluster up` created. A cluster whose node lacks "
                                          "the course's marker label is left alone. Exit codes: 0 deleted or absent, "
                                          "1 refused, 2 a step failed.")
    _common(down)
    down.set_defaults(func=run_down)


def _runner(args: argparse.Namespace):
    from graders.labenv.runner import Runner

    return Runner(dry_run=args.dry_run)


def run_up(args: argparse.Namespace) -> int:
    import os

    from graders.labenv import cluster, preflight

    opts = cluster.ClusterOptions(name=args.name, istio_version=args.istio_version, http_port=args.http_port,
                                  https_port=args.https_port, kubeconfig=args.kubeconfig, rollout_timeout=args.timeout)
    return cluster.up(opts, _runner(args), preflight.Toolchain(dict(os.environ)))


def run_down(args: argparse.Namespace) -> int:
    from graders.labenv import cluster

    return cluster.down(cluster.ClusterOptions(name=args.name, kubeconfig=args.kubeconfig), _runner(args))
