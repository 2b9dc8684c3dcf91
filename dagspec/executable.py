"""The autospec executable: where it is, and which version it is.

The contract differs between autospec versions (docs/autospec-contract.md), so a run
records the version it was started with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from dagspec.errors import DagspecError

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
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DagspecError(
            f"{executable} --version did not answer ({exc}): is it autospec?"
        ) from None
    text = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0 or not text:
        raise DagspecError(
            f"`{executable} --version` failed with exit code {done.returncode}: "
            "is it autospec? Name the right one with --autospec"
        )
    return text.splitlines()[0]
