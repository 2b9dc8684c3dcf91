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
from hypothesis import HealthCheck, given, settings

from dagspec import __version__
from dagspec.bytecode import pack_name, read_pack
from tests.pyz_fixture import SUPPORTED, TOO_OLD, build, pythons
from tests.structural_mutants import mutant_texts

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _present(version: str) -> str:
    if pythons()[version] is None:
        pytest.skip(f"no Python {version} on this machine")
    return str(pythons()[version])


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
    again = build(tmp_path / "dag.pyz")
    assert again.read_bytes() == pyz.read_bytes()


def test_starts_with_the_shebang_and_is_executable(pyz: Path) -> None:
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert stat.S_IMODE(pyz.stat().st_mode) == 0o755


def test_ships_no_compiled_extensions_tests_or_caches(names: list[str]) -> None:
    assert [n for n in names if n.endswith((".so", ".pyd", ".dylib"))] == []
    parts = {part for name in names for part in PurePosixPath(name).parts[:-1]}
    assert parts.isdisjoint({"_tests", "tests", "bin"})
    others = {f"cpython-{v.replace('.', '')}" for v in SUPPORTED if pythons()[v]}
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
    isolated = [] if pythons()["2.7"] == python else ["-I"]
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
        "OK: 4 features in 1 layer\n",
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
    assert (done.returncode, done.stdout, done.stderr) == (0, "OK: 4 features in 1 layer\n", "")


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


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=mutant_texts())
def test_the_archive_rejects_structural_mutants_with_dag_error_lines(
    pyz: Path, tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """The same mutants as test_validate's, through the built archive on a bare Python."""
    where = tmp_path_factory.mktemp("mutant")
    (where / "dag.yaml").write_text(text)
    done = _run_pyz(pyz, "validate", "dag.yaml", cwd=where)
    assert done.returncode in (0, 1), done.stderr
    if done.returncode == 0:
        assert done.stdout.splitlines()[-1].startswith("OK: ")
    else:
        lines = done.stderr.splitlines()
        assert lines
        assert all(line.startswith("dag: error: dag.yaml") for line in lines), lines[:3]


@pytest.mark.parametrize(
    ("args", "code", "last_line"),
    [
        (("--color", "never", "validate", "fixtures/dags/diamond.yaml"), 0, "OK: 4 features"),
        (("stauts",), 2, "dag: error: unknown command 'stauts' (did you mean 'status'?)"),
        (("validate", "x", "--jsno"), 2, "dag: error: unrecognized arguments: --jsno (did you"),
    ],
)
def test_the_archive_s_command_line_forgives(
    pyz: Path, args: tuple[str, ...], code: int, last_line: str
) -> None:
    done = _run_pyz(pyz, *args, cwd=ROOT)
    assert done.returncode == code
    assert (done.stdout + done.stderr).splitlines()[-1].startswith(last_line)


def test_refuses_a_run_it_cannot_finish_before_writing_anything(pyz: Path, tmp_path: Path) -> None:
    """Preflight in the real archive: a fresh machine with no git identity and no autospec."""
    home, repo = tmp_path / "empty-home", tmp_path / "repo"
    home.mkdir()
    repo.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ("-c", "user.name=Set Up", "-c", "user.email=setup@example.com")
    for args in (
        ("init", "-q", "-b", "main"),
        (*ident, "commit", "-q", "--allow-empty", "-m", "x"),
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    (repo / "dag.yaml").write_text(
        'layers:\n  - id: L0\n    features:\n      - id: a\n        description: "A"\n'
    )
    argv = [sys.executable, "-I", "-S", str(pyz), "run", "dag.yaml", "--autospec", "/no/autospec"]
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False)
    lines = done.stderr.splitlines()
    assert done.returncode == 1 and done.stdout == ""
    assert all(line.startswith("dag: error: ") for line in lines), done.stderr
    assert any("git has no author or committer identity" in line for line in lines)
    assert sorted(p.name for p in repo.iterdir()) == [".git", "dag.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-home", "repo"]


def test_every_hint_says_the_archive_as_it_was_called(pyz: Path, git_repo: Path) -> None:
    """Hints on stdout (not only errors) name `python3 /abs/dag.pyz`, since `dag` is not on
    PATH: the empty list's, then status's of a failed run."""
    from dagspec.lifecycle import RunStatus, SpecStatus
    from tests.run_states import run, save, spec

    def said(*args: str) -> str:
        argv = [sys.executable, str(pyz), *args]
        return subprocess.run(argv, cwd=git_repo, capture_output=True, text=True).stdout

    out = said("list")
    assert f"{pyz} run FILE` starts one" in out and "`dag " not in out, out
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED), status=RunStatus.FAILED))
    out = said("status", "r")
    assert f"next: {sys.executable} {pyz} retry r a" in out and "next: dag " not in out, out


def test_version_with_nowhere_to_write_is_one_line_or_quiet(pyz: Path) -> None:
    """The archive answers --version before importing dagspec; it keeps cli's rules: a
    closed stdout drops it (exit 0), a full disk is one line (exit 1), no traceback."""
    argv = [sys.executable, str(pyz), "--version"]
    with Path("/dev/full").open("w") as full:
        done = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert done.stderr == "dag: error: cannot write the output: No space left on device\n"
    shut = subprocess.run(argv, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1))
    assert (shut.returncode, shut.stderr) == (0, "")
