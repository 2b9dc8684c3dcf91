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
from pathlib import Path

_PLAIN = re.compile(r"[A-Za-z0-9_./+-]+")
# POSIX special and regular builtins and reserved words, and the common builtins of dash
# and bash: the shell runs these itself, so no file of that name need exist.
SHELL_WORDS = frozenset(
    """! { } [ [[ . : alias bg break case cd command continue do done echo elif else esac
    eval exec exit export false fc fg for function getopts hash if in jobs kill let local
    printf pwd read readonly return select set shift source test then times trap true type
    ulimit umask unalias unset until wait while""".split()  # noqa: SIM905 (a list of words)
)


def program_problem(command: str, *, repo: Path) -> str | None:
    """What is wrong with ``command``'s program, with what to do, or None (it can start, or
    the shell decides). ``repo``: where a relative path is looked for."""
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
    path = Path(program) if Path(program).is_absolute() else repo / program
    if not path.is_file():
        return f"runs {program}, which is not a file in {repo}: give the right path"
    if not os.access(path, os.X_OK):
        return f"runs {program}, which is not executable: `chmod +x {program}`"
    return None
