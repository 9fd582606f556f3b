"""`python -m graders trace`: follow one HTTP request from outside the cluster through the ingress
gateway, step by step, naming the objects that decide each step."""

from __future__ import annotations

import argparse
import sys

from graders.commands._target import add_target_arguments, load_target
from graders.errors import InputError


def _header(value: str) -> tuple[str, str]:
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"'{value}' is not NAME:VALUE")
    return name.strip().lower(), val.strip()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trace", help="explain what happens to one HTTP request through the gateway",
                       description=__doc__.splitlines()[0])
    add_target_arguments(p)
    p.add_argument("--gateway", default="istio-system/istio-ingressgateway", metavar="NS/SERVICE",
                   help="the gateway Service the client connects to (default: %(default)s)")
    p.add_argument("--port", type=int, default=80, help="a port of that Service (default: 80)")
    p.add_argument("--host", default="localhost", help="the Host header (default: localhost)")
    p.add_argument("--path", default="/", help="the request path, with any query string: /api?user=x (default: /)")
    p.add_argument("--method", default="GET", help="the HTTP method (default: GET)")
    p.add_argument("-H", "--header", action="append", type=_header, default=[], metavar="NAME:VALUE",
                   help="an extra request header (repeatable)")
    # h9-tls (issue #14): a TLS client (graders/trace_tls.py)
    p.add_argument("--tls", action="store_true", help="the client opens TLS first (https://), sending an SNI")
    sni = p.add_mutually_exclusive_group()
    sni.add_argument("--sni", metavar="NAME", help="the SNI to send with --tls (default: the --host, without port)")
    sni.add_argument("--no-sni", action="store_true", help="send no SNI with --tls (as curl does for an IP address)")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graders import report
    from graders.trace import Request, trace

    if "/" not in args.gateway:
        raise InputError(f"--gateway {args.gateway!r}: give NAMESPACE/SERVICE, e.g. istio-system/istio-ingressgateway")
    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port}: not a port number (1-65535)")
    if not args.path.startswith("/"):
        raise InputError(f"--path {args.path!r}: a request path starts with '/'")
    if args.sni is not None and not args.sni.strip():
        raise InputError("--sni '': give a host name, or use --no-sni to send no SNI")
    if (args.sni is not None or args.no_sni) and not args.tls:
        raise InputError("--sni/--no-sni need --tls: SNI is part of the TLS handshake")
    state = load_target(args)
    result = trace(state, Request(args.gateway, args.port, args.host, args.path, args.method.upper(),
                                  dict(args.header), tls=args.tls, sni="" if args.no_sni else args.sni))
    if args.output == "json":
        report.write_json(result.to_json())
    else:
        print(report.trace_text(state, result, report.use_colour(sys.stdout)))
    return 0
