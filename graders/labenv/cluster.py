"""`cluster up` and `cluster down`: the course's kind cluster with Istio and Bookinfo.

`up` is idempotent: each stage first looks at what is there (kind's cluster list, istiod, the
objects of labs/cluster/) and says what it skips. The kind config is rendered from one template,
so the node image pin lives only in graders/versions.py.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from graders import versions
from graders.errors import InputError
from graders.labenv import apply as ops
from graders.labenv import preflight
from graders.labenv.kube import Ref
from graders.labenv.labops import LabEnv
from graders.labenv.runner import REPO_ROOT, Runner, relpath
from graders.sources.simulated import ISTIO_OPERATOR_FILE

KIND_TEMPLATE = REPO_ROOT / "labs" / "cluster" / "kind-config.yaml.tmpl"
ISTIO_DEPLOYMENTS = ("istiod", "istio-ingressgateway", "istio-egressgateway")
# What each node port of the kind config carries (for preflight messages) and which flag moves it.
NODE_PORT_ROLES = {30080: ("HTTP to the ingress gateway", "--http-port"),
                   30443: ("HTTPS to the ingress gateway", "--https-port"),
                   30021: ("the ingress gateway's status port", ""),
                   30081: ("lab 4's second ingress gateway", ""),
                   30070: ("lab 2's optional gateway Service port 7070", "")}


def ingress_node_ports() -> dict[str, int]:
    """The ingress gateway's fixed node ports, by port name, as labs/cluster/istio-operator.yaml sets them."""
    from graders.labenv import manifests

    ((_, iop),) = manifests.istio_operator_files(ISTIO_OPERATOR_FILE)
    ingress = [g for g in iop["spec"]["components"]["ingressGateways"] if g.get("name") == "istio-ingressgateway"]
    return {p["name"]: p["nodePort"] for p in ingress[0]["k8s"]["service"]["ports"]}


@dataclass(frozen=True)
class ClusterOptions:
    name: str = versions.CLUSTER_NAME
    istio_version: str = versions.ISTIO_VERSION
    http_port: int = 8080
    https_port: int = 8443
    kubeconfig: str | None = None
    rollout_timeout: float = 300.0

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    def host_ports(self) -> list[preflight.HostPort]:
        """The host ports the rendered kind config binds on 127.0.0.1."""
        import yaml

        node = yaml.safe_load(render_kind_config(self))["nodes"][0]
        out = []
        for m in node["extraPortMappings"]:
            role, flag = NODE_PORT_ROLES.get(m["containerPort"], ("a lab", ""))
            out.append(preflight.HostPort(m["hostPort"], f"{role}, node port {m['containerPort']}", flag))
        return out

    def validate(self) -> None:
        for flag, port in (("--http-port", self.http_port), ("--https-port", self.https_port)):
            if not 1 <= port <= 65535:
                raise InputError(f"{flag} {port}: not a TCP port (1-65535)")
        fixed = {p.port for p in ClusterOptions().host_ports() if not p.flag}
        for flag, port in (("--http-port", self.http_port), ("--https-port", self.https_port)):
            if port in fixed:
                raise InputError(f"{flag} {port}: the kind config already uses host port {port}; choose another")
        if self.http_port == self.https_port:
            raise InputError(f"--http-port and --https-port are both {self.http_port}; give them different ports")
        if preflight.parse_version(self.istio_version) is None:
            raise InputError(f"--istio-version {self.istio_version!r}: expected X.Y.Z, e.g. {versions.ISTIO_VERSION}")


