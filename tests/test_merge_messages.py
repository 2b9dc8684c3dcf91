"""What keeps git from making a run's merge commits is one ``dag: error:`` line saying what
to set (no identity, a signer that fails), and a dry run signs nothing and needs no
identity: it predicts, it makes nothing of the user's. Real git in temporary repositories;
runs built as ``test_merge`` builds them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state as dstate
from dagspec.errors import GitError
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.test_merge import RUN, add_commit, make_run, tip

Cli = Callable[..., int]


def _run_behind_main(repo: Path) -> str:
    """A run of two specs, b depending on a, and main moved since: the merge makes commits."""
    make_run(repo, {"a": ((), {"a.txt": "a\n"}), "b": (("a",), {"b.txt": "b\n"})})
    return add_commit(repo, {"main.txt": "the user's\n"}, "the user's work")


def _no_identity(repo: Path) -> None:
    """No name or email anywhere, and git told not to guess one (``user.useConfigOnly``)."""
    (Path(os.environ["HOME"]) / ".gitconfig").write_text("[commit]\n\tgpgsign = false\n")
    git(repo, "config", "user.useConfigOnly", "true")


def _failing_signer(repo: Path, tmp_path: Path) -> Path:
    """Signing on, with a signer that fails (a key it cannot load); each call logged."""
    log = tmp_path / "signer.log"
    signer = tmp_path / "signer"
    signer.write_text(f'#!/bin/sh\necho "$@" >> {log}\necho "error: cannot load key" >&2\nexit 1\n')
    signer.chmod(0o755)
    for key, value in (
        ("commit.gpgsign", "true"),
        ("gpg.format", "ssh"),
        ("gpg.ssh.program", str(signer)),
        ("user.signingkey", str(tmp_path / "key.pub")),
    ):
        git(repo, "config", key, value)
    return log


def test_no_identity_at_the_merge_is_one_line_saying_what_to_set(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = _run_behind_main(git_repo)
    _no_identity(git_repo)
    assert run_cli("merge", RUN) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "dag: error: git has no identity to make the merge commits of run r1 with (fatal: "
    ), err
    assert (
        "nothing was changed (no branch moved, no file touched): set one with `git config "
        'user.name "Your Name"` and `git config user.email you@example.com`'
    ) in err
    assert err.endswith("then `dag merge r1`\n")
    assert tip(git_repo) == moved
    assert not any(s.merged for s in dstate.load(RunPaths(git_repo, RUN)).specs)


def test_a_dry_run_needs_no_identity(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """It predicts: the commits it chains are nobody's, and nothing is written."""
    moved = _run_behind_main(git_repo)
    _no_identity(git_repo)
    assert run_cli("merge", RUN, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would merge     a" in out and "would merge     b" in out
    assert tip(git_repo) == moved


def test_a_failing_signer_at_the_merge_is_one_line_and_a_dry_run_signs_nothing(
    git_repo: Path, tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = _run_behind_main(git_repo)
    log = _failing_signer(git_repo, tmp_path)
    assert run_cli("merge", RUN, "--dry-run") == 0
    assert "would merge     b" in capsys.readouterr().out
    assert not log.exists()  # no signer ran for a merge that is not made
    assert run_cli("merge", RUN) == 1
    err = capsys.readouterr().err
    assert log.exists()
    assert err.count("\n") == 1 and err.startswith(
        "dag: error: git could not sign the merge commits of run r1 ("
    ), err
    assert (
        "nothing was changed (no branch moved, no file touched): fix the signing key "
        "(user.signingKey, gpg.format"
    ) in err
    assert "or turn commit.gpgSign off, then `dag merge r1`\n" in err
    assert tip(git_repo) == moved


def test_a_failed_git_s_command_is_one_line_with_its_message_cut() -> None:
    """A commit message given with ``-m`` runs to several lines: the command shows its first."""
    cmd = ["git", "commit-tree", "abc", "-m", "Merge dag/r1/a: a\n\nFeature A\n\ndagspec run r1\n"]
    message = str(GitError(cmd, 128, "", "fatal: unable to auto-detect email address\n"))
    assert message == (
        "`git commit-tree abc -m Merge dag/r1/a: a …` failed with exit code 128: "
        "fatal: unable to auto-detect email address"
    )


def test_a_dry_run_onto_a_rewritten_base_signs_nothing(
    git_repo: Path, tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--onto-current` replays each spec as new commits: predicted, none is signed."""
    make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "b": (("a",), {"b.txt": "b\n"})})
    git(git_repo, "commit", "-q", "--amend", "-m", "initial, reworded")  # main rewritten
    log = _failing_signer(git_repo, tmp_path)
    assert run_cli("merge", RUN, "--dry-run", "--onto-current") == 0
    assert "would merge     b" in capsys.readouterr().out
    assert not log.exists()
    assert run_cli("merge", RUN, "--onto-current") == 1
    assert "could not sign the merge commits of run r1" in capsys.readouterr().err
    assert log.exists()
