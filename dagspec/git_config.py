"""The user's git configuration as a run needs it: who commits, which filters are required,
and the few settings dagspec writes (``dag demo``'s new repository). Signing settings are
:mod:`dagspec.git_commit`'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dagspec.errors import GitError
from dagspec.git import run
from dagspec.git_output import lines, nul_split


def init_repo(path: Path, branch: str) -> None:
    """A new repository at ``path`` whose first branch is ``branch`` (for ``dag demo``)."""
    run(path, "init", "--quiet", "--initial-branch", branch)


def set_config(repo: Path, key: str, value: str) -> None:
    """Set ``key`` in the repository's own configuration."""
    run(repo, "config", "--local", key, value)


def identity(repo: Path, who: str) -> str | None:
    """``Name <email>`` git would record as ``who`` (``AUTHOR`` or ``COMMITTER``), or None
    when it has none configured and cannot guess one."""
    try:
        ident = run(repo, "var", f"GIT_{who}_IDENT").strip()
    except GitError:
        return None
    return ident.rsplit(">", 1)[0] + ">"


_IDENTITY_KEYS = r"^(user|author|committer)\.(name|email)$"


def identity_env(repo: Path) -> dict[str, str]:
    """Who commits in ``repo``'s checkout, as ``GIT_AUTHOR_*`` and ``GIT_COMMITTER_*``
    variables for commits made elsewhere: configuration read in the checkout (an
    ``includeIf "onbranch:main"`` applies there, not on a ``dag/...`` branch), by git's
    precedence (``author.name`` over ``user.name``...); a variable the user set is kept."""
    out = run(repo, "config", "-z", "--get-regexp", _IDENTITY_KEYS, check=False)
    found: dict[str, str] = {}
    for entry in nul_split(out):
        key, _, value = entry.partition("\n")
        found[key.lower()] = value  # the last one wins, as in git
    env: dict[str, str] = {}
    for who in ("author", "committer"):
        for what in ("name", "email"):
            given = found.get(f"{who}.{what}") or found.get(f"user.{what}")
            variable = f"GIT_{who.upper()}_{what.upper()}"
            if given and variable not in os.environ:
                env[variable] = given
    return env


_FILTER_KEYS = r"^filter\..+\.(required|process|smudge|clean)$"


_TRUE = ("", "true", "yes", "on", "1")


def required_filters(repo: Path) -> dict[str, list[str]]:
    """``{name: commands}`` of each filter the configuration marks ``required``: its
    ``process`` command, else its ``smudge`` and ``clean`` ones (one ``git config``)."""
    out = run(repo, "config", "-z", "--get-regexp", _FILTER_KEYS, check=False)
    found: dict[str, dict[str, str]] = {}
    for entry in nul_split(out):
        key, _, value = entry.partition("\n")
        name, _, what = key.removeprefix("filter.").rpartition(".")
        found.setdefault(name, {})[what.lower()] = value
    return {
        name: [said["process"]]
        if said.get("process")
        else [said[what] for what in ("smudge", "clean") if said.get(what)]
        for name, said in found.items()
        if said.get("required", "false").strip().lower() in _TRUE
    }


def filters_used(repo: Path, commit: str, names: Sequence[str]) -> set[str]:
    """Which of the filters ``names`` a ``.gitattributes`` file of ``commit`` uses
    (``filter=NAME``), in one ``git grep``."""
    patterns = [arg for name in names for arg in ("-e", f"filter={name}")]
    args = ("grep", "-h", "-o", "-w", "-F", *patterns, commit, "--", ":(glob)**/.gitattributes")
    return {line.removeprefix("filter=") for line in lines(run(repo, *args, check=False))}