def render_kind_config(opts: ClusterOptions) -> str:
    """The kind config for these options, from labs/cluster/kind-config.yaml.tmpl."""
    template = string.Template(KIND_TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(node_image=versions.KIND_NODE_IMAGE, http_port=opts.http_port,
                               https_port=opts.https_port)


def productpage_url(opts: ClusterOptions) -> str:
    return f"http://127.0.0.1:{opts.http_port}/productpage"


def _kind_args(opts: ClusterOptions) -> list[str]:
    return ["--kubeconfig", opts.kubeconfig] if opts.kubeconfig else []


def up(opts: ClusterOptions, runner: Runner, tools: preflight.Toolchain) -> int:
    opts.validate()
    say = runner.say
    dry = runner.dry_run
    say(f"cluster up: kind cluster {opts.name}, Istio {opts.istio_version}, Gateway API CRDs "
        f"{versions.GATEWAY_API_VERSION}, Bookinfo"
        + ("  [dry run: nothing is run, read or changed]" if dry else ""))
    say("[1/6] Preflight (the same checks as `python -m graders doctor`)")
    if dry:
        say("  run: docker info; kind version; kubectl version --client; istioctl version --remote=false; "
            f"kind get clusters; bind test of 127.0.0.1 ports {', '.join(str(p.port) for p in opts.host_ports())}")
        exists = False
    else:
        checks = preflight.run_checks(runner, tools, istio_version=opts.istio_version, ports=opts.host_ports(),
                                      name=opts.name)
        failed = [c for c in checks if c.status == preflight.FAIL]
        for line in preflight.render(checks).splitlines()[:-2]:
            say(f"  {line}")
        if failed:
            say(f"\n{len(failed)} problem(s) above; fix them (each has its command) and run cluster up again.")
            return 1
        runner.env = tools.run_env()
        exists = bool(preflight.cluster_exists(runner, tools, opts.name))

    say(f"[2/6] kind cluster {opts.name}")
    changed = False
    if exists:
        say("  exists already: not created again (its host ports were fixed when it was created; to change them "
            "run `python -m graders cluster down` first)")
        if not _has_context(runner, opts):
            runner.run(["kind", "export", "kubeconfig", "--name", opts.name, *_kind_args(opts)],
                       what="restoring the cluster's kubeconfig context")
            changed = True
    else:
        runner.run(["kind", "create", "cluster", "--name", opts.name, "--config", "-", "--wait", "120s",
                    *_kind_args(opts)], stdin=render_kind_config(opts),
                   stdin_name=f"{relpath(KIND_TEMPLATE)} (rendered)", what="kind create cluster")
        changed = True

    env = LabEnv(runner, opts.context, opts.kubeconfig, rollout_timeout=opts.rollout_timeout)
    try:
        say(f"[3/6] Istio {opts.istio_version} ({relpath(ISTIO_OPERATOR_FILE)})")
        if dry or _istio_needs_install(env, opts):
            runner.run(["istioctl", "install", "-f", relpath(ISTIO_OPERATOR_FILE), "-y", "--context", opts.context,
                        *_kind_args(opts)], what="istioctl install")
            changed = True
        say(f"[4/6] Gateway API CRDs {versions.GATEWAY_API_VERSION} (standard channel; Istio {versions.ISTIO_MINOR} is "
            "built against this release, and istiod creates GatewayClass istio once they exist)")
        if dry or _gateway_api_needs_install(env):
            runner.run(["kubectl", "apply", "--server-side", "-f", versions.GATEWAY_API_CRDS_URL, "--context",
                        opts.context, *_kind_args(opts)], what="installing the Gateway API CRDs")
            changed = True
        say("[5/6] Namespaces and Bookinfo (labs/cluster/namespaces.yaml, labs/cluster/bookinfo.yaml)")
        outcomes = env.baseline()
        changed = changed or ops.changed(outcomes)
        say("[6/6] Wait for rollouts")
        if dry:
            say(f"  wait until {', '.join(ISTIO_DEPLOYMENTS)} (istio-system) and the Bookinfo Deployments (default) "
                f"have rolled out (up to {opts.rollout_timeout:.0f}s)")
            say(f"  then GET {health_url(opts)} (the gateway's status port through the kind mapping)")
        else:
            deps = [Ref("Deployment", "istio-system", n, "apps/v1") for n in ISTIO_DEPLOYMENTS]
            deps += [Ref("Deployment", "default", m.obj["metadata"]["name"], "apps/v1")
                     for m in _bookinfo_deployments()]
            ops.wait_for_rollouts(env.kube, deps, say, timeout=opts.rollout_timeout)
        if not dry:
            _say_health(say, opts)
    finally:
        env.close()
    say("")
    if not dry and not changed:
        say("Nothing to do: the course cluster was already up (kind cluster, Istio and Bookinfo all in place).")
    say(f"The ingress gateway answers on {productpage_url(opts)}")
    say("Until lab 1 binds a Gateway to it, nothing listens on the gateway's port 80 and the connection is "
        "closed at once; that is expected.")
    say(f"Kube context: {opts.context}.  Next: python -m graders lab setup 1")
    return 0


def health_url(opts: ClusterOptions) -> str:
    """The ingress gateway's readiness endpoint through the kind port mapping (host -> node port 30021)."""
    status = next(p.port for p in opts.host_ports() if "status port" in p.role)
    return f"http://127.0.0.1:{status}/healthz/ready"


def probe(url: str, timeout: float) -> str | None:
    """None when ``url`` answers 200 within ``timeout`` seconds, else the last problem seen."""
    import time
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=3) as resp:
                if resp.status == 200:
                    return None
                problem = f"HTTP {resp.status}"
        except urllib.error.HTTPError as err:
            problem = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            problem = str(getattr(err, "reason", err))
        if time.monotonic() >= deadline:
            return problem
        time.sleep(1)


def _say_health(say, opts: ClusterOptions) -> None:
    """Prove the path from this machine to the gateway pod: host port, kind mapping, node port, pod."""
    url = health_url(opts)
    problem = probe(url, min(30.0, opts.rollout_timeout))
    if problem is None:
        say(f"  {url}: 200, the ingress gateway is reachable from this machine")
    else:
        say(f"  warning: {url} did not answer 200 ({problem}). The cluster is up, but traffic from this machine "
            "does not reach the gateway; check `docker ps` shows the host ports of "
            f"{opts.name}-control-plane, then `kubectl --context {opts.context} -n istio-system get svc,pods`")


