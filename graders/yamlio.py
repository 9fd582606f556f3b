"""Safe reading of YAML and JSON files a learner or instructor hands us.

Limits keep hostile or accidental input from hanging a grader: a cap on alias use and on the nodes
aliases add when expanded (the "billion laughs" bomb -- counted from the aliases, never from the
document's size, so a big plain list is fine), a cap on documents, and size caps per file set by
what a real cluster's snapshot needs and what parsing it costs in memory (README "Benchmarks").
Parsing is linear in the file's size. A file that is one JSON document (``python -m graders
snapshot`` writes JSON, which is also YAML; ``kubectl get -o json``) is read by the JSON parser,
many times faster and leaner than any YAML parser; everything else by libyaml.

Syntax errors, and duplicate mapping keys (which kubectl refuses: ``mapping key "name" already
defined``), become one ``InputError`` line with file, line and column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from graders.errors import InputError
from graders.objects import RawObject

# Per file: JSON costs about 10 bytes of memory per byte read, YAML about 40 (PyYAML's node graph),
# so both caps allow roughly the same ~2.5 GB peak. 256 MiB of JSON is a 150,000-pod cluster.
MAX_JSON_BYTES = 256 * 1024 * 1024
MAX_FILE_BYTES = 64 * 1024 * 1024  # YAML
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_ALIASES = 1000
# Nodes that aliases may add to a document once expanded: far above any real manifest's use of
# anchors, far below a "billion laughs" document, whose handful of aliases multiply into millions.
MAX_ALIAS_EXPANSION = 1_000_000
MAX_DOCUMENTS = 50_000
YAML_SUFFIXES = (".yaml", ".yml", ".json")


# libyaml's C parser when PyYAML was built with it (its wheels are): six times faster on a snapshot,
# which is most of what grading one learner costs. Composition stays in Python on top of its events,
# so the alias cap below still stops a document while it is being read.
_LIBYAML = bool(yaml.__with_libyaml__)
_READ_AND_PARSE: tuple[type, ...] = ((yaml.cyaml.CParser,) if _LIBYAML
                                     else (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser))


class _SafeBase(yaml.composer.Composer, *_READ_AND_PARSE, yaml.constructor.SafeConstructor,  # type: ignore[misc]
                yaml.resolver.Resolver):
    def __init__(self, stream: str):
        if _LIBYAML:
            yaml.cyaml.CParser.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


class _LimitedLoader(_SafeBase):
    """Safe loader that refuses documents using more aliases than any real manifest needs, and
    mappings that repeat a key (PyYAML would silently keep the last value; kubectl refuses)."""

    aliases_seen = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _TooManyAliases(mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    first = seen.setdefault((key.tag, key.value), key)
                    if first is not key:
                        raise _DuplicateKey(key.value, key.start_mark, first.start_mark)
        return super().construct_mapping(node, deep=deep)


class _TooManyAliases(Exception):
    def __init__(self, mark: yaml.Mark):
        self.mark = mark


class _DuplicateKey(Exception):
    def __init__(self, key: str, mark: yaml.Mark, first: yaml.Mark | None):
        self.key, self.mark, self.first = key, mark, first


def _duplicate_line(name: str, err: _DuplicateKey) -> str:
    first = f" (first at line {err.first.line + 1})" if err.first is not None else ""
    return (f"{name}:{err.mark.line + 1}:{err.mark.column + 1}: duplicate key {err.key[:80]!r} in one mapping"
            f"{first}; kubectl refuses this too. Keep one of them")


def _alias_expansion(root: yaml.Node) -> int:
    """Nodes the aliases add when the document is expanded (expanded size minus distinct nodes)."""
    distinct: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in distinct:
            continue
        distinct.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return _expanded_size(root) - len(distinct)


def _expanded_size(root: yaml.Node) -> int:
    """Size of the tree the node graph stands for (aliases counted each time they are used),
    computed in time linear in the number of distinct nodes."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not children_done and id(node) in visiting:
            return _CAP  # a node that contains itself: infinite once expanded
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        kids = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if children_done:
            sizes[id(node)] = min(1 + sum(sizes.get(id(k), 1) for k in kids), _CAP)
        else:
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(root)]


