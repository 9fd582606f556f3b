"""``python -m graders get TYPE[,TYPE...] [NAME...] [PATH...]``: look at the cluster the graders see,
the way ``kubectl get`` shows it, in every mode (read-only; never Secrets or ConfigMaps).

Without --snapshot/--context it shows the simulated lab cluster, with the YAML of any PATH laid over
it (as ``kubectl apply`` would): ``python -m graders get gateway,virtualservice -A labs/lab01/work``.
Simulated and snapshot views say so in one line on stderr, so stdout stays kubectl's table.
Exit codes: 0 shown (also "No resources found"), 1 a named object does not exist, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from graders.commands._target import add_target_arguments
from graders.commands.check import _intermixed
from graders.errors import EXIT_FINDINGS, EXIT_OK, InputError
from graders.yamlio import YAML_SUFFIXES

MODE_LINES = {
    "simulated": "simulated lab cluster (no real cluster is read){paths}: what the graders see",
    "manifests": "only your files (--no-baseline, no cluster){paths}: what the graders see",
    "snapshot": "{description}: the cluster as it was when the snapshot was taken",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "get", help="show the cluster the graders see, like kubectl get (any mode, read-only)",
        usage="python -m graders get TYPE[,TYPE...] [NAME...] [PATH...] [-n NS | -A] [-l SELECTOR] "
              "[-o wide|yaml|json|name] [--show-labels] [--snapshot FILE | --context NAME [--kubeconfig FILE]]",
        description=__doc__.split("\n\n")[0] + " TYPE: pods (po), services (svc), deployments (deploy), "
                    "namespaces (ns), gateways (gw), virtualservices (vs), destinationrules (dr), "
                    "serviceentries (se), serviceaccounts (sa), gatewayclasses (gc), "
                    "gateway.gateway.networking.k8s.io (gtw: the Gateway API Gateway), httproutes, "
                    "referencegrants (refgrant), all; TYPE/NAME works too. Arguments that are existing files or "
                    "folders are PATHs.")
    add_target_arguments(p)
    p.add_argument("-n", "--namespace", default="default", help="the namespace to list (default: default)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list every namespace (NAMESPACE column)")
    p.add_argument("-l", "--selector", help="label selector: key=value, key!=value, key, !key, comma-separated")
    p.add_argument("-o", "--output", choices=("wide", "yaml", "json", "name"), help="output format")
    p.add_argument("--show-labels", action="store_true", help="add a LABELS column")
    p.set_defaults(func=run)
    p.__class__ = _intermixed(type(p))


def _is_type(word: str) -> bool:
    from graders import kubeview

    try:
        kubeview.resolve_kinds(word.partition("/")[0])
    except InputError:
        return False
    return True


def split_words(words: list[str]) -> tuple[str, list[str], list[str]]:
    """(TYPE[,TYPE], names, PATHs) from the positional words: the type comes first (``svc`` or
    ``svc/productpage``; a word naming a type is a type even where a folder has that name, such as
    ``deploy/``), existing files and folders are PATHs, the other words are names."""
    types, names, paths = "", [], []
    for word in words:
        if not types and (_is_type(word) or not Path(word).exists()):
            types, _, name = word.partition("/")
            names += [name] if name else []
        elif Path(word).exists():
            paths.append(word)
        elif "/" in word and word.count("/") == 1 and not word.startswith((".", "/")) and \
                not word.endswith(YAML_SUFFIXES):
            kind, _, name = word.partition("/")
            if kind != types:
                raise InputError(f"{word}: give one resource type per command here ({types}), or TYPE,TYPE "
                                 "without names")
            names.append(name)
        elif "/" in word or word.endswith(YAML_SUFFIXES):
            raise InputError(f"{word}: no such file or folder (PATHs are YAML files or folders laid over the cluster)")
        else:
            names.append(word)
    if not types:
        raise InputError("say what to get: python -m graders get pods (or svc, deploy, gateway, virtualservice, ...)")
    return types, names, paths


def _gateway_api_involved(kinds: list, objects: list[dict], mode: str) -> bool:
    """Is the engine's Gateway API view needed: a Gateway API kind asked for, or (off-cluster) a Gateway API
    Gateway whose ServiceAccount, Deployment, Service and pods istiod would create?"""
    from graders.kubeview import GWAPI_GROUP

    if any(k.group == GWAPI_GROUP for k in kinds):
        return True
    return mode in ("simulated", "manifests") and any(
        o.get("kind") == "Gateway" and str(o.get("apiVersion", "")).startswith(f"{GWAPI_GROUP}/") for o in objects)


def _gateway_api_view(objects: list[dict], loaded: object) -> tuple[list[dict], set[int]]:
    """Off-cluster, what istiod would create joins the objects (an object already there wins, as in the
    state); GatewayClasses and Gateways without a status get the predicted one. Returns the objects and
    the ids of those whose status is predicted (the command says so in one line)."""
    from graders import kubeview
    from graders.gwapi import view as gwapi_view
    from graders.sources.build import build_state

    state = build_state(loaded.raws, loaded.mode, description=loaded.description, **loaded.options)  # type: ignore
    if loaded.mode in ("simulated", "manifests"):  # type: ignore[attr-defined]
        objects = kubeview.merge([*gwapi_view.deployed_objects(state), *objects])
    before = {id(o) for o in objects}
    objects = gwapi_view.with_predicted_status(objects, state)
    return objects, {id(o) for o in objects} - before


def run(args: argparse.Namespace) -> int:
    import yaml

    from graders import kubeview
    from graders.gwapi import view as gwapi_view
    from graders.sources import load_objects

    types, names, paths = split_words(args.paths)
    kinds = kubeview.resolve_kinds(types)
    if names and len(kinds) > 1:
        raise InputError(f"names go with one resource type; got {types} (try TYPE/NAME for each)")
    if args.no_baseline and (args.snapshot or args.context):
        raise InputError("--no-baseline only applies to the simulated cluster; drop it with --snapshot/--context")
    query = kubeview.Query(tuple(kinds), tuple(names), args.namespace, args.all_namespaces,
                           tuple(kubeview.parse_selector(args.selector)) if args.selector else ())
    loaded = load_objects(paths, snapshot=args.snapshot, context=args.context, kubeconfig=args.kubeconfig,
                          baseline=not args.no_baseline)
    objects = kubeview.merge(r.obj for r in loaded.raws)
    if loaded.mode == "live" and any(k.kind == "ServiceAccount" for k in kinds):
        raise InputError("ServiceAccounts are not read from a live cluster (the grader's read-only role does not list "
                         f"them); use `kubectl get sa -n {args.namespace}`")
    predicted: set[int] = set()
    if _gateway_api_involved(kinds, objects, loaded.mode):
        objects, predicted = _gateway_api_view(objects, loaded)
    if loaded.mode in ("simulated", "manifests"):
        objects = kubeview.simulated_status(objects) + kubeview.simulated_pods(objects)
    line = MODE_LINES.get(loaded.mode)
    if line:
        shown = f" + {', '.join(paths)}" if paths else ""
        print(line.format(paths=shown, description=loaded.description), file=sys.stderr)
    found = kubeview.select(objects, query)
    if any(id(o) in predicted for _, o in found):
        print(gwapi_view.PREDICTED_NOTE, file=sys.stderr)
    missing = [n for n in names if not any(o["metadata"]["name"] == n for _, o in found)]
    for name in missing:
        print(f'Error from server (NotFound): {kinds[0].plural} "{name}" not found', file=sys.stderr)
    if not found and not missing:
        print(kubeview.nothing_found(query), file=sys.stderr)
    if found:
        single = len(names) == 1
        if args.output == "yaml":
            sys.stdout.write(yaml.safe_dump(kubeview.as_list(found, single), sort_keys=True, width=120))
        elif args.output == "json":
            print(json.dumps(kubeview.as_list(found, single), indent=4, default=str))
        elif args.output == "name":
            print("\n".join(f"{k.qualified}/{o['metadata']['name']}" for k, o in found))
        else:
            print(kubeview.table(found, query, datetime.now(UTC), wide=args.output == "wide",
                                 show_labels=args.show_labels))
    return EXIT_FINDINGS if missing else EXIT_OK
