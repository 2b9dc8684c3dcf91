"""The process's edges: standard streams that cannot crash a command, and the exact form of
``dag`` to print in hints (issue 15)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn


def prepare_streams() -> None:
    """Make printing safe whatever the caller gave us.

    A closed standard descriptor (``dag status >&-``) is reopened on ``/dev/null``, so that
    output is dropped rather than crashing the command, and so that no file dagspec opens
    later takes descriptor 1 or 2 and receives a child's output. Text that the terminal's
    encoding cannot show (``PYTHONIOENCODING=latin-1``) is escaped, not an error.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: ``fd``
            if opened != fd:
                os.close(opened)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 (lives as long as the process)
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def end_process(code: int) -> NoReturn:
    """End the process with ``code`` once the standard streams are flushed, without
    Python's teardown of every module and object (issue 16: about 0.1 s after each ``dag
    run``, more on a loaded machine; nothing of dagspec's runs at exit). For the entry
    points only, after ``cli.main`` has returned. A stream that cannot be flushed (its
    reader has gone) makes a successful command exit 1, as a broken pipe does earlier."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)


_elsewhere: list[str] = []
"""``--repo PATH`` when the command was given a repository that is not around the current
directory (``remember_repo``): hints must name it too, or they would fail where typed."""
_first: list[str] = []
"""``cd PATH &&`` instead, for a command typed in a run's worktree (``remember_repo``)."""


def remember_repo(root: Path, cwd: Path | None, *, go: bool = False) -> None:
    """Note the repository ``root`` a command works on, for ``dag_command``'s hints, unless
    ``cwd`` (None: gone) is inside it (each command calls this, once it knows ``root``).
    ``go``: hints say ``cd ROOT && dag ...``, not ``dag --repo ROOT ...``, because what they
    suggest may remove the worktree ``cwd`` is in (``own_worktrees``)."""
    import shlex

    inside = cwd is not None and (cwd == root or root in cwd.parents)
    where = shlex.quote(str(root))
    _elsewhere[:] = [] if inside or go else [f"--repo {where}"]
    _first[:] = [f"cd {where} &&"] if go and not inside else []


def dag_command(argv0: str | None = None, *, repo: bool = True) -> str:
    """How the user can call this same dagspec again: ``dag`` when that is what runs, else
    the exact form that does (``python3 /abs/dag.pyz``, ``python3 -m dagspec``, an
    installed ``/abs/bin/dag`` that is not on ``PATH``); followed
    by ``--repo PATH`` when that is needed from where the user is (``remember_repo``).

    ``argv0`` is ``sys.argv[0]`` by default; ``repo`` False leaves ``--repo`` out (for a
    hint that names its own).
    """
    try:
        invoked = _invoked(argv0)
    except OSError:  # every file descriptor taken: even an import cannot open its file
        invoked = "dag"
    return " ".join([*(_first if repo else ()), invoked, *(_elsewhere if repo else ())])


def _invoked(argv0: str | None) -> str:
    """``dag_command`` without ``--repo``."""
    import shlex  # only for hints: every command imports this module, few need these
    import shutil
    import zipfile

    argv0 = sys.argv[0] if argv0 is None else argv0
    path = Path(argv0)
    on_path = shutil.which(path.name) if path.name and path.name != "__main__.py" else None
    if on_path and _same_file(on_path, argv0):
        return path.name
    python = _python()
    if path.name == "__main__.py" and path.parent.name == "dagspec":
        return f"{python} -m dagspec"
    if path.is_file() and zipfile.is_zipfile(path):
        return f"{python} {shlex.quote(str(path.absolute()))}"
    if _console_script(path):  # pip's, pipx's: not on PATH, or another dag comes first there
        return shlex.quote(str(path.absolute()))
    return "dag"


def _console_script(path: Path) -> bool:
    """Whether ``path`` is the ``dag`` command an installer made (pip, pipx: a small
    Python script that starts with ``#!`` and imports ``dagspec.cli``), which runs as it is."""
    try:
        with path.open("rb") as file:
            head = file.read(1024)
    except OSError:  # not a file (``-c``), or unreadable
        return False
    return head.startswith(b"#!") and b"dagspec.cli" in head and os.access(path, os.X_OK)


def _python() -> str:
    """``python3`` when that is this interpreter, else its full path."""
    import shlex
    import shutil

    found = shutil.which("python3")
    if found and _same_file(found, sys.executable):
        return "python3"
    return shlex.quote(sys.executable)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).samefile(b)
    except OSError:
        return False
