"""The built ``dag.pyz``: it starts on a bare Python, is reproducible, and ships only code."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from dagspec import __version__
from dagspec.bytecode import pack_name, read_pack

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


SUPPORTED = ["3.11", "3.12", "3.13", "3.14"]
TOO_OLD = ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10"]


def _python(version: str) -> str | None:
    """An interpreter of ``version`` on this machine that runs: ``pythonX.Y`` on PATH, else
    pyenv's (its shims on PATH fail for versions not selected)."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
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


# Found once, at collection, with the real HOME (the autouse fixture replaces it per test).
PYTHONS = {version: _python(version) for version in SUPPORTED + TOO_OLD}


def _present(version: str) -> str:
    if PYTHONS[version] is None:
        pytest.skip(f"no Python {version} on this machine")
    return str(PYTHONS[version])


def _build(output: Path) -> Path:
    """Build with bytecode for every supported Python present, named explicitly (not found
    by the builder), so that two builds in one test run hold the same."""
    others = [p for v in SUPPORTED if (p := PYTHONS[v]) is not None] or [sys.executable]
    argv = [sys.executable, str(ROOT / "build_zipapp.py"), "--output", str(output)]
    argv += [arg for python in others for arg in ("--python", python)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return output


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real build per module: a build takes seconds."""
    return _build(tmp_path_factory.mktemp("build") / "dag.pyz")


@pytest.fixture(scope="module")
def names(pyz: Path) -> list[str]:
    with zipfile.ZipFile(pyz) as archive:
        return archive.namelist()


def test_version_on_a_bare_python_from_elsewhere(pyz: Path, tmp_path: Path) -> None:
    elsewhere, home = tmp_path / "elsewhere", tmp_path / "empty-home"
    elsewhere.mkdir()
    home.mkdir()
    argv = [sys.executable, "-I", "-S", str(pyz), "--version"]
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    done = subprocess.run(argv, cwd=elsewhere, env=env, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"dag {__version__}\n", "")
    assert list(home.iterdir()) == []


def test_a_second_build_is_byte_identical(pyz: Path, tmp_path: Path) -> None:
    again = _build(tmp_path / "dag.pyz")
    assert again.read_bytes() == pyz.read_bytes()


def test_starts_with_the_shebang_and_is_executable(pyz: Path) -> None:
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert stat.S_IMODE(pyz.stat().st_mode) == 0o755


def test_ships_no_compiled_extensions_tests_or_caches(names: list[str]) -> None:
    assert [n for n in names if n.endswith((".so", ".pyd", ".dylib"))] == []
    parts = {part for name in names for part in PurePosixPath(name).parts[:-1]}
    assert parts.isdisjoint({"_tests", "tests", "bin"})
    others = {f"cpython-{v.replace('.', '')}" for v in SUPPORTED if PYTHONS[v]}
    packs = {pack_name(tag) for tag in others - {sys.implementation.cache_tag}}
    assert {n for n in names if "__pycache__" in n} == packs | (
        {"__pycache__/"} if packs else set()
    )
    assert [n for n in names if n.endswith(".dist-info/RECORD")] == []
    assert "__main__.py" in names
    assert "trio/__init__.py" in names


def test_every_dagspec_module_has_its_bytecode_beside_it(names: list[str]) -> None:
    sources = [n for n in names if n.startswith("dagspec/") and n.endswith(".py")]
    assert "dagspec/cli.py" in sources
    assert [s for s in sources if s + "c" not in names] == []


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_module_has_bytecode_for_each_other_python(pyz: Path, version: str) -> None:
    tag = f"cpython-{version.replace('.', '')}"
    if tag == sys.implementation.cache_tag:
        pytest.skip("the building Python's bytecode is beside each source (checked above)")
    _present(version)
    with zipfile.ZipFile(pyz) as archive:
        sources = {n for n in archive.namelist() if n.endswith(".py")}
        pack = archive.getinfo(pack_name(tag))
        assert pack.compress_type == zipfile.ZIP_STORED  # read whole at each start
    assert len(sources) > 200
    assert set(read_pack(str(pyz), tag)) == sources


def _run_with(
    python: str, pyz: Path, *args: str, cwd: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    """Run the archive as a user would, with an empty HOME and cache; ``-I`` only where the
    Python knows it (3.4+)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    isolated = [] if PYTHONS["2.7"] == python else ["-I"]
    argv = [python, *isolated, "-S", str(pyz), *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("version", SUPPORTED)
def test_runs_on_each_python_from_a_read_only_place(
    pyz: Path, tmp_path: Path, version: str
) -> None:
    python = _present(version)
    shelf, home = tmp_path / "read-only", tmp_path / "empty-home"
    shelf.mkdir()
    home.mkdir()
    installed = shelf / "dag.pyz"
    shutil.copy(pyz, installed)
    installed.chmod(0o555)
    shelf.chmod(0o555)
    try:
        version_out = _run_with(python, installed, "--version", cwd=tmp_path, home=home)
        validated = _run_with(
            python, installed, "validate", "fixtures/dags/diamond.yaml", cwd=ROOT, home=home
        )
    finally:
        shelf.chmod(0o755)
    assert (version_out.returncode, version_out.stdout, version_out.stderr) == (
        0,
        f"dag {__version__}\n",
        "",
    )
    assert (validated.returncode, validated.stdout, validated.stderr) == (
        0,
        "OK: 4 features in 1 layers\n",
        "",
    )
    assert [p.name for p in shelf.iterdir()] == ["dag.pyz"]
    assert list(home.iterdir()) == []


# After dag.pyz's own start (__main__ installs the importer), count what is compiled.
_COUNT_COMPILES = """
import builtins, sys
pyz = sys.argv[1]
sys.path.insert(0, pyz)
from dagspec.bytecode import install
install(pyz)
compiled, real_compile = [], builtins.compile
def counting(source, filename, *args, **kwargs):
    if str(filename).startswith(pyz):
        compiled.append(str(filename)[len(pyz) + 1:])
    return real_compile(source, filename, *args, **kwargs)
builtins.compile = counting
import attrs, cattrs, dateutil, strictyaml, trio
import dagspec.cli, dagspec.commands.run, dagspec.commands.validate, dagspec.commands.status
print(compiled)
"""


@pytest.mark.parametrize("version", SUPPORTED)
def test_each_python_loads_bytecode_and_compiles_no_source(
    pyz: Path, tmp_path: Path, version: str
) -> None:
    python = _present(version)
    done = subprocess.run(
        [python, "-I", "-S", "-c", _COUNT_COMPILES, str(pyz)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "[]\n"


@pytest.mark.parametrize("version", TOO_OLD)
def test_an_older_python_gets_one_line_naming_the_version_needed(
    pyz: Path, tmp_path: Path, version: str
) -> None:
    python = _present(version)
    done = _run_with(python, pyz, "validate", "fixtures/dags/diamond.yaml", cwd=ROOT, home=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert re.fullmatch(_too_old_line(python, version), done.stderr), done.stderr


@pytest.mark.parametrize("version", [v for v in TOO_OLD if v not in ("2.7", "3.6")])
def test_python_m_dagspec_on_an_older_python_says_the_same(tmp_path: Path, version: str) -> None:
    python = _present(version)  # 2.7 and 3.6 cannot parse dagspec/__init__.py at all
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    argv = [python, "-m", "dagspec", "validate", "fixtures/dags/diamond.yaml"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert re.fullmatch(_too_old_line(python, version), done.stderr), done.stderr


def _too_old_line(python: str, version: str) -> str:
    """The one line (a regular expression) for ``python`` of ``version`` (X.Y)."""
    needed = "dagspec needs Python 3.11 or newer"
    after = rf"{re.escape(python)} is Python {re.escape(version)}\.\d+"
    return rf"dag: error: {needed}, and {after}: run it with python3\.11 or newer\n"


def test_entries_are_sorted_with_one_timestamp_and_fixed_modes(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as archive:
        infos = archive.infolist()
    keys = [PurePosixPath(info.filename).parts for info in infos]
    assert keys == sorted(keys)
    assert len({info.date_time for info in infos}) == 1
    modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in infos}
    assert {modes[n] for n in modes if n.endswith("/")} == {0o755}
    assert {modes[n] for n in modes if not n.endswith("/")} == {0o644}


def _run_pyz(pyz: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-I", "-S", str(pyz), *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def test_validates_a_good_file(pyz: Path) -> None:
    done = _run_pyz(pyz, "validate", "fixtures/dags/diamond.yaml", cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (0, "OK: 4 features in 1 layers\n", "")


def test_rejects_every_broken_fixture_with_one_line_and_no_traceback(pyz: Path) -> None:
    bad = sorted((ROOT / "fixtures" / "dags" / "bad").iterdir())
    assert len(bad) >= 30
    for path in bad:
        done = _run_pyz(pyz, "validate", str(path.relative_to(ROOT)), cwd=ROOT)
        assert done.returncode == 1, path.name
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"dag: error: {path.relative_to(ROOT)}"), lines[0]
