"""``dag status`` after a merge that was refused or failed: it never says all is well, nor
sends the user into the same refusal again. Real git in temporary repositories; runs built
as ``test_merge`` builds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from dagspec import merge_asked
from dagspec import state as dstate
from dagspec.console import dag_command
from tests.conftest import git
from tests.test_merge import RUN, make_run
from tests.test_merge_leftovers import limited_dag

Cli = Callable[..., int]
A = {"a": ((), {"a.txt": "a\n"})}


def test_after_a_rewritten_base_is_refused_status_says_onto_current(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(git_repo, A)
    git(git_repo, "commit", "-q", "--amend", "-m", "initial, reworded")  # main rewritten
    assert run_cli("merge", RUN) == 1
    assert f"`{dag_command()} merge r1 --onto-current`" in capsys.readouterr().err
    assert run_cli("status", RUN) == 1
    assert f"next: {dag_command()} merge r1 --onto-current\n" in capsys.readouterr().out
    assert run_cli("merge", RUN, "--onto-current") == 0
    capsys.readouterr()
    assert run_cli("status", RUN) == 0


def test_after_the_base_branch_was_deleted_status_says_to_make_it_again(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_run(git_repo, A)
    base = dstate.load(paths).base_commit
    git(git_repo, "checkout", "-q", "--detach")
    git(git_repo, "branch", "-q", "-D", "main")
    assert run_cli("status", RUN) == 1
    out = capsys.readouterr().out
    assert f"next: git branch main {base[:12]}, then {dag_command()} merge r1\n" in out


def test_a_merge_asked_for_that_could_not_be_recorded_is_not_all_well(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run of --no-merge: `dag merge` under a file size limit below the state file's
    size cannot record that the merge was asked for, nor merge; `dag status` exits 1, as
    for any merge that failed, and stays so until the merge is done."""
    paths = make_run(git_repo, A)
    run = dstate.load(paths)
    dstate.save(attrs.evolve(run, options=attrs.evolve(run.options, merge=False)), paths.state_file)
    assert run_cli("status", RUN) == 0  # --no-merge: the merge is left to the user
    capsys.readouterr()
    size = paths.state_file.stat().st_size

    done = limited_dag(git_repo, size // 2, "merge", RUN)

    assert done.returncode == 1 and "File too large" in done.stderr, done.stderr
    assert not dstate.load(paths).options.merge  # the state could not say it
    assert run_cli("status", RUN) == 1
    assert f"next: {dag_command()} merge r1\n" in capsys.readouterr().out
    assert run_cli("merge", RUN) == 0
    assert not merge_asked.path(paths).exists()
    assert run_cli("status", RUN) == 0
