"""The ``pyz`` fixture: one build of ``dag.pyz`` shared by every test of a run, xdist included.

A build takes seconds, so each pytest-xdist worker building its own (and each module
building again) cost most of the suite's wall time on two cores. The archive is built once
into a directory named by a hash of everything that goes into it, under an exclusive
``fcntl.flock``: the first worker builds, the others wait on the lock and then find it made.
The directory is the basetemp's parent, which the workers of one run share (the pattern of
pytest-xdist's "Making session-scoped fixtures execute only once").
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


SUPPORTED = ["3.11", "3.12", "3.13", "3.14"]
TOO_OLD = ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10"]


def _python(version: str) -> str | None:
    """An interpreter of ``version`` on this machine that runs: ``pythonX.Y`` on PATH, else
    pyenv's (its shims on PATH fail for versions not selected)."""
    pyenv = Path(_PYENV_ROOT or _HOME / ".pyenv") / "versions"
    found = [
        shutil.which(f"python{version}"),
        *map(str, sorted(pyenv.glob(f"{version}.*/bin/python"))),
    ]
    for executable in filter(None, found):
        probe = [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == version:
            return executable
    return None


# Read at import, before the autouse fixture replaces HOME for each test.
_HOME = Path.home()
_PYENV_ROOT = os.environ.get("PYENV_ROOT")


@functools.cache
def pythons() -> dict[str, str | None]:
    """Each version's interpreter, or None; probed on first use (it starts about a dozen
    interpreters, which every test process would otherwise pay for at import)."""
    return {version: _python(version) for version in SUPPORTED + TOO_OLD}


def build_key() -> str:
    """A hash of every input of the build: the builder, the lock file, dagspec's sources,
    the interpreter (its bytecode goes in) and the timestamp the entries get."""
    import build_zipapp  # the builder's own rule for the timestamp, not a copy of it

    digest = hashlib.sha256()
    inputs = [
        ROOT / "build_zipapp.py",
        build_zipapp.LOCK,
        *sorted((ROOT / "dagspec").rglob("*.py")),
    ]
    for path in inputs:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"{sys.version}\0{build_zipapp._source_date_epoch()}".encode())
    return digest.hexdigest()[:16]


def build(output: Path) -> Path:
    """Build ``dag.pyz`` at ``output`` with ``build_zipapp.py``, as a developer would, with
    bytecode for every supported Python present, named explicitly (not found by the builder,
    whose search depends on HOME, which tests replace), so that every build holds the same."""
    others = [p for v in SUPPORTED if (p := pythons()[v]) is not None] or [sys.executable]
    argv = [sys.executable, str(ROOT / "build_zipapp.py"), "--output", str(output)]
    argv += [arg for python in others for arg in ("--python", python)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return output


def shared_build(cache: Path) -> Path:
    """``cache/dag-pyz-<key>/dag.pyz``, built unless a process built it already."""
    directory = cache / f"dag-pyz-{build_key()}"
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / "dag.pyz"
    with (directory / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not output.exists():  # the builder renames a finished archive into place
            build(output)
    return output


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built ``dag.pyz`` of the current sources (one build per run of the suite)."""
    return shared_build(tmp_path_factory.getbasetemp().parent)
