"""Whether a user's command can start: ``execution.setup``, ``execution.notify``, ``--notify``.

Each runs as ``/bin/sh -c COMMAND`` (setup in the spec's worktree, notify in the
repository), hours into a run; a typo (``notify: 5``, a program not installed) would fail
only then. The rule, because the shell reads the command: its first word is checked when it
is a plain word (letters, digits and ``_ . / + -``, not a shell builtin or keyword, no
variable assignment): a name is looked up on ``PATH``, a path with a ``/`` is taken relative
to the repository and must be an executable file. A command that starts with anything else
(``$TOOL``, ``FOO=1 make``, ``cd web && npm ci``, ``~/bin/x``, ``(...)``) is the shell's to
run and is not checked past its quoting.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from dagspec.errors import DagspecError
from dagspec.git_batch import tree_modes
from dagspec.workspace import resolved

_PLAIN = re.compile(r"[A-Za-z0-9_./+-]+")
# POSIX special and regular builtins and reserved words, and the common builtins of dash
# and bash: the shell runs these itself, so no file of that name need exist.
SHELL_WORDS = frozenset(
    """! { } [ [[ . : alias bg break case cd command continue do done echo elif else esac
    eval exec exit export false fc fg for function getopts hash if in jobs kill let local
    printf pwd read readonly return select set shift source test then times trap true type
    ulimit umask unalias unset until wait while""".split()  # noqa: SIM905 (a list of words)
)


def program_problem(
    command: str, *, repo: Path, worktree: bool = False, copied: Sequence[str] = ()
) -> str | None:
    """What is wrong with ``command``'s program, with what to do, or None (it can start, or
    the shell decides). ``repo``: where a relative path is looked for. ``worktree``: the
    command runs in a spec's new worktree (``execution.setup``), which holds only what is
    committed (``git worktree add``) and the ``copied`` paths (``execution.copy``), so a
    relative path must be committed at ``HEAD`` with mode 100755 (``git ls-tree``)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError as exc:  # an unclosed quote: sh -c would refuse it too
        return f"is not a shell command ({exc}): close its quotes"
    if not words or not _PLAIN.fullmatch(words[0]) or words[0] in SHELL_WORDS:
        return None
    program = words[0]
    if "/" not in program:
        if shutil.which(program) is None:
            return (
                f"runs '{program}', which is not on PATH: install it, give its path, or "
                "write the command you meant (it runs as `sh -c COMMAND`)"
            )
        return None
    relative = not Path(program).is_absolute()
    path = repo / program if relative else Path(program)
    if not path.exists():
        where = f" in {repo}" if relative else ""
        return f"runs {program}: no such file{where}: give the right path"
    if not path.is_file():
        return f"runs {program}, which is not a file: give the program's path"
    if worktree and relative and not _copied(repo, path, copied):
        return _committed_problem(repo, program)
    if not os.access(path, os.X_OK):
        return f"runs {program}, which is not executable: `chmod +x {program}`"
    return None


def _copied(repo: Path, path: Path, copied: Sequence[str]) -> bool:
    """``path`` is one of the ``copied`` paths or inside one."""
    return any(resolved(path).is_relative_to(resolved(repo / c)) for c in copied)


def _committed_problem(repo: Path, program: str, links: int = 8) -> str | None:
    """What keeps ``program`` (in ``repo``) from running in a new worktree: not committed,
    or committed without its executable bit; a committed symbolic link is judged by what
    it leads to inside the checkout (``links``: how many more to follow)."""
    name = os.path.normpath(program)
    if name.startswith("../"):
        return None  # outside the checkout: the worktree's neighbour is another directory
    modes = tree_modes(repo, "HEAD", [name])
    mode = modes.get(name)
    if mode is None:
        return (
            f"runs {program}, which is not committed, and a worktree holds only committed "
            f"files: `git add {name}` and commit it, or list it in execution.copy"
        )
    if mode == "120000":
        link = (repo / name).readlink()
        if link.is_absolute() or not links:
            return None  # outside the checkout: there for the worktree as it is here
        target = os.path.normpath(Path(name).parent / link)
        problem = _committed_problem(repo, target, links - 1)
        if problem is None:
            return None
        return f"runs {program}, a link to {target}, which {problem.split(', which ', 1)[-1]}"
    if mode != "100755":
        return (
            f"runs {program}, which is not executable in git (mode {mode} at HEAD), so it "
            f"is not in a worktree: `git update-index --chmod=+x {name}` and commit it"
        )
    return None


def check_notify_flag(command: str | None, *, repo: Path) -> None:
    """``--notify CMD`` of ``resume`` or ``retry`` (``run`` checks it in preflight) can
    start; raises ``DagspecError`` saying what is wrong and what to do."""
    problem = program_problem(command, repo=repo) if command else None
    if problem:
        raise DagspecError(f"--notify {problem}")
