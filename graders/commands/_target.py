"""Arguments shared by every command that reads a cluster state (analyze, trace, check)."""

from __future__ import annotations

import argparse

from graders import deadline
from graders.state import State


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="YAML files or directories laid over the cluster state (a preview of kubectl apply)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--snapshot", metavar="FILE", help="read the cluster state from a snapshot file "
                     "(python -m graders snapshot, or kubectl get ... -A -o yaml)")
    src.add_argument("--context", metavar="NAME", help="read a live cluster through this kubeconfig context "
                     "(kind clusters: kind-<name>)")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    deadline.add_argument(p)
    p.add_argument("--secret-names", action="store_true",  # h9-tls (issue #14)
                   help="with --context: also list Secret names (metadata only, never their data) in the gateway "
                        "and Gateway namespaces, to verify TLS credentials; needs the optional Role in "
                        "deploy/rbac/grader-secret-names.yaml")
    p.add_argument("--no-baseline", action="store_true",
                   help="analyze only the PATHs, without the simulated lab cluster underneath")


def load_target(args: argparse.Namespace) -> State:
    from graders.errors import InputError
    from graders.sources import load_state

    if args.no_baseline and (args.snapshot or args.context):
        raise InputError("--no-baseline only applies to the simulated cluster; drop it with --snapshot/--context")
    if args.secret_names and not (args.context or args.kubeconfig):
        raise InputError("--secret-names lists Secrets of a live cluster: add --context NAME")
    with deadline.cluster_scope(args.deadline, live=bool(args.context or args.kubeconfig)):
        return load_state(args.paths, snapshot=args.snapshot, context=args.context, kubeconfig=args.kubeconfig,
                          baseline=not args.no_baseline, secret_names=args.secret_names)
