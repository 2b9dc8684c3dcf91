#!/usr/bin/env python3
"""Build dist/dag.pyz: dagspec and its locked pure-Python dependencies in one zipapp.

    python3 build_zipapp.py [--output PATH]

Reproducible: two builds of the same commit are byte-identical. Entries are sorted, all
share one timestamp ($SOURCE_DATE_EPOCH, else the commit time of HEAD, else 1980-01-01, the
earliest a zip can hold) and fixed modes, and the bytecode is hash-based, not mtime-based.

Each .py has its .pyc beside it (``compileall -b``, unchecked hash), which zipimport loads
without compiling: about 0.19 s to start instead of 0.53 s. zipimport rejects that .pyc on
another Python version, so the archive also holds one pack of bytecode for every other
Python 3.11+ the build finds (``python3.N`` on PATH, pyenv's versions; or the ``--python``
given), which ``dagspec.bytecode`` loads. A Python without its bytecode here
still runs the archive, compiling in memory at every start. The archive's ``__main__.py``
first checks the Python version, in a syntax every Python parses.
"""

from __future__ import annotations

import argparse
import compileall
import marshal
import os
import platform
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dagspec.bytecode import pack_name

ROOT = Path(__file__).resolve().parent
LOCK = ROOT / "requirements" / "zipapp.txt"
SHEBANG = b"#!/usr/bin/env python3\n"
# Plain syntax up to the version check (pyproject's requires-python), so that any Python,
# even 2.7, gets there and says which version is needed instead of failing on the code.
MAIN = """\
# Written by build_zipapp.py.
import os
import sys

if sys.version_info < (3, 11):
    sys.stderr.write(
        "dag: error: dagspec needs Python 3.11 or newer, and %s is Python %d.%d.%d: "
        "run it with python3.11 or newer\\n"
        % ((sys.executable or "this interpreter",) + tuple(sys.version_info[:3]))
    )
    sys.exit(1)

if sys.argv[1:] == ["--version"]:  # scripts probe for dag: answer before importing anything
    try:  # as cli does: a closed stdout drops it; a full disk says so; a gone reader, quiet
        os.write(1, b"dag {version}\\n")
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            os.write(2, b"dag: error: cannot write the output: No space left on device\\n")
        os._exit(0 if exc.errno == 9 else 1)  # EBADF: stdout closed
    os._exit(0)

try:
    from dagspec.bytecode import install

    install(os.path.dirname(__file__))

    from dagspec.cli import main
    from dagspec.console import end_process
except KeyboardInterrupt:  # Ctrl-C while starting: nothing was done
    sys.stderr.write("dag: interrupted\\n")
    sys.exit(130)

end_process(main())
"""
PRUNED_DIRS = {"__pycache__", "_tests", "tests"}
# pip writes these per install; they differ between builds and nothing reads them at run
# time. METADATA and the license files stay: the licenses ask to travel with the code.
VOLATILE_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
SHARED_OBJECTS = {".so", ".pyd", ".dylib"}
DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z


class BuildError(Exception):
    """The archive cannot be built, or it was built and does not work."""


def _step(msg: str) -> None:
    print(f"build_zipapp: {msg}", flush=True)


