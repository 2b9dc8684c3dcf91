"""``dag merge RUN --onto-current`` after the user brought one spec's branch onto the
rewritten base branch by hand (a squash merge, a cherry-pick): that spec is "already
merged", with no replayed commit and no empty merge commit; the others are replayed. Real
git in temporary repositories; runs built as ``test_merge`` builds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.merge import merge_run
from dagspec.merge_report import Outcome
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.test_merge import RUN, Specs, add_commit, branch, load, make_run, tip
from tests.test_squash_merged import squash

Cli = Callable[..., int]
SPECS: Specs = {
    "a": ((), {"a.txt": "a\n"}),
    "b": ((), {"b.txt": "b\n"}),
    "c": (("a",), {"c.txt": "c\n"}),
}


def _squash(repo: Path) -> None:
    squash(repo, branch("a"))


def _cherry_pick(repo: Path) -> None:
    git(repo, "cherry-pick", branch("a"))


def rewritten_run(repo: Path, bring: Callable[[Path], None]) -> RunPaths:
    """A run of a, b, c (on a) from a commit the user then dropped from main, and a's
    branch brought onto the rewritten main by ``bring``."""
    add_commit(repo, {"secret.txt": "password\n"}, "add the deploy key by mistake")
    paths = make_run(repo, SPECS)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    bring(repo)
    return paths


@pytest.mark.parametrize("bring", [_squash, _cherry_pick])
def test_a_spec_brought_onto_the_rewritten_base_is_already_merged(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    bring: Callable[[Path], None],
) -> None:
    paths = rewritten_run(git_repo, bring)
    brought = tip(git_repo)
    capsys.readouterr()

    assert run_cli("merge", RUN, "--onto-current", "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines if " a " in f"{line} "] == [
        ["already", "merged", "a"]
    ]

    state, report = merge_run(git_repo, *load(paths), onto_current=True)

    outcomes = {s.spec_id: s.outcome for s in report.specs}
    assert outcomes == {"a": Outcome.ALREADY_MERGED, "b": Outcome.MERGED, "c": Outcome.MERGED}
    subjects = git(git_repo, "log", "--format=%s", f"{brought}..main").splitlines()
    assert sorted(subjects) == sorted(
        [f"dag({RUN}): {s}, replayed" for s in "bc"] + [f"Merge {branch(s)}: {s}" for s in "bc"]
    )
    assert state.spec("a").merged and state.spec("a").merge_commit is None
    assert all(s.merged for s in state.specs)
    assert (git_repo / "c.txt").read_text() == "c\n"
