"""graders.yamlio: duplicate keys refused with file:line:column (as kubectl refuses them), the
alias-bomb guard counting what aliases add (never a document's size), JSON read by the JSON parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graders import yamlio
from graders.cli import main
from graders.errors import InputError

GATEWAY = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
  name: other
spec:
  selector: {istio: ingressgateway}
"""


def test_duplicate_yaml_key_is_one_line_with_both_positions(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "gw.yaml"
    path.write_text(GATEWAY)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {path}:6:3: duplicate key 'name' in one mapping (first at line 4); kubectl refuses "
                   "this too. Keep one of them\n")


def test_duplicate_key_in_a_flow_mapping_and_in_json(tmp_path: Path):
    flow = tmp_path / "flow.yaml"
    flow.write_text("kind: Service\nmetadata: {name: a, name: b}\n")
    with pytest.raises(InputError, match=r"flow\.yaml:2:21: duplicate key 'name'"):
        yamlio.load_documents(flow)
    js = tmp_path / "obj.json"
    js.write_text('{"kind": "Service",\n "metadata": {"name": "a",\n  "name": "b"}}\n')
    with pytest.raises(InputError, match=r"obj\.json:3:3: duplicate key 'name'"):
        yamlio.load_documents(js)


def test_merge_keys_and_the_same_key_in_different_mappings_are_fine(tmp_path: Path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {a: 1}\nx:\n  <<: *b\n  a: 2\ny: {a: 3}\n")
    assert yamlio.load_documents(path)[0].obj == {"base": {"a": 1}, "x": {"a": 2}, "y": {"a": 3}}


def test_the_alias_guard_counts_what_aliases_add_not_the_document_size(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(yamlio, "MAX_ALIAS_EXPANSION", 100)
    plain = tmp_path / "plain.yaml"
    plain.write_text("items:\n" + "".join(f"- {{name: pod-{i}, n: {i}}}\n" for i in range(500)))
    assert len(yamlio.load_documents(plain)[0].obj["items"]) == 500  # 1,500 nodes, no alias: accepted
    small = tmp_path / "small.yaml"
    small.write_text("a: &a [1, 2, 3]\nb: [*a, *a]\n")  # 8 extra nodes
    assert yamlio.load_documents(small)[0].obj["b"] == [[1, 2, 3], [1, 2, 3]]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [" + ", ".join(["x"] * 10) + "]\nb: [" + ", ".join(["*a"] * 20) + "]\n")  # 220 extra
    with pytest.raises(InputError, match=r"bomb\.yaml:1: YAML aliases .* expand to more than 100 extra values"):
        yamlio.load_documents(bomb)


def test_json_over_the_old_8_mib_limit_is_read(tmp_path: Path):
    items = [{"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "default", "labels": {"pad": "x" * 200}}}
             for i in range(40_000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert path.stat().st_size > 8 * 2**20
    (doc,) = yamlio.load_documents(path)
    assert len(doc.obj["items"]) == 40_000 and doc.origin == f"{path}:1"


def test_not_json_after_all_falls_back_to_yaml(tmp_path: Path):
    path = tmp_path / "flow.yaml"
    path.write_text("{kind: Service, metadata: {name: a}}\n")  # YAML flow style: not JSON
    assert yamlio.load_documents(path)[0].obj["metadata"] == {"name": "a"}
