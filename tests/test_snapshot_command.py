"""`python -m graders snapshot`: what it writes reads back into the very state live mode sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fakeapi import FakeApiServer, FakeGateway, bookinfo_routing, dead_url, state_records, write_kubeconfig_for

from graders.cli import main
from graders.probes import classify
from graders.sources import load_state

CONTEXT = "kind-istio-lab"


def test_snapshot_round_trips_to_the_live_state(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_api.add_all(bookinfo_routing())
    fake_api.set_ready("default", "reviews-v2", False)
    out = tmp_path / "snap.yaml"

    assert main(["snapshot", "--context", CONTEXT, "--kubeconfig", fake_kubeconfig, "-o", str(out)]) == 0
    assert f"wrote {out}:" in capsys.readouterr().err

    snap = load_state(snapshot=str(out))
    live = load_state(context=CONTEXT, kubeconfig=fake_kubeconfig)
    assert snap.mode == "snapshot"
    assert state_records(snap) == state_records(live)
    assert [g.meta.name for g in snap.gateways] == ["bookinfo-gateway"]
    doc = yaml.safe_load(out.read_text())
    assert doc["kind"] == "List" and doc["x-graders"]["context"] == CONTEXT
    assert doc["x-graders"]["istioInstalled"] is True and doc["x-graders"]["probes"] == []
    assert not list(tmp_path.glob(".snap.yaml.*")), "no temporary file left behind"


def test_snapshot_is_read_only_and_never_reads_secret_data(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                           tmp_path: Path) -> None:
    fake_api.add({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "istio-system"},
                  "data": {"tls.key": "c2VjcmV0"}})
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "-o", str(tmp_path / "s.yaml")]) == 0
    assert {r.method for r in fake_api.requests} == {"GET"}
    assert "c2VjcmV0" not in (tmp_path / "s.yaml").read_text()
    assert not any(r.resource == "configmaps" for r in fake_api.requests)
    secret_reads = [r for r in fake_api.requests if r.resource == "secrets"]
    assert secret_reads and all(r.verb == "list" and r.namespace and "as=PartialObjectMetadataList" in r.accept
                                for r in secret_reads), [(r.path, r.accept) for r in secret_reads]


# --- issue #14: Secret names (metadata only) in the snapshot, so lab 6 can be graded from it ---------------
_KEY = "UFJJVkFURUtFWS1TRUNSRVQ="  # what the fake Secret's data and last-applied annotation carry


def _tls_secret(name: str, ns: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "bookinfo"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                         f'{{"data":{{"tls.key":"{_KEY}"}}}}'}},
            "data": {"tls.crt": "Q0VSVElGSUNBVEU=", "tls.key": _KEY}}


def _lab06_cluster(api: FakeApiServer) -> None:
    from graders.labs import lab_dir
    from graders.labs.lab06 import LAB

    for doc in yaml.safe_load_all((lab_dir(LAB) / "solutions" / "reference" / "bookinfo-gateway.yaml").read_text()):
        if doc:
            api.add(doc)


def test_snapshot_keeps_secret_names_only_and_lab6_grades_the_secret(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _lab06_cluster(fake_api)
    fake_api.add(_tls_secret("bookinfo-credential", "istio-system"))
    fake_api.add(_tls_secret("elsewhere", "default"))  # a Gateway's namespace: listed too
    out = tmp_path / "snap.yaml"
    assert main(["snapshot", "--context", CONTEXT, "--kubeconfig", fake_kubeconfig, "-o", str(out)]) == 0
    text = out.read_text()
    assert _KEY not in text and "Q0VSVElGSUNBVEU=" not in text and '"data"' not in text
    assert "annotations" not in text and "last-applied" not in text
    doc = yaml.safe_load(text)
    secrets = [i for i in doc["items"] if i["kind"] == "Secret"]
    assert sorted((s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets) == [
        ("default", "elsewhere"), ("istio-system", "bookinfo-credential")]
    assert all(set(s) == {"apiVersion", "kind", "metadata"} for s in secrets)
    assert secrets[0]["metadata"]["labels"] == {"app": "bookinfo"}
    assert doc["x-graders"]["secretsListed"] is True and "secretsNotListed" not in doc["x-graders"]
    state = load_state(snapshot=str(out))
    assert state.secrets_known and {s.meta.key for s in state.secrets} == {"istio-system/bookinfo-credential",
                                                                          "default/elsewhere"}
    capsys.readouterr()
    main(["check", "6", "--snapshot", str(out), "-o", "json"])
    checks = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["secret-found"]["status"] == "passed", checks["secret-found"]["message"]
    assert "Secret istio-system/bookinfo-credential exists" in checks["secret-found"]["message"]


def test_snapshot_without_the_tls_secret_fails_lab6_secret_check(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                                 tmp_path: Path) -> None:
    from graders.labs import run

    _lab06_cluster(fake_api)
    fake_api.add(_tls_secret("bookinfo-credential", "default"))  # the classic mistake
    out = tmp_path / "snap.yaml"
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "-o", str(out)]) == 0
    chk = run("lab06", snapshot=str(out)).check("secret-found")
    assert chk.status == "failed" and "exists in default" in chk.message


def test_snapshot_refused_secrets_says_so_and_lab6_cannot_verify(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                                tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from graders.labs import run

    _lab06_cluster(fake_api)
    fake_api.add(_tls_secret("bookinfo-credential", "istio-system"))
    fake_api.forbid("secrets")
    out = tmp_path / "snap.yaml"
    assert main(["snapshot", "--context", CONTEXT, "--kubeconfig", fake_kubeconfig, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Secret names not listed" in err and "grader-secret-names.yaml" in err and "403" in err
    meta = yaml.safe_load(out.read_text())["x-graders"]
    assert meta["secretsListed"] is False and "istio-system" in meta["secretsNotListed"]
    assert "403" in meta["secretsNotListed"]
    state = load_state(snapshot=str(out))
    assert not state.secrets and not state.secrets_known
    chk = run("lab06", snapshot=str(out)).check("secret-found")
    assert chk.status == "not-evaluated" and chk.message.startswith("Cannot verify")


def test_snapshot_to_stdout_without_istio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeApiServer(istio=False) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "config")
        assert main(["snapshot", "--context", CONTEXT, "--kubeconfig", kubeconfig]) == 0
    text = capsys.readouterr().out
    doc = yaml.safe_load(text)
    assert doc["x-graders"]["istioInstalled"] is False
    written = tmp_path / "from-stdout.yaml"
    written.write_text(text)
    state = load_state(snapshot=str(written))
    assert state.istio_installed is False and not state.gateways
    assert main(["analyze", "--snapshot", str(written)]) == 1
    assert "ISTIO-NOT-INSTALLED" in capsys.readouterr().out


def test_probes_through_port_forward_are_recorded_and_replayed(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "snap.yaml"
    with FakeGateway({"/productpage": "app"}) as gw:
        fake_api.set_portforward_backend(gw.address, 8080)
        assert main(["snapshot", "--context", CONTEXT, "--kubeconfig", fake_kubeconfig, "--probe",
                     "-o", str(out)]) == 0
        assert sorted(path for _, _, path in gw.requests) == ["/", "/", "/productpage"]  # "/" (404 NR) retried once
    state = load_state(snapshot=str(out))
    assert [(p.path, p.port, p.host, p.status, classify(p)) for p in state.probes] == [
        ("/", 80, "localhost", 404, "gateway-404-nr"), ("/productpage", 80, "localhost", 200, "app")]
    assert state.probes[1].headers["x-envoy-upstream-service-time"] == "7"
    assert fake_api.calls("portforward") and {r.method for r in fake_api.requests} == {"GET"}


def test_probe_url_records_failures_too(fake_api: FakeApiServer, fake_kubeconfig: str, tmp_path: Path) -> None:
    out = tmp_path / "snap.yaml"
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "--probe-url", dead_url(), "-o", str(out)]) == 0
    probes = load_state(snapshot=str(out)).probes
    assert [classify(p) for p in probes] == ["connection-refused", "connection-refused"]
    assert fake_api.calls("portforward") == []


def test_failure_leaves_an_existing_snapshot_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = write_kubeconfig_for(tmp_path / "config", {CONTEXT: dead_url()})
    out = tmp_path / "snap.yaml"
    out.write_text("previous snapshot\n")
    assert main(["snapshot", "--kubeconfig", kubeconfig, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Kubernetes API server") and err.count("\n") == 1
    assert out.read_text() == "previous snapshot\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "snap.yaml"]


def test_bad_output_path_fails_before_reading_the_cluster(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "-o", str(tmp_path / "no" / "such.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "--probe-url", "https://127.0.0.1:8443"]) == 2
    assert "is not an http://HOST:PORT URL" in capsys.readouterr().err
    assert fake_api.requests == []


@pytest.mark.parametrize("target", ["/dev/full", "/proc/x", "fifo", "symlink"])
def test_output_that_is_not_a_writable_regular_file_is_refused_before_reading(
        fake_api: FakeApiServer, fake_kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        target: str) -> None:
    import os
    import stat

    real = tmp_path / "real.yaml"
    real.write_text("kept\n")
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    elif target == "symlink":
        (tmp_path / "symlink").symlink_to(real)
        target = str(tmp_path / "symlink")
    before = os.lstat(target).st_mode if os.path.lexists(target) else None
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "-o", target]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {target}: "), err
    assert fake_api.requests == []  # refused before the cluster was read
    if before is not None:
        assert os.lstat(target).st_mode == before  # still a device, FIFO or link
        assert stat.S_IFMT(before) != stat.S_IFREG
    assert real.read_text() == "kept\n"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_snapshot_file_gets_normal_permissions(fake_api: FakeApiServer, fake_kubeconfig: str, tmp_path: Path,
                                               umask: int, mode: int) -> None:
    import os
    import stat

    from graders import outfile

    old = os.umask(umask)
    outfile.file_mode.cache_clear()
    try:
        assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "-o", str(tmp_path / "s.yaml")]) == 0
    finally:
        os.umask(old)
        outfile.file_mode.cache_clear()
    assert stat.S_IMODE((tmp_path / "s.yaml").stat().st_mode) == mode


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "soon"])
def test_timeout_must_be_a_finite_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["snapshot", "--timeout", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--timeout" in err
