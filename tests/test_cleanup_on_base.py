"""``dag cleanup`` before ``dag merge``, after the user took the run's work by hand: a
completed spec whose branch cleanup deletes because its work is on the base branch is
recorded as merged, as ``dag merge`` records it; else ``dag merge`` would call its branch
missing forever, and ``dag status`` would wait for a merge that cannot come. Real git in
temporary repositories; runs built as ``test_merge`` builds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state as dstate
from dagspec.lifecycle import SpecStatus
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.test_merge import RUN, branch, make_run, tip
from tests.test_squash_merged import PARKED, TWO, branches, park, squash

Cli = Callable[..., int]


def merged(paths: RunPaths) -> dict[str, tuple[bool, str | None]]:
    return {s.id: (s.merged, s.merge_commit) for s in dstate.load(paths).specs}


def first_parent_merges(repo: Path) -> dict[str, str]:
    """Spec id -> the commit on main's first-parent line that merged its branch."""
    out = git(repo, "log", "--first-parent", "--merges", "--format=%H %s", "main")
    return {s.split(": ")[-1]: sha for sha, s in (line.split(" ", 1) for line in out.splitlines())}


def _squash_result(repo: Path) -> RunPaths:
    paths = park(repo)
    squash(repo, PARKED)
    return paths


def _fast_forward_result(repo: Path) -> RunPaths:
    paths = park(repo)
    git(repo, "merge", "-q", "--ff-only", PARKED)
    return paths


def _squash_spec_branches(repo: Path) -> RunPaths:
    paths = make_run(repo, TWO)
    squash(repo, branch("b"))  # b carries a
    return paths


@pytest.mark.parametrize(
    ("take", "by_commit"),
    [(_squash_result, False), (_fast_forward_result, True), (_squash_spec_branches, False)],
)
def test_cleanup_records_the_specs_whose_work_it_finds_on_the_base(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    take: Callable[[Path], RunPaths],
    by_commit: bool,
) -> None:
    paths = take(git_repo)
    on_main = tip(git_repo)

    assert run_cli("cleanup", RUN) == 0

    assert branches(git_repo) == ["main"]
    commits = first_parent_merges(git_repo) if by_commit else {}
    assert merged(paths) == {s: (True, commits.get(s)) for s in TWO}
    capsys.readouterr()
    assert run_cli("merge", RUN) == 0
    out = capsys.readouterr().out
    # recorded with the commit that merged it: "merged before"; in content only: "already"
    assert out.count("merged before" if by_commit else "already merged") == 2
    assert "missing" not in out
    assert tip(git_repo) == on_main
    assert run_cli("status", RUN) == 0


def test_cleanup_after_a_partial_squash_records_only_what_is_on_the_base(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = park(git_repo)
    squash(git_repo, PARKED, leave_out=("b.txt",))

    assert run_cli("cleanup", RUN) == 1

    assert branches(git_repo) == sorted(["main", PARKED, branch("b")])
    assert merged(paths) == {"a": (True, None), "b": (False, None)}
    capsys.readouterr()
    assert run_cli("merge", RUN) == 0
    out = capsys.readouterr().out
    assert "already merged" in out and "missing" not in out
    assert (git_repo / "b.txt").read_text() == "b\n"
    assert merged(paths)["b"][0]


def test_cleanup_records_no_failed_spec_as_merged(git_repo: Path, run_cli: Cli) -> None:
    """A failed spec's branch with nothing of its own goes, as before; it merged nothing."""
    paths = make_run(git_repo, TWO, {"b": SpecStatus.FAILED})
    git(git_repo, "branch", "-q", "-f", branch("b"), "main")
    squash(git_repo, branch("a"))

    run_cli("cleanup", RUN)

    assert branches(git_repo) == ["main"]
    assert merged(paths) == {"a": (True, None), "b": (False, None)}
