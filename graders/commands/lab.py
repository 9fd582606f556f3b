"""``python -m graders lab list|setup|solve|reset``: put the course cluster in a lab's state.

These write to the cluster, and only to objects carrying the course's labels.
"""

from __future__ import annotations

import argparse

from graders import versions
from graders.deadline import DEFAULT_WRITE_DEADLINE, seconds_arg

CONTEXT = f"kind-{versions.CLUSTER_NAME}"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("lab", help="set up, solve or reset a lab on the course cluster (writes to it)",
                            description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    ls = actions.add_parser("list", help="the labs and what setup/solve/reset do for each")
    ls.set_defaults(func=run_list)
    helps = {
        "setup": "remove earlier labs' objects, restore the baseline, apply the lab's start state",
        "solve": "apply the lab's reference solution (labs/labNN/solutions/reference)",
        "reset": "delete what the lab created (only objects with the course labels) and restore the baseline",
    }
    for name, text in helps.items():
        p = actions.add_parser(name, help=text, description=text[:1].upper() + text[1:] + ". Exit codes: 0 done, "
                               "1 an object that is not the course's was in the way (left unchanged), 2 bad input "
                               "or the cluster is unreachable.")
        if name == "reset":
            p.add_argument("lab", nargs="?", help="lab number: 1, 01 or lab01")
            p.add_argument("--all", action="store_true", help="reset every lab")
        else:
            p.add_argument("lab", help="lab number: 1, 01 or lab01")
        p.add_argument("--context", default=CONTEXT, help=f"kube context (default {CONTEXT})")
        p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
        p.add_argument("--timeout", type=seconds_arg, default=300.0, help="seconds to wait for rollouts (default 300)")
        p.add_argument("--deadline", type=seconds_arg, default=DEFAULT_WRITE_DEADLINE, metavar="SECONDS",
                       help="seconds any one step against the API server may take, credential plugin included "
                            f"(default {DEFAULT_WRITE_DEADLINE:g}); past it the command stops with one line naming "
                            "the step")
        p.add_argument("--dry-run", action="store_true", help="print what would be applied, run and deleted "
                                                              "(and which namespaces kept, and why: the cluster is "
                                                              "read, GET only); change nothing")
        p.set_defaults(func=run_action)


def run_list(args: argparse.Namespace) -> int:
    from graders.labenv.labspec import load_all

    for spec in load_all():
        print(f"lab{spec.id}  {spec.title}")
        if spec.summary:
            print(f"       {spec.summary}")
        for phase in ("setup", "solve", "reset"):
            steps = "; ".join(s.describe() for s in spec.steps(phase)) or "-"
            print(f"       {phase:<6} {steps}")
    return 0


def run_action(args: argparse.Namespace) -> int:
    import os
    from functools import partial

    from graders.errors import InputError
    from graders.labenv import labops, labspec, preflight
    from graders.labenv.kube import Kube
    from graders.labenv.runner import Runner

    if args.action == "reset" and bool(args.lab) == bool(args.all):
        raise InputError("lab reset needs a lab number or --all (not both), e.g. `python -m graders lab reset 3`")
    spec = labspec.load(args.lab) if args.lab else None
    tools = preflight.Toolchain(dict(os.environ))
    tools.which("istioctl", versions.ISTIO_VERSION)  # also finds it in ./istio-X.Y.Z/bin, as doctor does
    runner = Runner(dry_run=args.dry_run, env=tools.run_env())
    env = labops.LabEnv(runner, args.context, args.kubeconfig, rollout_timeout=args.timeout,
                        kube_factory=partial(Kube, step_deadline=args.deadline))
    try:
        if args.action == "setup":
            return labops.setup(env, spec)
        if args.action == "solve":
            return labops.solve(env, spec)
        return labops.reset(env, spec)
    finally:
        env.close()
