"""`cluster up/down` and `doctor`, run through the CLI with fake kind/kubectl/istioctl/docker
executables on a temporary PATH (small Python scripts that log their arguments), and the fake API
server standing in for the cluster those tools would create."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import sys
import textwrap
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml
from fakeapi import DEFAULT_TOKEN, FakeApiServer

from graders import versions
from graders.cli import main
from graders.labenv import cluster as cluster_mod
from graders.labenv.runner import relpath

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("docker", "kind", "kubectl", "istioctl")

# One script per tool. Each appends its argv to $FAKE_STATE/calls.jsonl, answers version queries from
# $FAKE_<TOOL>_VERSION, and keeps kind's clusters in $FAKE_STATE. istioctl install renders the
# IstioOperator with the simulated-cluster renderer and creates the objects in the fake API server
# ($FAKE_API_URL), labelled as istioctl labels them; an existing Service is patched back to the file.
# $FAKE_FAIL="<tool> <arg1> <arg2>" makes that command fail.
_SCRIPT = '''\
#!{python}
import json, os, sys, urllib.request, urllib.error
sys.path.insert(0, {repo!r})
TOOL = {tool!r}
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "calls.jsonl"), "a") as f:
    f.write(json.dumps([TOOL, *args]) + "\\n")
if os.environ.get("FAKE_FAIL") == " ".join([TOOL, *args[:2]]):
    sys.stderr.write("simulated failure\\n")
    sys.exit(3)
clusters_file = os.path.join(state, "clusters")
clusters = open(clusters_file).read().split() if os.path.exists(clusters_file) else []

def opt(name):
    return args[args.index(name) + 1] if name in args else None

def api(method, path, body):
    req = urllib.request.Request(os.environ["FAKE_API_URL"] + path, data=json.dumps(body).encode(), method=method,
                                 headers={{"Authorization": "Bearer " + os.environ["FAKE_API_TOKEN"],
                                          "Content-Type": "application/json" if method == "POST"
                                          else "application/merge-patch+json"}})
    try:
        urllib.request.urlopen(req).read()
        return True
    except urllib.error.HTTPError as err:
        if err.code == 409:
            return False
        raise

if TOOL == "docker":
    if os.environ.get("FAKE_DOCKER_DOWN"):
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\\n")
        sys.exit(1)
    print("27.3.1", os.environ.get("FAKE_DOCKER_MEM", str(8 * 1024**3)), "4")
elif TOOL == "kind":
    if args[:1] == ["version"]:
        print("kind " + os.environ.get("FAKE_KIND_VERSION", "v0.31.0") + " go1.25.5 linux/amd64")
    elif args[:2] == ["get", "clusters"]:
        if not clusters:
            sys.stderr.write("No kind clusters found.\\n")
        print("\\n".join(clusters))
    elif args[:2] == ["create", "cluster"]:
        name = opt("--name")
        open(os.path.join(state, "kind-config-" + name + ".yaml"), "w").write(sys.stdin.read())
        open(clusters_file, "w").write("\\n".join([*clusters, name]))
        open(os.path.join(state, "marker-" + name), "w").write("node/" + name + "-control-plane")
    elif args[:2] == ["delete", "cluster"]:
        name = opt("--name")
        open(clusters_file, "w").write("\\n".join(c for c in clusters if c != name))
elif TOOL == "kubectl":
    if args[:1] == ["version"]:
        v = os.environ.get("FAKE_KUBECTL_VERSION", "v1.35.0")
        print(json.dumps({{"clientVersion": {{"gitVersion": v, "major": "1", "minor": v.split(".")[1]}}}}))
    elif args[:3] == ["config", "get-contexts", args[2] if len(args) > 2 else ""]:
        print(args[2])
    elif args[:2] == ["apply", "--server-side"] and os.environ.get("FAKE_API_URL"):
        # the Gateway API release `cluster up` installs: its CRDs, stamped with their bundle version
        sys.path.insert(0, os.path.join({repo!r}, "tests"))
        from fakeapi import gateway_api_crds
        version = opt("-f").split("/download/")[1].split("/")[0]
        for crd in gateway_api_crds():
            crd["metadata"]["annotations"] = {{"gateway.networking.k8s.io/bundle-version": version,
                                              "gateway.networking.k8s.io/channel": "standard"}}
            if not api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd):
                api("PATCH", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + crd["metadata"]["name"],
                    crd)
    elif "nodes" in args:
        name = opt("--context").removeprefix("kind-")
        marker = os.path.join(state, "marker-" + name)
        if os.path.exists(marker):
            print(open(marker).read())
elif TOOL == "istioctl":
    if args[:1] == ["version"]:
        print("client version: " + os.environ.get("FAKE_ISTIOCTL_VERSION", "{istio}"))
    elif args[:1] == ["install"] and os.environ.get("FAKE_API_URL"):
        import yaml
        from graders.sources import istio_install
        iop = yaml.safe_load(open(opt("-f")))
        name = iop["metadata"]["name"]
        paths = {{"Namespace": "/api/v1/namespaces", "Deployment": "/apis/apps/v1/namespaces/{{ns}}/deployments",
                 "Service": "/api/v1/namespaces/{{ns}}/services"}}
        for obj in istio_install.render(iop):
            md = obj["metadata"]
            md.setdefault("labels", {{}})["install.operator.istio.io/owning-resource"] = name
            path = paths[obj["kind"]].format(ns=md.get("namespace", ""))
            if not api("POST", path, obj) and obj["kind"] == "Service":  # puts the node ports back
                api("PATCH", path + "/" + md["name"], obj)
'''


def make_fake_tools(bin_dir: Path, omit: Iterable[str] = ()) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        if tool in omit:
            continue
        path = bin_dir / tool
        path.write_text(_SCRIPT.format(python=sys.executable, repo=str(REPO), tool=tool,
                                       istio=versions.ISTIO_VERSION))
        path.chmod(0o755)
    return bin_dir


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake tools first and alone on PATH; returns the state folder (calls.jsonl, clusters)."""
    state = tmp_path / "state"
    state.mkdir()
    make_fake_tools(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("FAKE_STATE", str(state))
    return state


def calls(state: Path) -> list[list[str]]:
    log = state / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fixed_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """The kind template with its fixed host ports (15021, 8081, 7070) moved to free ones, so tests do
    not depend on what else runs on this machine. Returns node port -> host port."""
    text = cluster_mod.KIND_TEMPLATE.read_text()
    moved = {}
    for node_port, host_port in ((30021, 15021), (30081, 8081), (30070, 7070)):
        moved[node_port] = free_port()
        old = f"{{containerPort: {node_port}, hostPort: {host_port},"
        assert old in text
        text = text.replace(old, f"{{containerPort: {node_port}, hostPort: {moved[node_port]},")
    template = tmp_path / "kind-config.yaml.tmpl"
    template.write_text(text)
    monkeypatch.setattr(cluster_mod, "KIND_TEMPLATE", template)
    return moved


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that something listens on for the duration of the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@contextlib.contextmanager
def health_endpoint(port: int) -> Iterator[None]:
    """An HTTP server on 127.0.0.1:``port`` answering 200 on /healthz/ready, like Envoy's status port."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz/ready" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# --- doctor -------------------------------------------------------------------------------------------
def doctor(capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, dict]:
    rc, out, _ = run_cli(["doctor", "-o", "json", "--http-port", str(free_port()), "--https-port",
                          str(free_port()), *extra], capsys)
    data = json.loads(out)
    return rc, {c["name"]: c for c in data["checks"]}


def test_doctor_all_tools_at_pinned_versions_is_ready(tools: Path, fixed_ports: dict[int, int],
                                                      capsys: pytest.CaptureFixture) -> None:
    rc, checks = doctor(capsys)
    assert rc == 0, checks
    assert {n: c["status"] for n, c in checks.items() if n in TOOLS} == dict.fromkeys(TOOLS, "ok")
    assert checks["memory"]["status"] == "ok"
    assert {f"port {p}" for p in fixed_ports.values()} <= set(checks)
    assert checks["cluster"]["detail"] == "no kind cluster istio-lab yet; `python -m graders cluster up` creates it"
    assert [c[0] for c in calls(tools)] == ["docker", "kind", "kubectl", "istioctl", "kind"]


def test_doctor_missing_istioctl_prints_the_pinned_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    make_fake_tools(tmp_path / "bin", omit=["istioctl"])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("FAKE_STATE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    rc, checks = doctor(capsys)
    assert rc == 1
    istioctl = checks["istioctl"]
    assert istioctl["status"] == "fail" and "not on PATH" in istioctl["detail"]
    assert any(f"ISTIO_VERSION={versions.ISTIO_VERSION}" in f and "downloadIstio" in f for f in istioctl["fix"])


def test_doctor_finds_istioctl_in_its_download_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    make_fake_tools(tmp_path / "bin", omit=["istioctl"])
    make_fake_tools(tmp_path / f"istio-{versions.ISTIO_VERSION}" / "bin", omit=["docker", "kind", "kubectl"])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("FAKE_STATE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    _, checks = doctor(capsys)
    assert checks["istioctl"]["status"] == "ok"
    assert f"istio-{versions.ISTIO_VERSION}/bin" in checks["istioctl"]["detail"]


@pytest.mark.parametrize(("env", "tool", "status", "words"), [
    ({"FAKE_ISTIOCTL_VERSION": "1.29.2"}, "istioctl", "fail", "installs Istio 1.29.2"),
    ({"FAKE_ISTIOCTL_VERSION": "1.30.0"}, "istioctl", "warn", "same minor"),
    ({"FAKE_KUBECTL_VERSION": "v1.32.4"}, "kubectl", "fail", "more than one minor version"),
    ({"FAKE_KUBECTL_VERSION": "v1.36.0"}, "kubectl", "ok", "v1.36.0"),
    ({"FAKE_KIND_VERSION": "v0.27.0"}, "kind", "fail", "older than v0.31.0"),
    ({"FAKE_KIND_VERSION": "v0.32.0"}, "kind", "warn", "newer"),
    ({"FAKE_DOCKER_DOWN": "1"}, "docker", "fail", "daemon does not answer"),
    ({"FAKE_DOCKER_MEM": str(2 * 1024**3)}, "memory", "fail", "2.0 GiB"),
    ({"FAKE_DOCKER_MEM": str(5 * 1024**3)}, "memory", "warn", "5.0 GiB"),
])
def test_doctor_versions_and_runtime(tools: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                     env: dict, tool: str, status: str, words: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rc, checks = doctor(capsys)
    assert checks[tool]["status"] == status
    assert words in checks[tool]["detail"]
    if status == "fail":
        assert rc == 1 and checks[tool]["fix"], "a failed check must say how to fix it"


def test_doctor_reports_a_port_in_use_with_the_flag_that_moves_it(tools: Path, listening: int,
                                                                  capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run_cli(["doctor", "--http-port", str(listening), "--https-port", str(free_port())], capsys)
    assert rc == 1
    line = next(li for li in out.splitlines() if li.startswith(f"FAIL  port {listening}"))
    assert "already in use" in line
    assert "--http-port <free port>" in out


def test_doctor_skips_port_checks_once_the_cluster_exists(tools: Path, listening: int,
                                                          capsys: pytest.CaptureFixture) -> None:
    (tools / "clusters").write_text(versions.CLUSTER_NAME)
    _rc, checks = doctor(capsys, "--http-port", str(listening))
    assert checks["ports"]["status"] == "skip"
    assert checks["cluster"]["detail"] == "kind cluster istio-lab exists (context kind-istio-lab)"
    assert not any(name.startswith("port ") for name in checks)


# --- cluster up / down, dry run ----------------------------------------------------------------------
def test_cluster_up_dry_run_prints_every_step_and_runs_nothing(tools: Path, capsys: pytest.CaptureFixture,
                                                               tmp_path: Path) -> None:
    kubeconfig = str(tmp_path / "kc")
    rc, out, _ = run_cli(["cluster", "up", "--dry-run", "--http-port", "9080", "--https-port", "9443",
                          "--kubeconfig", kubeconfig], capsys)
    assert rc == 0
    assert calls(tools) == [], "a dry run must not run any tool"
    assert not Path(kubeconfig).exists()
    commands = [li.strip()[2:] for li in out.splitlines() if li.strip().startswith("$ ")]
    assert commands == [
        f"kind create cluster --name istio-lab --config - --wait 120s --kubeconfig {kubeconfig} "
        "< labs/cluster/kind-config.yaml.tmpl (rendered)",
        f"istioctl install -f labs/cluster/istio-operator.yaml -y --context kind-istio-lab --kubeconfig {kubeconfig}",
        f"kubectl apply --server-side -f {versions.GATEWAY_API_CRDS_URL} --context kind-istio-lab "
        f"--kubeconfig {kubeconfig}",
    ]
    assert versions.GATEWAY_API_CRDS_URL == ("https://github.com/kubernetes-sigs/gateway-api/releases/download/"
                                             "v1.5.1/standard-install.yaml")
    # the rendered kind config is printed in full, with the pinned image and the chosen host ports
    block = out.split("--- labs/cluster/kind-config.yaml.tmpl (rendered) ---\n", 1)[1].split("\n    ---\n", 1)[0]
    config = yaml.safe_load(textwrap.dedent(block))
    assert config["nodes"][0]["image"] == versions.KIND_NODE_IMAGE
    host_ports = {m["containerPort"]: m["hostPort"] for m in config["nodes"][0]["extraPortMappings"]}
    assert host_ports[30080] == 9080 and host_ports[30443] == 9443
    # then the files it applies, in order, and where the gateway is reached
    order = [out.index(s) for s in ("[1/6] Preflight", "[2/6] kind cluster", "[3/6] Istio",
                                    "[4/6] Gateway API CRDs v1.5.1", "Namespace default",
                                    "Deployment default/productpage-v1", "[6/6] Wait")]
    assert order == sorted(order)
    assert "labs/cluster/namespaces.yaml" in out and "labs/cluster/bookinfo.yaml" in out
    assert out.rstrip().splitlines()[-3] == "The ingress gateway answers on http://127.0.0.1:9080/productpage"


def test_cluster_up_dry_run_uses_the_given_name_for_the_context(tools: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run_cli(["cluster", "up", "--dry-run", "--name", "other-lab"], capsys)
    assert rc == 0
    assert "kind create cluster --name other-lab" in out
    assert "--context kind-other-lab" in out
    assert "kind-istio-lab" not in out


@pytest.mark.parametrize(("args", "words"), [
    (["--http-port", "8081"], "already uses host port 8081"),
    (["--http-port", "9000", "--https-port", "9000"], "different ports"),
    (["--https-port", "70000"], "not a TCP port"),
    (["--istio-version", "latest"], "expected X.Y.Z"),
])
def test_cluster_up_rejects_bad_options_in_one_line(tools: Path, capsys: pytest.CaptureFixture, args: list[str],
                                                    words: str) -> None:
    rc, _out, err = run_cli(["cluster", "up", "--dry-run", *args], capsys)
    assert rc == 2
    assert words in err and len(err.strip().splitlines()) == 1
    assert calls(tools) == []


def test_cluster_down_dry_run(tools: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run_cli(["cluster", "down", "--dry-run"], capsys)
    assert rc == 0 and calls(tools) == []
    commands = [li.strip()[2:] for li in out.splitlines() if li.strip().startswith("$ ")]
    assert commands == ["kind get clusters",
                        f"kubectl --context kind-istio-lab get nodes -l {versions.CLUSTER_MARKER_LABEL}=true -o name",
                        "kind delete cluster --name istio-lab"]


# --- cluster up / down for real, against fake tools and the fake API server --------------------------------
def _empty_cluster() -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
            for n in ("default", "kube-system", "kube-public")]


@pytest.fixture
def fresh_api(tools: Path, fixed_ports: dict[int, int], tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeApiServer, str]]:
    """A fake API server holding a new, empty kind cluster (Istio CRDs only, as istioctl would add them)."""
    from fakeapi import istio_crds

    with FakeApiServer(_empty_cluster() + istio_crds()) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        monkeypatch.setenv("FAKE_API_URL", api.url)
        monkeypatch.setenv("FAKE_API_TOKEN", DEFAULT_TOKEN)
        yield api, kubeconfig


def test_cluster_up_creates_everything_then_a_second_run_changes_nothing(
        fresh_api: tuple[FakeApiServer, str], tools: Path, fixed_ports: dict[int, int],
        capsys: pytest.CaptureFixture) -> None:
    api, kubeconfig = fresh_api
    ports = ["--http-port", str(free_port()), "--https-port", str(free_port()), "--kubeconfig", kubeconfig]
    rc, out, _ = run_cli(["cluster", "up", *ports, "--timeout", "5"], capsys)
    assert rc == 0, out
    ran = [c[:3] for c in calls(tools) if c[1] not in ("version", "info", "get")]
    assert ran == [["kind", "create", "cluster"], ["istioctl", "install", "-f"], ["kubectl", "apply", "--server-side"]]
    crd = api.find("CustomResourceDefinition", "", "gateways.gateway.networking.k8s.io")
    assert crd is not None and crd["metadata"]["annotations"][versions.GATEWAY_API_BUNDLE_ANNOTATION] == "v1.5.1"
    config = yaml.safe_load((tools / "kind-config-istio-lab.yaml").read_text())
    assert config["nodes"][0]["image"] == versions.KIND_NODE_IMAGE
    # Istio (by the fake istioctl) and the labelled Bookinfo are there
    assert api.find("Deployment", "istio-system", "istiod") is not None
    productpage = api.find("Deployment", "default", "productpage-v1")
    assert productpage["metadata"]["labels"][versions.COURSE_LABEL] == versions.COURSE_NAME
    assert productpage["metadata"]["labels"][versions.LAB_LABEL] == "baseline"
    assert "[6/6]" in out and "productpage-v1 ready" in out
    assert "Nothing to do" not in out
    status = fixed_ports[30021]
    assert f"warning: http://127.0.0.1:{status}/healthz/ready did not answer 200" in out, "nothing listens there yet"

    api.clear_requests()
    before = len(calls(tools))
    with health_endpoint(status):  # what the gateway's status port answers through the kind mapping
        rc, out, _ = run_cli(["cluster", "up", *ports, "--timeout", "5"], capsys)
    assert rc == 0
    assert f"http://127.0.0.1:{status}/healthz/ready: 200, the ingress gateway is reachable from this machine" in out
    assert "Nothing to do: the course cluster was already up" in out
    assert "exists already" in out and "is installed with the course's gateway node ports" in out
    assert "Gateway API CRDs v1.5.1 (standard channel) are installed: not installed again" in out
    assert api.write_requests() == [], "a second cluster up must not write anything"
    assert not [c for c in calls(tools)[before:] if c[1] in ("create", "install", "delete")]


def test_cluster_up_reinstalls_istio_when_the_gateway_lost_its_node_ports(
        tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    (tools / "clusters").write_text("istio-lab")
    with FakeApiServer() as api:
        svc = api.find("Service", "istio-system", "istio-ingressgateway")
        with api.cluster.lock:
            rt = api.cluster.resource("", "v1", "services")
            live = api.cluster.get(rt, "istio-system", "istio-ingressgateway")
            live["spec"]["ports"][1]["nodePort"] = 31999
        assert svc is not None
        monkeypatch.setenv("FAKE_API_URL", api.url)
        monkeypatch.setenv("FAKE_API_TOKEN", DEFAULT_TOKEN)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        rc, out, _ = run_cli(["cluster", "up", "--kubeconfig", kubeconfig, "--timeout", "5"], capsys)
    assert rc == 0, out
    assert "does not have the course's node ports" in out
    assert [c[:4] for c in calls(tools) if c[:2] == ["istioctl", "install"]] == [
        ["istioctl", "install", "-f", "labs/cluster/istio-operator.yaml"]]
    assert not [c for c in calls(tools) if c[:2] == ["kind", "create"]]


def test_a_failing_step_ends_cluster_up_with_one_line_and_exit_2(
        fresh_api: tuple[FakeApiServer, str], tools: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    _, kubeconfig = fresh_api
    monkeypatch.setenv("FAKE_FAIL", "kind create cluster")
    rc, _out, err = run_cli(["cluster", "up", "--kubeconfig", kubeconfig, "--http-port", str(free_port()),
                            "--https-port", str(free_port())], capsys)
    assert rc == 2
    assert err.strip().splitlines() == [
        "error: kind create cluster failed: `kind create cluster --name istio-lab --config - --wait 120s --kubeconfig "
        f"{kubeconfig} < {relpath(cluster_mod.KIND_TEMPLATE)} (rendered)` exited with 3; see its output above, fix the "
        "cause and run the same command again"]
    assert not [c for c in calls(tools) if c[0] == "istioctl" and c[1] == "install"]


def test_cluster_down_deletes_only_the_course_cluster(tools: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, _ = run_cli(["cluster", "down"], capsys)
    assert rc == 0 and "nothing to delete" in out
    (tools / "clusters").write_text("istio-lab\nmine")
    rc, out, _ = run_cli(["cluster", "down", "--name", "mine"], capsys)  # no marker label on its node
    assert rc == 1 and "left alone" in out
    assert not [c for c in calls(tools) if c[:2] == ["kind", "delete"]]
    (tools / "marker-istio-lab").write_text("node/istio-lab-control-plane")
    rc, out, _ = run_cli(["cluster", "down"], capsys)
    assert rc == 0
    assert [c for c in calls(tools) if c[:2] == ["kind", "delete"]] == [
        ["kind", "delete", "cluster", "--name", "istio-lab"]]
    assert (tools / "clusters").read_text().split() == ["mine"]


def test_pinned_versions_and_install_commands_agree() -> None:
    for system, machine, os_id, arch in (("Linux", "x86_64", "linux", "amd64"), ("Darwin", "arm64", "darwin", "arm64"),
                                         ("Linux", "aarch64", "linux", "arm64")):
        kind = " ".join(versions.install_commands("kind", system=system, machine=machine))
        kubectl = " ".join(versions.install_commands("kubectl", system=system, machine=machine))
        istioctl = " ".join(versions.install_commands("istioctl", system=system, machine=machine))
        assert f"/dl/{versions.KIND_VERSION}/kind-{os_id}-{arch}" in kind
        assert f"/release/v{versions.KUBERNETES_VERSION}/bin/{os_id}/{arch}/kubectl" in kubectl
        assert f"ISTIO_VERSION={versions.ISTIO_VERSION}" in istioctl
    assert versions.KIND_NODE_IMAGE.startswith(f"kindest/node:v{versions.KUBERNETES_VERSION}@sha256:")
    assert versions.pinned_toolchain()["istioctl"] == versions.ISTIO_VERSION
    assert os.path.basename(cluster_mod.KIND_TEMPLATE) == "kind-config.yaml.tmpl"


def test_cluster_up_replaces_gateway_api_crds_of_another_version(
        tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A cluster whose Gateway API CRDs are v1.4.0 (what Istio 1.29 was built against) gets the pinned
    release applied over them; Istio and the cluster itself are left as they are."""
    from fakeapi import gateway_api_crds

    (tools / "clusters").write_text("istio-lab")
    old = gateway_api_crds()
    for crd in old:
        crd["metadata"]["annotations"] = {versions.GATEWAY_API_BUNDLE_ANNOTATION: "v1.4.0"}
    with FakeApiServer() as api:
        api.add_all(old)
        monkeypatch.setenv("FAKE_API_URL", api.url)
        monkeypatch.setenv("FAKE_API_TOKEN", DEFAULT_TOKEN)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        rc, out, _ = run_cli(["cluster", "up", "--kubeconfig", kubeconfig, "--timeout", "5"], capsys)
        crd = api.find("CustomResourceDefinition", "", "gateways.gateway.networking.k8s.io")
    assert rc == 0, out
    assert "Gateway API CRDs v1.4.0 are installed; Istio 1.30 needs v1.5.1: applying it over them" in out
    assert [c[:5] for c in calls(tools) if c[:2] == ["kubectl", "apply"]] == [
        ["kubectl", "apply", "--server-side", "-f", versions.GATEWAY_API_CRDS_URL]]
    assert crd["metadata"]["annotations"][versions.GATEWAY_API_BUNDLE_ANNOTATION] == "v1.5.1"
    assert not [c for c in calls(tools) if c[:2] in (["kind", "create"], ["istioctl", "install"])]