def _version() -> str:
    text = (ROOT / "dagspec" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise BuildError("no __version__ in dagspec/__init__.py")
    return match.group(1)


def _source_date_epoch() -> int:
    if "SOURCE_DATE_EPOCH" in os.environ:
        return max(int(os.environ["SOURCE_DATE_EPOCH"]), DOS_EPOCH)
    try:
        git = ["git", "log", "-1", "--format=%ct"]
        done = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:  # no git at all
        return DOS_EPOCH
    return max(int(done.stdout), DOS_EPOCH) if done.stdout.strip().isdigit() else DOS_EPOCH


def _install(staging: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--root-user-action=ignore", "--no-compile", "--target", str(staging)]
    locked = ["--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(LOCK)]
    subprocess.run([*pip, *locked], check=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "dagspec", staging / "dagspec", ignore=ignore)
    main = MAIN.replace("{version}", _version())
    (staging / "__main__.py").write_text(main, encoding="utf-8")


def _prune(staging: Path) -> None:
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts of the wheels
    for path in sorted(staging.rglob("*")):
        if not path.exists():  # inside a directory removed already
            continue
        if path.is_dir() and path.name in PRUNED_DIRS:
            shutil.rmtree(path)
        elif path.parent.suffix == ".dist-info" and path.name in VOLATILE_METADATA:
            path.unlink()
    shared = [str(p.relative_to(staging)) for p in staging.rglob("*") if p.suffix in SHARED_OBJECTS]
    if shared:
        raise BuildError(f"compiled extensions cannot run from a zipapp: {', '.join(shared)}")


class Python(NamedTuple):
    """An interpreter the archive carries bytecode for."""

    executable: str
    version: str  # "3.12.1"
    cache_tag: str  # "cpython-312": the name of its bytecode files, and what they suit


# Prints nothing useful on Python 2 (no sys.implementation) and "... False" before 3.11.
_PROBE = (
    "import platform, sys; "
    "print(sys.implementation.cache_tag, platform.python_version(), sys.version_info >= (3, 11))"
)


def _candidates() -> list[str]:
    """``python3.N`` on PATH, then the ``python3`` of every pyenv version."""
    on_path = [shutil.which(f"python3.{minor}") for minor in range(11, 40)]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    return [p for p in on_path if p] + sorted(str(p) for p in pyenv.glob("*/bin/python3"))


def _probe(executable: str) -> Python | None:
    """The Python 3.11+ at ``executable``, or None (missing, broken, older, a pyenv shim
    for a version that is not selected)."""
    argv = [executable, "-I", "-S", "-c", _PROBE]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 3 or fields[2] != "True":
        return None
    return Python(executable, version=fields[1], cache_tag=fields[0])


def other_pythons(requested: Sequence[str] | None) -> list[Python]:
    """One Python 3.11+ per cache tag other than this one's, sorted by tag: the ``requested``
    executables (each must be one), else every one found."""
    by_tag: dict[str, Python] = {}
    for executable in _candidates() if requested is None else requested:
        python = _probe(executable)
        if python is None and requested is not None:
            raise BuildError(f"--python {executable}: not a Python 3.11 or newer that runs")
        if python is not None and python.cache_tag != sys.implementation.cache_tag:
            by_tag.setdefault(python.cache_tag, python)
    return [by_tag[tag] for tag in sorted(by_tag)]


def _compile(staging: Path, others: Sequence[Python]) -> None:
    # co_filename reads "dag.pyz/dagspec/cli.py" in every build, not the temporary path;
    # the traceback module still finds the source lines, through the module's loader.
    # The others compile in their own processes meanwhile, into __pycache__/ (PEP 3147),
    # which _pack then gathers.
    argv = ["-I", "-S", "-m", "compileall", "-q", "-o", "0"]
    argv += ["--invalidation-mode", "unchecked-hash", "-s", str(staging), "-p", "dag.pyz"]
    running = [subprocess.Popen([p.executable, *argv, str(staging)]) for p in others]
    ok = compileall.compile_dir(
        staging,
        quiet=1,
        legacy=True,  # -b: cli.pyc beside cli.py, where zipimport looks
        optimize=0,  # the same bytecode whether or not this script runs under -O
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        stripdir=str(staging),
        prependdir="dag.pyz",
    )
    failed = [p.executable for p, proc in zip(others, running, strict=True) if proc.wait() != 0]
    if not ok or failed:
        raise BuildError(f"compileall failed (see above) with {', '.join(failed) or 'this python'}")


def _pack(staging: Path, others: Sequence[Python]) -> None:
    """Gather each other Python's ``__pycache__`` files into its one pack entry, whose format
    ``dagspec.bytecode`` describes (zipimport pays for every entry at every start)."""
    packs: dict[str, bytes] = {}
    for python in others:
        suffix = f".{python.cache_tag}.pyc"
        bytecode: dict[str, bytes] = {}
        for pyc in sorted(staging.glob(f"**/__pycache__/*{suffix}")):
            source = pyc.parent.parent / (pyc.name.removesuffix(suffix) + ".py")
            bytecode[source.relative_to(staging).as_posix()] = zlib.compress(pyc.read_bytes())
        packs[pack_name(python.cache_tag)] = marshal.dumps(bytecode, 4)
    for cache in list(staging.rglob("__pycache__")):
        shutil.rmtree(cache)
    for name, data in packs.items():
        (staging / name).parent.mkdir(exist_ok=True)
        (staging / name).write_bytes(data)


def _write_zip(staging: Path, output: Path, epoch: int) -> None:
    date_time = time.gmtime(epoch)[:6]
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as fp:
        fp.write(SHEBANG)
        with zipfile.ZipFile(fp, "w") as archive:
            for path in sorted(staging.rglob("*"), key=lambda p: p.relative_to(staging).parts):
                name = path.relative_to(staging).as_posix()
                is_dir = path.is_dir()
                info = zipfile.ZipInfo(name + "/" if is_dir else name, date_time)
                info.create_system = 3  # Unix, so the modes below are honoured
                info.external_attr = (0o40755 << 16 | 0x10) if is_dir else (0o100644 << 16)
                # A pack is read whole at each start, and is compressed module by module.
                stored = is_dir or name.endswith(".pack")
                info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                archive.writestr(info, b"" if is_dir else path.read_bytes())
    partial.chmod(0o755)
    partial.replace(output)


def _smoke_test(output: Path, version: str, python: str) -> None:
    """``--version`` (answered by ``__main__.py`` alone) and ``--help`` (which imports the
    command line through the archive's bytecode) both work from another directory."""
    for arg, expected in (("--version", f"dag {version}\n"), ("--help", "usage: dag")):
        with tempfile.TemporaryDirectory() as elsewhere:
            argv = [python, "-I", "-S", str(output.resolve()), arg]
            done = subprocess.run(argv, cwd=elsewhere, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not done.stdout.startswith(expected):
            raise BuildError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )


def build(output: Path, pythons: Sequence[str] | None = None) -> None:
    """Build the archive at ``output`` and check that it starts on every Python it carries
    bytecode for: this one and ``pythons`` (executables; default: every one found)."""
    version, epoch = _version(), _source_date_epoch()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    output.parent.mkdir(parents=True, exist_ok=True)
    others = other_pythons(pythons)
    with tempfile.TemporaryDirectory(prefix="dag-pyz-") as tmp:
        staging = Path(tmp)
        _step(f"installing {LOCK.relative_to(ROOT)} and dagspec {version}")
        _install(staging)
        _step("pruning tests, caches and per-install metadata")
        _prune(staging)
        names = [f"{p.version} ({p.executable})" for p in others]
        _step(f"compiling bytecode for Python {', '.join([platform.python_version(), *names])}")
        _compile(staging, others)
        _pack(staging, others)
        _step(f"writing {output}, every entry dated {stamp}")
        _write_zip(staging, output, epoch)
    for python in [sys.executable, *(p.executable for p in others)]:
        _step(f"checking that `{python} {output.name}` answers --version and --help")
        _smoke_test(output, version, python)
    _step(f"built {output}: {output.stat().st_size / 1e6:.2f} MB")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the dag.pyz zipapp.")
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "dag.pyz")
    parser.add_argument(
        "--python",
        action="append",
        metavar="PATH",
        help="also carry bytecode for this Python 3.11+ (repeatable; default: every "
        "python3.N on PATH and every pyenv version)",
    )
    args = parser.parse_args(argv)
    try:
        build(args.output, args.python)
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"build_zipapp: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
