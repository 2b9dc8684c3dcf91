"""``dagspec.bytecode``: the archive's pack for this Python is loaded, anything else is not."""

from __future__ import annotations

import importlib
import importlib.util
import marshal
import py_compile
import sys
import traceback
import zipfile
import zlib
from pathlib import Path
from types import ModuleType

import pytest

from dagspec.bytecode import ArchiveImporter, install, pack_name, read_pack

TAG = str(sys.implementation.cache_tag)
SOURCE = 'WHERE = "source"\n\ndef fail():\n    raise ValueError("from the archive")\n'
UNCHECKED = py_compile.PycInvalidationMode.UNCHECKED_HASH


def _pyc(tmp_path: Path, mode: py_compile.PycInvalidationMode = UNCHECKED) -> bytes:
    """Bytecode that says where it came from: not compiled from the source beside it."""
    source, cfile = tmp_path / "src.py", tmp_path / "src.pyc"
    source.write_text(SOURCE.replace('"source"', '"bytecode"'))
    py_compile.compile(str(source), str(cfile), doraise=True, invalidation_mode=mode)
    return cfile.read_bytes()


def _archive(tmp_path: Path, pack: dict[str, bytes], tag: str = TAG) -> Path:
    """``pkg`` and ``pkg.mod`` as sources, and ``pack`` (source path -> .pyc) for ``tag``."""
    path = tmp_path / "app.pyz"
    compressed = {source: zlib.compress(pyc) for source, pyc in pack.items()}
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("pkg/__init__.py", "pkg/mod.py"):
            archive.writestr(name, SOURCE)
        archive.writestr("pkg/early.py", "")
        archive.writestr(pack_name(tag), marshal.dumps(compressed))
    return path


def _load(pyz: Path, inside: str, name: str) -> ModuleType:
    importer = ArchiveImporter(f"{pyz}/{inside}".rstrip("/"), read_pack(str(pyz), TAG))
    spec = importer.find_spec(name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loads_this_pythons_bytecode_for_a_module_and_a_package(tmp_path: Path) -> None:
    pyz = _archive(tmp_path, {"pkg/mod.py": _pyc(tmp_path), "pkg/__init__.py": _pyc(tmp_path)})
    assert _load(pyz, "pkg", "pkg.mod").WHERE == "bytecode"
    package = _load(pyz, "", "pkg")
    assert package.WHERE == "bytecode"
    assert package.__file__ == f"{pyz}/pkg/__init__.py"
    assert package.__path__ == [f"{pyz}/pkg"]


def _unsuitable(why: str, tmp_path: Path) -> tuple[dict[str, bytes], str]:
    """A pack (source path -> .pyc) and its tag whose bytecode for pkg/mod.py must not load."""
    pyc = _pyc(tmp_path)
    if why == "another Python's magic number":
        magic = (int.from_bytes(pyc[:2], "little") + 1).to_bytes(2, "little")
        return {"pkg/mod.py": magic + pyc[2:]}, TAG
    if why == "checked against a timestamp":
        return {"pkg/mod.py": _pyc(tmp_path, py_compile.PycInvalidationMode.TIMESTAMP)}, TAG
    if why == "another Python's pack":
        return {"pkg/mod.py": pyc}, "cpython-399"
    return {"pkg/other.py": pyc}, TAG


@pytest.mark.parametrize(
    "why",
    [
        "another Python's magic number",
        "checked against a timestamp",
        "another Python's pack",
        "not in the pack",
    ],
)
def test_falls_back_to_the_source_when_the_bytecode_does_not_suit(tmp_path: Path, why: str) -> None:
    pyz = _archive(tmp_path, *_unsuitable(why, tmp_path))
    assert _load(pyz, "pkg", "pkg.mod").WHERE == "source"


def test_an_unreadable_pack_is_no_pack(tmp_path: Path) -> None:
    pyz = tmp_path / "app.pyz"
    with zipfile.ZipFile(pyz, "w") as archive:
        archive.writestr(pack_name(TAG), b"\x00not marshal")
    assert read_pack(str(pyz), TAG) == {}
    assert read_pack(str(pyz), None) == {}


def test_a_traceback_shows_the_source_line_from_the_archive(tmp_path: Path) -> None:
    module = _load(_archive(tmp_path, {"pkg/mod.py": _pyc(tmp_path)}), "pkg", "pkg.mod")
    with pytest.raises(ValueError) as caught:
        module.fail()
    assert 'raise ValueError("from the archive")' in "".join(traceback.format_tb(caught.tb))


def test_install_serves_packages_imported_before_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyz = _archive(tmp_path, {"pkg/mod.py": _pyc(tmp_path)})
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
