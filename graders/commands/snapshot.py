"""`python -m graders snapshot`: save a live cluster's state to one file, to grade it later.

The file can be analyzed, traced or graded elsewhere, without access to the cluster.

It reads exactly what live mode reads (one cluster-wide LIST per kind, GET only, never ConfigMaps),
plus the names of the Secrets in the gateway pods' and Gateways' namespaces, metadata only (what
``--secret-names`` lists; never their data), when RBAC permits, and writes, as JSON (which is also
YAML), a ``kind: List`` plus an ``x-graders`` block (context, time, whether Istio is installed,
whether Secrets were listed and why not, recorded gateway probes). With ``--probe`` it also
sends real requests through the ingress gateway and records the answers, so snapshot-mode checks
can replay them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graders import deadline
from graders.deadline import seconds_arg
from graders.errors import EXIT_OK, InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snapshot", help="save a live cluster's state (and gateway probes) to a file (JSON, also YAML)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--context", metavar="NAME",
                   help="kubeconfig context to read (default: the current one; kind clusters: kind-<name>)")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("-o", "--output", metavar="FILE", default="-",
                   help="write the snapshot here (replaced atomically) instead of standard output")
    p.add_argument("--probe", action="store_true",
                   help="also send GET / and GET /productpage (Host: localhost) to the ingress gateway's port 80 "
                        "and record the answers; goes through a port-forward unless --probe-url is given")
    p.add_argument("--probe-url", metavar="URL",
                   help="reach the gateway at this URL instead (the course's kind cluster: http://127.0.0.1:8080); "
                        "implies --probe")
    p.add_argument("--timeout", type=seconds_arg, default=5.0, metavar="SECONDS",
                   help="per-request timeout for the API server (default: 5)")
    deadline.add_argument(p)
    p.set_defaults(func=run)


def _check_output(output: str) -> Path | None:
    """The -o target, refused before the cluster is read when it could not be written (a special file,
    a missing or unwritable folder)."""
    if output == "-":
        return None
    from graders.outfile import check_target

    return check_target(Path(output))


def snapshot_text(doc: dict) -> str:
    """The snapshot as JSON, one object per line. JSON because it is also YAML (every reader of
    snapshots, kubectl included, takes it) and parses many times faster and leaner than YAML, which
    is what lets a 50,000-pod cluster's snapshot be read back (README "Benchmarks"); one object per
    line so that a diff or an error's line number points at one object."""
    import json

    def one(value: object) -> str:
        return json.dumps(value, ensure_ascii=True, separators=(", ", ": "))

    head = ", ".join(f"{one(k)}: {one(v)}" for k, v in doc.items() if k != "items")
    items = ",\n".join(one(item) for item in doc.get("items", []))
    return f"{{{head},\n\"items\": [\n{items}\n]}}\n"


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from graders import outfile
    from graders.probes import PortForward, check_url, default_probes, record_dict
    from graders.sources import secret_metadata
    from graders.sources.live import read_cluster
    from graders.sources.snapshot import snapshot_document

    path = _check_output(args.output)  # before touching the cluster: bad input fails fast
    if args.probe_url:
        check_url(args.probe_url)
    with deadline.cluster_scope(args.deadline, live=True):  # the read, the port-forwards and the probes
        read = read_cluster(args.context, args.kubeconfig, timeout=args.timeout)
        # Issue #14: whether the TLS Secret exists must be gradable from the snapshot, data never read.
        secrets, listed, why = secret_metadata(read.objects, read.context, args.kubeconfig)
        probes = []
        if args.probe or args.probe_url:
            target = args.probe_url or PortForward(read.context, args.kubeconfig, api_timeout=args.timeout)
            probes = [record_dict(r) for r in default_probes(target)]
    doc = snapshot_document(read.objects + secrets, context=read.context,
                            taken_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            istio_installed=read.istio_installed, probes=probes, secrets_listed=listed,
                            secrets_not_listed=why)
    if not listed:
        print(f"note: Secret names not listed ({why}); TLS credentials in this snapshot will say 'cannot verify'"
              f" (the optional Role deploy/rbac/grader-secret-names.yaml permits it)", file=sys.stderr)
    text = snapshot_text(doc)
    if path is None:
        sys.stdout.write(text)
    else:
        try:
            outfile.write(path, text)
        except OSError as err:
            raise InputError(f"{path}: could not write the snapshot ({err.strerror}); nothing was changed there; "
                             "free some space or choose another file") from None
        istio = "Istio installed" if read.istio_installed else "Istio NOT installed"
        print(f"wrote {path}: {len(doc['items'])} objects from context {read.context} ({istio})"
              f"{f', {len(probes)} gateway probes' if probes else ''}", file=sys.stderr)
    return EXIT_OK
