"""git, as small named verbs over one subprocess helper.

Every call runs with a cleaned environment: the variables git sets for hooks (``GIT_DIR``,
``GIT_INDEX_FILE``, ``GIT_WORK_TREE``...) would otherwise point our commands at the
repository and index of the commit being made, so a ``dag`` run from a hook would read or
write the wrong place. Identity and configuration variables are kept.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from dagspec.errors import GitError

_KEPT = ("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG", "GIT_SSH", "GIT_ASKPASS", "GIT_TERMINAL")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without inherited repository-locating ``GIT_*`` variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GIT_") or name.startswith(_KEPT)
    }
    env.update(extra or {})
    return env


def run(cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
    """Run ``git args`` in ``cwd`` and return stdout; raise ``GitError`` when it fails."""
    cmd = ["git", *args]
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError(cmd, 127, "", "git is not installed or not on PATH") from None
    stdout = done.stdout.decode("utf-8", "surrogateescape")
    if check and done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "surrogateescape")
        raise GitError(cmd, done.returncode, stdout, stderr)
    return stdout


def ok(cwd: Path, *args: str) -> bool:
    """Whether ``git args`` succeeds (for questions such as "does this ref exist")."""
    try:
        run(cwd, *args)
    except GitError:
        return False
    return True


def repo_root(start: Path) -> Path | None:
    """The top of the working tree containing ``start``, or None outside any repository."""
    if not start.is_dir():
        return None
    try:
        top = run(start, "rev-parse", "--show-toplevel").strip()
    except GitError:
        return None
    return Path(top) if top else None


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def nul_split(text: str) -> list[str]:
    """Split ``-z`` output."""
    return [item for item in text.split("\0") if item]
