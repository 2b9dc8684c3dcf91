"""What a failed git said, in one line: its gist, the lock file in its way, a full disk.

git's complaint runs to several lines (a stale lock's is nine: the error, then a paragraph
of advice); a user's error is one line (README, Errors). ``gist`` keeps the line that says
what went wrong; the rest is what git always says about it. No imports of dagspec's: the
error types (``dagspec.errors``) use it.
"""

from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Sequence

# What git says of a lock file in its way (``LANGUAGE=C``: ``git_env``): ``index.lock``,
# ``HEAD.lock``, ``packed-refs.lock`` or a ref's ``refs/heads/<branch>.lock``.
LOCK_IN_THE_WAY = re.compile(r"Unable to create '(.+?\.lock)': File exists")

# What git says when a write fails for want of room (errno ENOSPC, EFBIG, EDQUOT).
_NO_ROOM = ("No space left on device", "File too large", "Disk quota exceeded")


def gist(said: str) -> str:
    """The line of ``said`` (git's stderr) that says what went wrong: the first ``fatal:``
    or ``error:`` line, else the first line; its trailing full stop dropped; "" if none.

    >>> gist("error: cannot lock ref 'x': File exists.\\n\\nAnother git process seems...")
    "error: cannot lock ref 'x': File exists"

    When that line ends in a colon, the indented lines under it are what it names (the
    files "would be overwritten by merge:"), and are kept, after it:

    >>> gist("error: The following ... by merge:\\n\\ta.py\\n\\tb.py\\nPlease move or remove")
    'error: The following ... by merge: a.py, b.py'
    """
    lines = [line for line in said.splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))), 0)
    first = lines[at].strip() if lines else ""
    if first.endswith(":"):
        named = [line.strip() for line in itertools.takewhile(_indented, lines[at + 1 :])]
        first = f"{first} {', '.join(named)}" if named else first
    return _CHILD_KILLED.sub(_name_signal, first.rstrip("."))


_CHILD_KILLED = re.compile(r"died of signal (\d+)")
"""What git says of a git it started that was killed (``run-command.c``: ``worktree add``'s
``reset``), by number."""


def _name_signal(found: re.Match[str]) -> str:
    """``died of signal 25 (SIGXFSZ: the file size limit (ulimit -f) was reached)``."""
    number = int(found[1])
    try:
        name = signal.Signals(number).name
    except ValueError:
        return found[0]
    if number == signal.SIGXFSZ:
        return f"{found[0]} ({name}: the file size limit (ulimit -f) was reached)"
    return f"{found[0]} ({name})"


def _indented(line: str) -> bool:
    return line[:1] in ("\t", " ")


def lock_in_the_way(said: str) -> str | None:
    """The lock file git found in its way (another git at work, or a killed one's), if any."""
    found = LOCK_IN_THE_WAY.search(said)
    return found[1] if found else None


def locks_in_the_way(said: str) -> list[str]:
    """Every lock file git found in its way, in the order it said them, each once."""
    return list(dict.fromkeys(found[1] for found in LOCK_IN_THE_WAY.finditer(said)))


def locks_advice(locks: Sequence[str]) -> str:
    """``lock_advice`` of one lock file, or of several, each named."""
    if len(locks) == 1:
        return lock_advice(locks[0])
    return (
        f"{', '.join(locks[:-1])} and {locks[-1]} are in the way: if no git is running in this "
        "repository, delete them (a git killed earlier left them)"
    )


def lock_advice(lock: str) -> str:
    """What to do about a lock file in git's way: one clause, naming it."""
    return (
        f"{lock} is in the way: if no git is running in this repository, delete it "
        "(a git killed earlier left it)"
    )


def no_room(returncode: int, said: str) -> str | None:
    """Why git could not write, when it was for want of room: the file size limit (git
    killed by SIGXFSZ, or EFBIG) or a full disk; None for any other failure."""
    killed = _CHILD_KILLED.search(said)
    child = killed is not None and int(killed[1]) == signal.SIGXFSZ  # a git it started
    if returncode == -signal.SIGXFSZ or child or "File too large" in said:
        return "the file size limit (ulimit -f) was reached"
    if any(words in said for words in _NO_ROOM):
        return "the disk is full"
    return None
