"""The autospec executable: where it is, and which version it is.

The contract differs between autospec versions (docs/autospec-contract.md), so a run
records the version it was started with.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

from dagspec.errors import DagspecError, too_many_open_files

_VERSION_TIMEOUT = 10.0  # seconds for ``autospec --version`` to answer


def find_autospec(given: str | None) -> str:
    """The autospec executable: ``--autospec``, else ``$DAGSPEC_AUTOSPEC``, else PATH."""
    from_env = os.environ.get("DAGSPEC_AUTOSPEC")
    name = given or from_env or "autospec"
    source = "--autospec" if given else "$DAGSPEC_AUTOSPEC" if from_env else "PATH"
    if os.sep in name:
        candidate = Path(name).expanduser().absolute()
        found = str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    else:
        found = shutil.which(name)
    if found is None:
        raise DagspecError(
            f"the autospec executable '{name}' (from {source}) was not found or is not "
            "executable: install autospec, or name it with --autospec or $DAGSPEC_AUTOSPEC"
        )
    return found


def autospec_version(executable: str, *, cwd: Path | None = None) -> str:
    """The first line ``autospec --version`` prints (``autospec 0.10.4``), asked in ``cwd``
    (the repository: dag's own directory may be gone); the contract differs between
    versions. Raises ``DagspecError`` when it does not answer."""
    try:
        done = subprocess.run(
            [executable, "--version"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_VERSION_TIMEOUT,
            check=False,
        )
    except OSError as exc:
        raise DagspecError(
            f"{start_failure(executable, exc)}; name another with --autospec"
        ) from None
    except subprocess.TimeoutExpired as exc:
        raise DagspecError(
            f"{executable} --version did not answer ({exc}): is it autospec?"
        ) from None
    text = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0 or not text:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        last = f" ({' '.join(said[-1].split())[:200]})" if said else ""
        raise DagspecError(
            f"`{executable} --version` failed with exit code {done.returncode}{last}: "
            "is it autospec? Name the right one with --autospec"
        )
    return text.splitlines()[0]


def start_failure(
    program: str, exc: OSError, *, path: str | None = None, cwd: Path | None = None
) -> str:
    """Why ``program`` (a path, or a name looked up in ``path``, else ``$PATH``) could not
    be started in ``cwd``, as one line, from the ``OSError`` of its ``exec``. The kernel says ENOENT
    both for a missing file and for a script whose ``#!`` interpreter is missing
    (execve(2): "the interpreter of a script ... does not exist"), and ENOEXEC for a file it
    cannot run: the script's first line says which it was."""
    if too_many := too_many_open_files(exc, program):
        return too_many
    if cwd is not None and not cwd.is_dir():
        return f"{program} could not be started: its directory {cwd} is gone"
    found = program if os.sep in program else shutil.which(program, path=path)
    if found is not None and Path(found).is_file():
        if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
            interpreter = shebang_interpreter(Path(found))
            if interpreter is not None and not _runnable(interpreter):
                shown = interpreter if interpreter.isprintable() else repr(interpreter)
                return f"{found}: bad interpreter {shown} (from its #! line)"
        if exc.errno == errno.ENOEXEC:
            return f"{found}: not a program this machine can run (no #! line, or built for another)"
    return f"{found or program} could not be started: {exc.strerror or exc}"


_SHEBANG_MAX = 256
"""Bytes of a script's first line the kernel reads for ``#!`` (``BINPRM_BUF_SIZE``)."""


def shebang_interpreter(script: Path) -> str | None:
    """The interpreter a script's ``#!`` line names (what the kernel runs it with: the first
    word, spaces and tabs around it dropped, a carriage return kept), or None when the
    file has no ``#!`` line or cannot be read."""
    try:
        with script.open("rb") as file:
            head = file.read(_SHEBANG_MAX)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].lstrip(b" \t")
    word = line.replace(b"\t", b" ").split(b" ", 1)[0]
    return os.fsdecode(word) if word else None


def _runnable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)
