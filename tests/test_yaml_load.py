"""``yaml_load`` reads every text as strictyaml's own loader does, comments aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import strictyaml.ruamel as ruamel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strictyaml.parser import StrictYAMLLoader
from strictyaml.ruamel.comments import CommentedMap, CommentedSeq

from dagspec import dagfile, yaml_load
from tests.conftest import FIXTURES
from tests.structural_mutants import mutant_texts

TEXTS = sorted(FIXTURES.glob("dags/**/*.yaml"))
_Strict = type("_Strict", (StrictYAMLLoader,), {"label": "x", "allow_flow_style": True})


def _read(load: Any, text: str) -> tuple[str, object]:
    """What a loader made of ``text``: its data with every map's and list's line, or the
    kind of its refusal."""
    try:
        return "ok", _with_lines(load(text))
    except RecursionError:
        return "too deep", None
    except Exception as exc:  # a loader's refusal: compared by whether it refused
        return "refused", type(exc).__module__.split(".")[0]


def _with_lines(node: object) -> object:
    if isinstance(node, CommentedMap):
        return ("map", node.lc.line, [(k, _with_lines(v)) for k, v in node.items()])
    if isinstance(node, CommentedSeq):
        return ("seq", node.lc.line, [_with_lines(v) for v in node])
    return node


def _agree(text: str) -> None:
    if dagfile._too_deep(text):  # refused before any parser sees it
        return
    ours = _read(yaml_load.load, text)
    strict = _read(lambda t: ruamel.load(t, Loader=_Strict), text)
    assert ours == strict, text


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_every_fixture_reads_as_strictyaml_reads_it(path: Path) -> None:
    _agree(path.read_text(errors="replace").replace("\0", ""))


@pytest.mark.parametrize(
    ("text", "error", "line"),
    [
        ("a: 1\nb: &x 1\nc: *x\n", "AnchorTokenDisallowed", 1),
        ("a: 1\nb: *x\n", "AnchorTokenDisallowed", 1),
        ("a:\n  b: !!str 1\n", "TagTokenDisallowed", 1),
        ("a: [b,\n  !foo c]\n", "TagTokenDisallowed", 1),
        ("a: 1\na: 2\n", "DuplicateKeysDisallowed", 1),
    ],
)
def test_what_strictyaml_refuses_is_refused_the_same_way(text: str, error: str, line: int) -> None:
    with pytest.raises(Exception) as refused:
        yaml_load.load(text)
    assert type(refused.value).__name__ == error
    assert refused.value.problem_mark.line == line  # type: ignore[attr-defined]


def test_bangs_and_stars_inside_values_are_text() -> None:
    assert yaml_load.load('a: "!!str *x &y"\nb: x!y*z&\n') == {"a": "!!str *x &y", "b": "x!y*z&"}


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutant_texts())
def test_mutated_files_read_as_strictyaml_reads_them(text: str) -> None:
    _agree(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=":-[]{}#&*!|>'\"\t \n%@`,?ab0", max_size=40))
def test_any_text_reads_as_strictyaml_reads_it(text: str) -> None:
    _agree(text)