def _bookinfo_deployments() -> list:
    from graders.labenv import manifests
    from graders.sources.simulated import BOOKINFO_FILE

    return [m for m in manifests.load(BOOKINFO_FILE) if m.kind == "Deployment"]


def _has_context(runner: Runner, opts: ClusterOptions) -> bool:
    res = runner.query(["kubectl", "config", "get-contexts", opts.context, "-o", "name",
                        *(["--kubeconfig", opts.kubeconfig] if opts.kubeconfig else [])], timeout=30)
    return res.returncode == 0 and opts.context in res.stdout.split()


def _istio_needs_install(env: LabEnv, opts: ClusterOptions) -> bool:
    kube = env.kube
    istiod = kube.get(Ref("Deployment", "istio-system", "istiod", "apps/v1"))
    if istiod is None:
        return True
    labels = (istiod.get("metadata") or {}).get("labels") or {}
    version = labels.get("operator.istio.io/version", "")
    svc = kube.get(Ref("Service", "istio-system", "istio-ingressgateway", "v1"))
    ports = {p.get("name"): p.get("nodePort") for p in ((svc or {}).get("spec") or {}).get("ports", [])}
    want = ingress_node_ports()
    if svc is None or any(ports.get(k) != v for k, v in want.items()):
        env.say("  Istio is installed, but the ingress gateway Service does not have the course's node ports "
                f"({', '.join(f'{k} {v}' for k, v in want.items())}): installing the course's configuration over it")
        return True
    shown = f"Istio {version}" if version else "Istio (version not recorded on istiod)"
    note = f"; note: {opts.istio_version} was asked for" if version and version != opts.istio_version else ""
    env.say(f"  {shown} is installed with the course's gateway node ports: not installed again{note}")
    return False


GATEWAY_API_CRD = "gateways.gateway.networking.k8s.io"


def _gateway_api_needs_install(env: LabEnv) -> bool:
    """True unless the Gateway CRD is there at the pinned bundle version. Another version is replaced by
    the pinned one (server-side apply upgrades it); the experimental channel of the pinned version is
    kept, since it holds the standard one (and v1.5's safe-upgrades policy refuses the swap)."""
    crd = env.kube.get(Ref("CustomResourceDefinition", "", GATEWAY_API_CRD, "apiextensions.k8s.io/v1"))
    if crd is None:
        return True
    annotations = (crd.get("metadata") or {}).get("annotations") or {}
    version = annotations.get(versions.GATEWAY_API_BUNDLE_ANNOTATION, "")
    channel = annotations.get("gateway.networking.k8s.io/channel", "standard")
    if version == versions.GATEWAY_API_VERSION:
        env.say(f"  Gateway API CRDs {version} ({channel} channel) are installed: not installed again")
        return False
    env.say(f"  Gateway API CRDs {version or 'of an unknown version'} are installed; Istio "
            f"{versions.ISTIO_MINOR} needs {versions.GATEWAY_API_VERSION}: applying it over them")
    return True


def down(opts: ClusterOptions, runner: Runner) -> int:
    say = runner.say
    say(f"cluster down: delete kind cluster {opts.name}" + ("  [dry run: nothing is run]" if runner.dry_run else ""))
    marker = f"{versions.CLUSTER_MARKER_LABEL}=true"
    check = ["kubectl", "--context", opts.context, "get", "nodes", "-l", marker, "-o", "name",
             *(["--kubeconfig", opts.kubeconfig] if opts.kubeconfig else [])]
    if runner.dry_run:
        say("[1/2] Make sure it is the course's cluster (its node carries the label the kind config sets)")
        say(f"  $ kind get clusters\n  $ {' '.join(check)}")
    else:
        clusters = runner.query(["kind", "get", "clusters"], timeout=30)
        if clusters.returncode != 0:
            say(f"  cannot list kind clusters: {(clusters.stderr or clusters.stdout).strip()[:200]}")
            return 1
        if opts.name not in clusters.stdout.split():
            say(f"  there is no kind cluster {opts.name}: nothing to delete")
            return 0
        nodes = runner.query(check, timeout=30)
        if nodes.returncode != 0 or not nodes.stdout.strip():
            why = "its node does not carry the label" if nodes.returncode == 0 else "it could not be asked"
            say(f"  kind cluster {opts.name} was not created by `python -m graders cluster up` ({why} {marker}); "
                "it is left alone.")
            say(f"  If you are sure it should go: kind delete cluster --name {opts.name}")
            return 1
    say("[2/2] Delete it")
    runner.run(["kind", "delete", "cluster", "--name", opts.name, *_kind_args(opts)], what="kind delete cluster")
    say(f"\nkind cluster {opts.name} is deleted" if not runner.dry_run else "")
    return 0
