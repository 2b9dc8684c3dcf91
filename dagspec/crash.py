"""The crash log: what a bug report needs, written to a file when dagspec itself fails.

An exception that is not a ``DagspecError`` is a bug in dagspec (README, Commands, exit 3). The user
sees one ``dag: error:`` line pointing here; the file holds the versions of everything the
bug may depend on, the command line and the traceback.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from dagspec import __version__


def write_log(exc: BaseException, argv: Sequence[str]) -> Path:
    """Write the crash log of ``exc`` to a new file ``dag-crash-*.log`` in the temporary
    directory and return its path.

    Args:
        exc: the unexpected exception, with its traceback.
        argv: the arguments ``dag`` was given (without the program name).

    Raises:
        OSError: the file cannot be created or written.
    """
    fd, name = tempfile.mkstemp(prefix="dag-crash-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as log:
        log.write(report(exc, argv))
    return Path(name)


def report(exc: BaseException, argv: Sequence[str]) -> str:
    """The text of the crash log: one ``name: value`` line per fact, then the traceback."""
    facts = {
        "dag": __version__,
        "python": f"{sys.version.split()[0]} ({sys.executable})",
        "platform": platform.platform(),
        "git": _git_version(),
        "argv": repr(list(argv)),
        "cwd": _cwd(),
    }
    lines = [f"{key}: {value}" for key, value in facts.items()]
    return "\n".join(lines) + "\n\n" + "".join(traceback.format_exception(exc))


def _git_version() -> str:
    # Imported here: a crash can come from anywhere, even from importing dagspec.git.
    try:
        from dagspec import git

        return git.run(Path(tempfile.gettempdir()), "--version").strip()
    except Exception as exc:  # the log is written whatever git does
        return f"unknown ({type(exc).__name__}: {exc})"


def _cwd() -> str:
    try:
        return str(Path.cwd())
    except OSError as exc:  # the directory was removed under us
        return f"unknown ({exc})"
