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
from dagspec.workspace import RunPaths, real_path, resolved
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


# --- where the runs are recorded ---------------------------------------------------------------

RUN_COMMANDS = [
    ["resume"],
    ["resume", "r"],
    ["list"],
    ["list", "--json"],
    ["status"],
    ["status", "r"],
    ["report"],
    ["merge", "r"],
    ["merge", "--dry-run"],
    ["cleanup", "r"],
    ["retry", "r", "a"],
    ["retry", "a"],
    ["logs"],
    ["logs", "r", "a"],
]


@pytest.mark.parametrize(
    ("where", "said"),
    [
        (
            ".autospec/state/dag-runs",
            "is a symbolic link that leads back to itself (a loop of links)",
        ),
        (".autospec/state", "leads through a loop of symbolic links ({link} is one)"),
        (".autospec", "leads through a loop of symbolic links ({link} is one)"),
    ],
    ids=["runs", "parent", "grandparent"],
)
@pytest.mark.parametrize("command", RUN_COMMANDS, ids=" ".join)
def test_runs_behind_a_loop_of_links_are_one_error_naming_the_link(
    git_repo: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    where: str,
    said: str,
    command: list[str],
) -> None:
    """Listing found nothing there and reading failed: ``no runs yet``, ``no run 'r'`` (or
    a warning, then ``no runs yet``), as if the repository had none."""
    link = git_repo / where
    link.parent.mkdir(parents=True, exist_ok=True)
    loop(link, link.with_name("other"))
    assert run_cli(*command) == 1
    out, err = capsys.readouterr()
    runs = git_repo / ".autospec" / "state" / "dag-runs"
    assert out == ""
    assert err == (
        f"dag: error: {runs} {said.format(link=link)}, so the runs of {git_repo} recorded "
        f"there cannot be read: point {link} at the directory they are in, or remove it\n"
    )


FIX = "point it at the run's state file, or remove it"


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (
            lambda f: loop(f, f.with_name("s.other")),
            "is a symbolic link that leads back to itself (a loop of links): " + FIX,
        ),
        (lambda f: f.symlink_to("gone.yaml"), "is a symbolic link that leads nowhere: " + FIX),
        (lambda f: f.mkdir(), "cannot be read (Is a directory): put that right, then try again"),
    ],
    ids=["loop", "dangling", "directory"],
)
def test_a_state_file_that_cannot_be_read_is_named_and_never_no_runs_yet(
    git_repo: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    said: str,
) -> None:
    """It was a bug in dagspec (``OSError: Too many levels of symbolic links``) for ``dag
    list``, and ``no run 'r' (did you mean 'r'?)`` for ``dag status r``; with no other run,
    a warning then ``no runs yet``."""
    from tests.run_states import run, save

    file = RunPaths(git_repo, "r").state_file
    file.parent.mkdir(parents=True)
    make(file)
    named = f"{file}, the state of run 'r', {said}"
    assert run_cli("status", "r") == 1
    assert capsys.readouterr().err == f"dag: error: {named}\n"
    assert run_cli("resume") == 1
    assert capsys.readouterr().err.splitlines() == [
        f"dag: warning: {named}",
        f"dag: error: no run of {git_repo} can be read (1 state file, said above): put "
        "it right, or `dag run FILE` starts a new run",
    ]
    save(run(git_repo, "ok"))
    assert run_cli("list") == 1  # the others listed, the unreadable one named
    out, err = capsys.readouterr()
    assert "ok" in out and err == f"dag: error: {named}\n"
    assert run_cli("status") == 0
    assert capsys.readouterr().err.startswith(f"dag: warning: {named}\nnote: run ok (the newest")


def test_a_loop_where_another_checkout_records_its_runs_is_not_this_checkouts_error(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A worktree of the user's own asks the other checkouts whether it is a run's: one
    whose runs cannot be read records none of it."""
    from tests.conftest import git

    runs = git_repo / ".autospec" / "state" / "dag-runs"
    runs.parent.mkdir(parents=True)
    loop(runs, runs.with_name("other"))
    git(git_repo, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "mine"))
    assert run_cli("--repo", tmp_path / "mine", "list") == 0
    assert capsys.readouterr().out.startswith(f"no runs yet in {tmp_path / 'mine'}: ")
