"""Safe reading of YAML and JSON files a learner or instructor hands us.

Limits keep hostile or accidental input from hanging a grader: a size cap per file and in total,
a cap on alias use (the "billion laughs" expansion), and a cap on documents. Syntax errors become
one ``InputError`` line with file, line and column.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from graders.errors import InputError
from graders.objects import RawObject

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_ALIASES = 1000
# Nodes a document may have once aliases are expanded: far above any real manifest, far below a
# "billion laughs" document, whose handful of aliases multiply into millions of nodes.
MAX_EXPANDED_NODES = 2_000_000
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
    """Safe loader that refuses documents using more aliases than any real manifest needs."""

    aliases_seen = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _TooManyAliases(mark)
        return super().compose_node(parent, index)


class _TooManyAliases(Exception):
    def __init__(self, mark: yaml.Mark):
        self.mark = mark


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
            return MAX_EXPANDED_NODES + 1  # a node that contains itself: infinite once expanded
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        kids = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if children_done:
            sizes[id(node)] = min(1 + sum(sizes.get(id(k), 1) for k in kids), MAX_EXPANDED_NODES + 1)
        else:
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(root)]


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
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror}); check the path and permissions") from None
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path}: {size // (1024 * 1024)} MiB is larger than the {MAX_FILE_BYTES // (1024 * 1024)} "
                         "MiB limit for one manifest or snapshot; split it or keep only the kinds the course uses")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8 YAML or JSON") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    return list(_parse_text(text, str(path), seq_start))


def _parse_text(text: str, name: str, seq_start: int) -> Iterator[RawObject]:
    count = 0
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text)  # the pure-Python reader already checks characters here
        while loader.check_node():
            node = loader.get_node()
            count += 1
            if count > MAX_DOCUMENTS:
                raise InputError(f"{name}: more than {MAX_DOCUMENTS} YAML documents; split the file")
            line = node.start_mark.line + 1
            if _expanded_size(node) > MAX_EXPANDED_NODES:
                raise InputError(f"{name}:{line}: this document expands to more than {MAX_EXPANDED_NODES:,} "
                                 "values through YAML aliases (*name); refused as a possible alias bomb. Write the "
                                 "objects out without anchors and aliases")
            obj: Any = loader.construct_document(node)
            if obj is None:
                continue
            yield RawObject(obj, f"{name}:{line}", seq_start + count)
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
