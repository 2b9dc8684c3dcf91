"""Hypothesis strategies for DAG files broken in their structure, not only their text:
values nested deep, lists grown large, types swapped, keys dropped and added; written out
in block or flow style. Used in-process (test_validate) and against the archive
(test_zipapp)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import strictyaml
from hypothesis import strategies as st

from tests.conftest import FIXTURES

KEYS = ["layers", "features", "id", "description", "depends_on", "execution", "dag", "x"]
SCALARS = st.one_of(
    st.sampled_from([None, True, 0, -1, 1.5, "", "L0", "a", "\x07", "\x1b[31m", "<<", "~"]),
    st.text(max_size=8),
    st.integers(min_value=0, max_value=100).map(lambda n: "y" * n * 50),
)


def _plain(path: Path) -> Any:
    """A valid fixture as plain dicts, lists and strings."""
    return strictyaml.dirty_load(path.read_text(), allow_flow_style=True).data


BASES = [_plain(p) for p in sorted((FIXTURES / "dags").glob("*.yaml"))]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path to every node, the root first."""
    found = [path]
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in list(items)[:50]:  # a grown list: its first entries are enough
            found += _nodes(child, (*path, key))
    return found


def _replace(value: Any, path: tuple[Any, ...], change: Callable[[Any], Any]) -> Any:
    if not path:
        return change(value)
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], tuple(rest), change)
    return copy


@st.composite
def structures(draw: st.DrawFn) -> Any:
    """A valid fixture with one to three structural edits."""
    value = draw(st.sampled_from(BASES))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_nodes(value)))
        kind = draw(st.sampled_from(["nest", "grow", "retype", "drop", "add"]))
        if kind == "nest":
            depth, wrap = draw(st.integers(1, 300)), draw(st.sampled_from(["list", "map"]))

            def nest(node: Any, depth: int = depth, wrap: str = wrap) -> Any:
                for _ in range(depth):
                    node = [node] if wrap == "list" else {"id": node}
                return node

            value = _replace(value, path, nest)
        elif kind == "grow":
            times = draw(st.integers(2, 1500))
            value = _replace(value, path, lambda n, t=times: [n] * t if not isinstance(n, list)
                             else n * t)  # fmt: skip
        elif kind == "retype":
            new = draw(st.one_of(SCALARS, st.just([]), st.just({}), st.just([{}])))
            value = _replace(value, path, lambda _, new=new: new)
        else:
            key, extra = draw(st.sampled_from(KEYS)), draw(SCALARS)

            def edit(node: Any, kind: str = kind, key: str = key, extra: Any = extra) -> Any:
                if not isinstance(node, dict):
                    return node
                if kind == "drop":
                    return {k: v for k, v in node.items() if k != key}
                return {**node, key: extra}

            value = _replace(value, path, edit)
    return value


def to_text(value: Any, *, flow: bool) -> str:
    """YAML text: flow style (JSON, which strictyaml reads with flow style allowed) or block."""
    if flow:
        return json.dumps(value) + "\n"
    return "\n".join(_block(value, 0)) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict) and value:
        entries = [(f"{pad}{json.dumps(str(k))}:", v) for k, v in value.items()]
    elif isinstance(value, list) and value:
        entries = [(f"{pad}-", v) for v in value]
    else:
        return [pad + _scalar(value)]
    lines: list[str] = []
    for head, child in entries:
        if isinstance(child, dict | list) and child:
            lines += [head, *_block(child, indent + 2)]
        else:
            lines.append(f"{head} {_scalar(child)}")
    return lines


def mutant_texts() -> st.SearchStrategy[str]:
    return st.builds(lambda v, flow: to_text(v, flow=flow), structures(), st.booleans())
