"""The crash log: what a bug report needs, written to a file when dagspec itself fails.

An exception that is not a ``DagspecError`` is a bug in dagspec (README, Commands, exit 3). The user
sees one ``dag: error:`` line pointing here; the file holds the versions of everything the
bug may depend on, the command line and the traceback. A bug met inside one spec's attempt
fails that spec only (``faults.spec_reason``), and its reason names the log too: one log per
distinct bug (``spec_log``), however many specs meet it.
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


def write_log(exc: BaseException, argv: Sequence[str], **facts: str) -> Path:
    """Write the crash log of ``exc`` to a new file ``dag-crash-*.log`` in the temporary
    directory and return its path.

    Args:
        exc: the unexpected exception, with its traceback.
        argv: the arguments ``dag`` was given (without the program name).
        facts: more ``name: value`` lines, after the others (``spec``: where it was met).

    Raises:
        OSError: the file cannot be created or written.
    """
    fd, name = tempfile.mkstemp(prefix="dag-crash-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as log:
        log.write(report(exc, argv, **facts))
    return Path(name)


def report(exc: BaseException, argv: Sequence[str], **more: str) -> str:
    """The text of the crash log: one ``name: value`` line per fact, then the traceback."""
    facts = {
        "dag": __version__,
        "python": f"{sys.version.split()[0]} ({sys.executable})",
        "platform": platform.platform(),
        "git": _git_version(),
        "argv": repr(list(argv)),
        "cwd": _cwd(),
        **more,
    }
    lines = [f"{key}: {value}" for key, value in facts.items()]
    return "\n".join(lines) + "\n\n" + "".join(traceback.format_exception(exc))


_SPEC_LOGS: dict[tuple[str, ...], Path] = {}  # each distinct bug met in a spec: its log


def spec_log(exc: BaseException, bug: BaseException, where: str) -> Path:
    """The crash log of ``exc``, in which ``bug`` is a bug met in a spec's attempt
    (``exc`` itself, or inside it: a nursery wraps what its tasks raise; ``where``: ``spec
    'a' of run r``), written the first time this process meets that bug: the same exception
    type raised along the same lines of code is the same bug, whichever spec met it and
    whatever its message says (a ``KeyError`` of each spec's id). The arguments are the
    process's own (``sys.argv``: the command that drives the run).

    Raises:
        OSError: the file cannot be created or written (tried again at the next spec).
    """
    key = _fingerprint(bug)
    if key not in _SPEC_LOGS:
        _SPEC_LOGS[key] = write_log(exc, sys.argv[1:], spec=where)
    return _SPEC_LOGS[key]


def _fingerprint(exc: BaseException) -> tuple[str, ...]:
    """The exception's type and the lines it was raised along (file, line, function)."""
    frames = traceback.extract_tb(exc.__traceback__)
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return (kind, *(f"{f.filename}:{f.lineno}:{f.name}" for f in frames))


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
