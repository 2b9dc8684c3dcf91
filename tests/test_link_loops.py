"""Loops of symbolic links a user can make (``a -> b``, ``b -> a``) where dagspec reads or
writes: each is one ``dag: error:`` line naming the link, never a bug in dagspec.

``Path.resolve`` raises ``RuntimeError`` at a loop before Python 3.13 and leaves the loop in
the path from 3.13; ``workspace.real_path`` says the same on every version.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.errors import LinkLoopError
from dagspec.workspace import real_path, resolved
from tests.engine_support import Project, branches, dag_text

pytest_plugins = ("tests.engine_fixtures",)
RunCli = Callable[..., int]


def loop(one: Path, other: Path) -> None:
    """``one -> other`` and ``other -> one``."""
    one.symlink_to(other.name)
    other.symlink_to(one.name)


@pytest.mark.parametrize(
    ("asked", "named"),
    [
        ("a", "a"),  # the loop itself
        ("a/spec", "a"),  # a path through it
        ("a/../c", "a"),  # `..` after it: the system goes through `a` first
        ("d/a", "d/a"),  # through a link to a directory: the loop as the path reaches it
    ],
)
def test_real_path_names_the_link_where_the_loop_starts(
    tmp_path: Path, asked: str, named: str
) -> None:
    loop(tmp_path / "a", tmp_path / "b")
    (tmp_path / "d").symlink_to(tmp_path)
    with pytest.raises(LinkLoopError) as info:
        real_path(tmp_path / asked)
    assert info.value.link == str(tmp_path / named)
    assert str(info.value) == (
        f"{tmp_path / named} is a symbolic link that leads back to itself (a loop of links): "
        "remove it, or point it at a directory"
    )
    assert resolved(tmp_path / asked).is_absolute()  # for comparing places: never raises


@pytest.mark.parametrize("asked", ["here", "gone/deeper", "link/x"])
def test_real_path_follows_links_whether_the_place_exists_or_not(
    tmp_path: Path, asked: str
) -> None:
    (tmp_path / "here").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "here")
    assert real_path(tmp_path / asked) == Path(os.path.realpath(tmp_path / asked))


@pytest.mark.slow  # preflight starts git a dozen times and autospec once
def test_a_loop_at_a_spec_directory_is_refused_by_preflight(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_dag(dag_text("f00", "f01"))
    (project.repo / "specs").mkdir(exist_ok=True)
    loop(project.repo / "specs" / "f00", project.repo / "specs" / "f01")
    for command in (["run", "dag.yaml", "--run-id", "r"], ["run", "dag.yaml", "--dry-run"]):
        assert run_cli(*command) == 1
        out, err = capsys.readouterr()
        assert err == (
            "dag: error: specs/f00 is a symbolic link that leads back to itself (a loop of "
            "links): dagspec writes there; replace the symlink with a directory, or remove it\n"
        )
    assert "  error    specs/f00 is a symbolic link that leads back" in out
    assert branches(project.repo) == ["main"]


@pytest.mark.slow
def test_a_loop_on_the_way_to_the_spec_directories_is_refused_naming_it(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project.write_dag(dag_text("a"))
    loop(project.repo / "specs", project.repo / "specs.old")
    assert run_cli("doctor", "dag.yaml") == 1
    out = capsys.readouterr().out
    assert (
        f"  error    specs/a leads through a loop of symbolic links ({project.repo / 'specs'} "
        "leads back to itself)"
    ) in out


@pytest.mark.slow
@pytest.mark.parametrize("where", ["the root", "its parent"])
def test_a_worktree_root_that_is_a_loop_of_links_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """Every spec failed to make its worktree with a bare ``FileExistsError``."""
    project.write_dag(dag_text("a", "b"))
    root = project.repo.parent / f"{project.repo.name}.worktrees"
    loop(root, project.repo.parent / "x")
    given = [] if where == "the root" else ["--worktree-root", str(root / "inner")]
    shown = root if where == "the root" else root / "inner"
    said = (
        "is a symbolic link that leads back to itself (a loop of links)"
        if where == "the root"
        else f"leads through a loop of symbolic links ({root} leads back to itself)"
    )
    line = f"the worktree root {shown} {said}: remove the link, or choose another root with "
    assert run_cli("doctor", "dag.yaml", *given) == 1
    assert f"  error    {line}--worktree-root\n" in capsys.readouterr().out
    assert run_cli("run", "dag.yaml", "--run-id", "r", *given) == 1
    assert capsys.readouterr().err == f"dag: error: {line}--worktree-root\n"
    assert not (project.repo / ".autospec" / "state" / "dag-runs" / "r.yaml").exists()
    assert branches(project.repo) == ["main"]
