"""Bytecode for whichever Python runs ``dag.pyz``, so that no start compiles the sources.

zipimport loads only ``module.pyc`` beside ``module.py``, and only when its magic number is
the running Python's: on any other version every start compiled every source (issue 16:
``validate`` of 500 features 0.6 s on Python 3.12 instead of 0.27 s on 3.11). So the
archive also holds one *pack* per other Python the build found, ``__pycache__/<tag>.pack``
(``tag`` being ``sys.implementation.cache_tag``, such as ``cpython-312``), and
:func:`install` puts :class:`ArchiveImporter` in front of zipimport to load from it.

A pack is one stored (not deflated) archive entry: ``marshal.dumps`` of a dict from each
source's path in the archive (``"dagspec/cli.py"``) to its ``.pyc`` (PEP 552 header,
unchecked hash), zlib-compressed. One entry per Python rather than one ``.pyc`` per module
and Python: zipimport reads the whole archive directory at every start, in Python, so
every entry costs each start (with 3 Pythons' ``.pyc`` files side by side, twice the
entries, ``--version`` ran 15% more instructions).

A Python without a pack still runs the archive, compiling in memory as before. Nothing is
ever written, so the archive runs from a read-only place.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import sys
import zipimport
import zlib
from collections.abc import Mapping
from types import CodeType

_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, never checked against the source


def pack_name(cache_tag: str) -> str:
    """The archive entry holding the bytecode for the Pythons of ``cache_tag``."""
    return f"__pycache__/{cache_tag}.pack"


class ArchiveImporter(zipimport.zipimporter):
    """A zipimporter that loads a module's code from ``bytecode`` when it is there.

    ``path`` is the archive or a directory inside it, as for zipimport; ``bytecode`` maps a
    source's path in the archive to its compressed ``.pyc``. Everything else (sources for
    tracebacks, resources, namespace packages) is zipimport's.
    """

    def __init__(self, path: str, bytecode: Mapping[str, bytes]) -> None:
        super().__init__(path)
        self.bytecode = bytecode

    def get_code(self, fullname: str) -> CodeType:
        """The module's code: this Python's shipped bytecode, else zipimport's answer.

        Raises ``zipimport.ZipImportError`` when the archive has no such module.
        """
        code = self._shipped_code(fullname)
        return code if code is not None else super().get_code(fullname)

    def get_filename(self, fullname: str) -> str:
        """The module's source path, such as ``/usr/local/bin/dag.pyz/dagspec/cli.py``.

        zipimport's own ``get_filename`` unmarshals or compiles the module to answer, and
        ``find_spec`` asks it, so every module was loaded twice.
        """
        return f"{self.archive}{os.sep}{self._source(fullname)}"

    def _source(self, fullname: str) -> str:
        tail = fullname.rpartition(".")[2]
        inner = f"{tail}{os.sep}__init__.py" if self.is_package(fullname) else f"{tail}.py"
        return self.prefix + inner

    def _shipped_code(self, fullname: str) -> CodeType | None:
        compressed = self.bytecode.get(self._source(fullname).replace(os.sep, "/"))
        if compressed is None:
            return None
        pyc = zlib.decompress(compressed)
        header_ok = pyc[:4] == importlib.util.MAGIC_NUMBER  # a pre-release of the same tag
        if not header_ok or int.from_bytes(pyc[4:8], "little") != _UNCHECKED_HASH:
            return None
        code = marshal.loads(memoryview(pyc)[16:])
        return code if isinstance(code, CodeType) else None


def read_pack(archive: str, cache_tag: str | None) -> dict[str, bytes]:
    """The pack of ``cache_tag`` in ``archive``: empty when there is none or it is unreadable."""
    if cache_tag is None:  # this Python does not use bytecode files at all
        return {}
    try:
        pack = marshal.loads(zipimport.zipimporter(archive).get_data(pack_name(cache_tag)))
    except (OSError, EOFError, ValueError, TypeError, zipimport.ZipImportError):
        return {}
    return pack if isinstance(pack, dict) else {}


def install(archive: str) -> None:
    """Load the modules of ``archive`` (the path of ``dag.pyz`` as on ``sys.path``) through
    :class:`ArchiveImporter` from now on, including packages already imported from it."""
    inside = archive + os.sep
    bytecode = read_pack(archive, sys.implementation.cache_tag)

    def path_hook(path: str) -> ArchiveImporter:
        if path != archive and not path.startswith(inside):
            raise ImportError(f"{path} is not inside {archive}", path=path)
        return ArchiveImporter(path, bytecode)

    sys.path_hooks.insert(0, path_hook)
    for path in [p for p in sys.path_importer_cache if p == archive or p.startswith(inside)]:
        del sys.path_importer_cache[path]  # made again by path_hook when next needed
