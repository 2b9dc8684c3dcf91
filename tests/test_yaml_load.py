"""``yaml_load`` reads every text as strictyaml's own loader does, comments aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import strictyaml.ruamel as ruamel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strictyaml import StrictYAMLError
from strictyaml.parser import StrictYAMLLoader
from strictyaml.ruamel.comments import CommentedMap, CommentedSeq
from strictyaml.ruamel.error import YAMLError

from dagspec import dagfile, yaml_load
from dagspec.errors import SpecError
from tests.conftest import FIXTURES
from tests.structural_mutants import mutant_texts

TEXTS = sorted(FIXTURES.glob("dags/**/*.yaml"))
_Strict = type("_Strict", (StrictYAMLLoader,), {"label": "x", "allow_flow_style": True})


def _read(load: Any, text: str) -> tuple[str, object]:
    """What a loader made of ``text``: its data with every map's and list's line,
    ``refused`` (a YAML error), or ``crashed`` (any other exception)."""
    try:
        return "ok", _with_lines(load(text))
    except RecursionError:
        return "too deep", None
    except (StrictYAMLError, YAMLError):
        return "refused", None
    except Exception as exc:  # strictyaml's round-trip code has bare asserts
        return "crashed", type(exc).__name__


def _with_lines(node: object) -> object:
    if isinstance(node, CommentedMap):
        return ("map", node.lc.line, [(k, _with_lines(v)) for k, v in node.items()])
    if isinstance(node, CommentedSeq):
        return ("seq", node.lc.line, [_with_lines(v) for v in node])
    return node


def _agree(text: str) -> None:
    """Both read the same data, or both refuse. Which fault of a broken text is named first
    may differ (strictyaml's scanner reads ahead for comments and refuses a tag, anchor or
    alias only once it is parsed; the lines of realistic faults are test_validate's); a
    text strictyaml's loader crashes on is read or refused, never a crash."""
    try:
        text = dagfile._decode(text.encode(), "x")  # as dagspec reads a file
    except SpecError:  # empty, too deep, binary: refused before any parser sees it
        return
    ours = _read(yaml_load.load, text)
    strict = _read(lambda t: ruamel.load(t, Loader=_Strict), text)
    assert ours[0] != "crashed", text
    if strict[0] != "crashed":
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


def test_a_text_strictyaml_s_loader_crashed_on_is_read() -> None:
    """ruamel's round-trip scanner failed a bare assert on this text, which `dag validate`
    would have reported as a bug in dagspec; the plain scanner reads it (and the schema
    then refuses it, one line per problem)."""
    text = "? #&b#`']a0%??#a|\"]&\n> #%&} \t{!&:"
    with pytest.raises(AssertionError):
        ruamel.load(text, Loader=_Strict)
    assert _read(yaml_load.load, text)[0] == "ok"
