"""``dagspec.bytecode``: the archive's per-interpreter bytecode is loaded, anything else is not."""

from __future__ import annotations

import importlib.util
import py_compile
import sys
import traceback
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from dagspec.bytecode import ArchiveImporter, install

TAG = sys.implementation.cache_tag
SOURCE = 'WHERE = "source"\n\ndef fail():\n    raise ValueError("from the archive")\n'


def _pyc(tmp_path: Path, text: str, mode: py_compile.PycInvalidationMode) -> bytes:
    source, cfile = tmp_path / "src.py", tmp_path / "src.pyc"
    source.write_text(text)
    py_compile.compile(str(source), str(cfile), doraise=True, invalidation_mode=mode)
    return cfile.read_bytes()


def _bytecode(tmp_path: Path) -> bytes:
    """Bytecode that says where it came from: not compiled from the source beside it."""
    text = SOURCE.replace('"source"', '"bytecode"')
    return _pyc(tmp_path, text, py_compile.PycInvalidationMode.UNCHECKED_HASH)


def _archive(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    path = tmp_path / "app.pyz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {"pkg/__init__.py": SOURCE.encode(), **entries}.items():
            archive.writestr(name, data)
    return path


def _load(importer: ArchiveImporter, name: str) -> ModuleType:
    spec = importer.find_spec(name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loads_this_pythons_bytecode_for_a_module_and_a_package(tmp_path: Path) -> None:
    pyz = _archive(
        tmp_path,
        {
            "pkg/mod.py": SOURCE.encode(),
            f"pkg/__pycache__/mod.{TAG}.pyc": _bytecode(tmp_path),
            f"pkg/__pycache__/__init__.{TAG}.pyc": _bytecode(tmp_path),
        },
    )
    assert _load(ArchiveImporter(f"{pyz}/pkg"), "pkg.mod").WHERE == "bytecode"
    package = _load(ArchiveImporter(str(pyz)), "pkg")
    assert package.WHERE == "bytecode"
    assert package.__file__ == f"{pyz}/pkg/__init__.py"
    assert package.__path__ == [f"{pyz}/pkg"]


@pytest.mark.parametrize(
    "why",
    ["another Python's magic number", "checked against a timestamp", "another Python's name"],
)
def test_falls_back_to_the_source_when_the_bytecode_does_not_suit(tmp_path: Path, why: str) -> None:
    name, data = f"pkg/__pycache__/mod.{TAG}.pyc", _bytecode(tmp_path)
    if why == "another Python's magic number":
        data = (int.from_bytes(data[:2], "little") + 1).to_bytes(2, "little") + data[2:]
    elif why == "checked against a timestamp":
        data = _pyc(tmp_path, "WHERE = 'bytecode'\n", py_compile.PycInvalidationMode.TIMESTAMP)
    else:
        name = "pkg/__pycache__/mod.cpython-399.pyc"
    pyz = _archive(tmp_path, {"pkg/mod.py": SOURCE.encode(), name: data})
    assert _load(ArchiveImporter(f"{pyz}/pkg"), "pkg.mod").WHERE == "source"


def test_a_traceback_shows_the_source_line_from_the_archive(tmp_path: Path) -> None:
    pyz = _archive(
        tmp_path,
        {"pkg/mod.py": SOURCE.encode(), f"pkg/__pycache__/mod.{TAG}.pyc": _bytecode(tmp_path)},
    )
    module = _load(ArchiveImporter(f"{pyz}/pkg"), "pkg.mod")
    with pytest.raises(ValueError) as caught:
        module.fail()
    assert 'raise ValueError("from the archive")' in "".join(traceback.format_tb(caught.tb))


def test_install_serves_packages_imported_before_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyz = _archive(
        tmp_path,
        {
            "pkg/early.py": b"",
            "pkg/mod.py": SOURCE.encode(),
            f"pkg/__pycache__/mod.{TAG}.pyc": _bytecode(tmp_path),
        },
    )
    monkeypatch.setattr(sys, "path", [str(pyz), *sys.path])
    monkeypatch.setattr(sys, "path_hooks", list(sys.path_hooks))
    monkeypatch.setattr(sys, "path_importer_cache", dict(sys.path_importer_cache))
    for name in ("pkg", "pkg.early", "pkg.mod"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    # Through zipimport, as dag.pyz imports dagspec.bytecode: zipimporters now cached.
    importlib.import_module("pkg.early")
    install(str(pyz))
    assert importlib.import_module("pkg.mod").WHERE == "bytecode"
    assert isinstance(sys.path_importer_cache[f"{pyz}/pkg"], ArchiveImporter)
    with pytest.raises(ImportError):
        sys.path_hooks[0](f"{pyz}.d")  # beside the archive, not in it: zipimport's or none
