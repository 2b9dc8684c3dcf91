"""Ending a git that the interrupt's own wait reaped already (``git.end_group``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dagspec import git


def test_ending_a_git_reaped_already_is_no_crash(git_repo: Path) -> None:
    """A Ctrl-C during ``Popen.communicate`` waits a moment for the child and may reap it;
    ``end_group`` then met ``ChildProcessError`` (``os.waitid``) and dagspec exited 3, "a
    bug in dagspec", instead of 130."""
    process = subprocess.Popen(
        ["git", "rev-parse", "HEAD"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    with process:
        assert process.wait(timeout=30) == 0  # reaped, as communicate's wait does
        out, err = git.end_group(process)
    assert len(out.strip()) == 40 and err == b""
