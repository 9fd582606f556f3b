"""`python -m graders snapshot`: what it writes reads back into the very state live mode sees."""

from __future__ import annotations

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


def test_snapshot_is_read_only_and_skips_secrets(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                 tmp_path: Path) -> None:
    fake_api.add({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "istio-system"},
                  "data": {"tls.key": "c2VjcmV0"}})
    assert main(["snapshot", "--kubeconfig", fake_kubeconfig, "-o", str(tmp_path / "s.yaml")]) == 0
    assert {r.method for r in fake_api.requests} == {"GET"}
    assert "c2VjcmV0" not in (tmp_path / "s.yaml").read_text()
    assert not any(r.resource in ("secrets", "configmaps") for r in fake_api.requests)


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