_CAP = 1 << 62


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given, directories walked for *.yaml/*.yml/*.json in sorted order."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in YAML_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not found:
                raise InputError(f"{p}: directory has no .yaml, .yml or .json files; point at your manifest files")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        elif path.exists():
            raise InputError(f"{p}: not a regular file; give YAML files or directories of them")
        else:
            raise InputError(f"{p}: no such file or directory; check the path (relative to {os.getcwd()})")
    return out


def load_documents(path: Path, seq_start: int = 0) -> list[RawObject]:
    """All documents of one file, each with its ``file:line`` origin."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror}); check the path and permissions") from None
    is_json = head[:1] in (b"{", b"[")
    limit = MAX_JSON_BYTES if is_json else MAX_FILE_BYTES
    if size > limit:
        raise InputError(f"{path}: {size // (1024 * 1024)} MiB is larger than the {limit // (1024 * 1024)} MiB limit "
                         f"for one {'JSON' if is_json else 'YAML'} file"
                         f"{'' if is_json else ' (JSON, as `python -m graders snapshot` writes, may be larger)'}; "
                         "split it or keep only the kinds the course uses")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8 YAML or JSON") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    if is_json:
        parsed = _parse_json(text, str(path), seq_start)
        if parsed is not None:
            return parsed
    return list(_parse_text(text, str(path), seq_start))


class _JsonDuplicate(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _JsonDuplicate
    return out


def _parse_json(text: str, name: str, seq_start: int) -> list[RawObject] | None:
    """The file as one JSON document, or None when it is not JSON after all (YAML in flow style, several
    documents...): the YAML parser then reads it and reports any error with its position. A duplicate
    key is located by the YAML parser too (JSON is YAML), which gives its line and column."""
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError, _JsonDuplicate):
        return None
    return [] if obj is None else [RawObject(obj, f"{name}:1", seq_start + 1)]


def _parse_text(text: str, name: str, seq_start: int) -> Iterator[RawObject]:
    count = 0
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text)  # the pure-Python reader already checks characters here
        aliases_before = 0
        while loader.check_node():
            node = loader.get_node()
            count += 1
            if count > MAX_DOCUMENTS:
                raise InputError(f"{name}: more than {MAX_DOCUMENTS} YAML documents; split the file")
            line = node.start_mark.line + 1
            if loader.aliases_seen > aliases_before and _alias_expansion(node) > MAX_ALIAS_EXPANSION:
                raise InputError(f"{name}:{line}: YAML aliases (*name) in this document expand to more than "
                                 f"{MAX_ALIAS_EXPANSION:,} extra values; refused as a possible alias bomb. Write the "
                                 "objects out without anchors and aliases")
            aliases_before = loader.aliases_seen
            obj: Any = loader.construct_document(node)
            if obj is None:
                continue
            yield RawObject(obj, f"{name}:{line}", seq_start + count)
    except _DuplicateKey as err:
        raise InputError(_duplicate_line(name, err)) from None
    except _TooManyAliases as err:
        raise InputError(f"{name}:{err.mark.line + 1}: more than {MAX_ALIASES} YAML aliases (*name); refused as a "
                         "possible alias bomb. Write the objects out without anchors and aliases") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = (err.problem or err.context or "invalid YAML").strip()
        raise InputError(f"{where}: YAML syntax error: {problem}. Check the indentation and quoting on that line "
                         "(tabs are not allowed; a value containing ': ' needs quotes)") from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        raise InputError(f"{name}:{line}:{column}: character U+{err.character:04X} is not allowed in YAML (control "
                         "characters are not); delete it or write it as an escape inside double quotes") from None
    except yaml.YAMLError as err:
        raise InputError(f"{name}: YAML error: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise InputError(f"{name}: nesting is too deep to be a Kubernetes manifest; refused") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_paths(paths: list[str], seq_start: int = 0) -> list[RawObject]:
    files = expand_paths(paths)
    total = sum(f.stat().st_size for f in files)
    if total > MAX_TOTAL_BYTES:
        raise InputError(f"{len(files)} files total {total // (1024 * 1024)} MiB, over the "
                         f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB limit; pass fewer or smaller files")
    out: list[RawObject] = []
    for f in files:
        out.extend(load_documents(f, seq_start + len(out) + 1))
    return out
