"""strictyaml's loader without the comment machinery, for reading DAG files fast (issue 16).

strictyaml's ``StrictYAMLLoader`` is ruamel's round-trip loader: its scanner gathers the
comments around every token, so that a document can be written back as it was. dagspec
only reads DAG files, and that gathering was a quarter of ``dag validate`` on 500
features. ``Loader`` is the same composition with ruamel's plain scanner and parser, and
keeps what dagspec relies on from strictyaml: maps and lists as ``CommentedMap`` and
``CommentedSeq`` with their line records (``.lc``), scalars as strings, duplicate keys
refused (``StrictYAMLConstructor``), and tags, anchors and aliases refused with the
exceptions strictyaml raises for them. It refuses those as they are scanned, where
strictyaml refused them when a token was looked at.
"""

from __future__ import annotations

from typing import Any

import strictyaml.ruamel as ruamel
from strictyaml.exceptions import AnchorTokenDisallowed, TagTokenDisallowed
from strictyaml.parser import StrictYAMLConstructor
from strictyaml.ruamel.composer import Composer
from strictyaml.ruamel.parser import Parser
from strictyaml.ruamel.reader import Reader
from strictyaml.ruamel.resolver import VersionedResolver
from strictyaml.ruamel.scanner import Scanner


class _Scanner(Scanner):  # type: ignore[misc]
    def fetch_tag(self) -> None:
        mark = self.reader.get_mark()
        problem = "Found disallowed tag tokens (do not specify types in markup)"
        raise TagTokenDisallowed("While scanning", mark, problem, mark)

    def fetch_anchor(self) -> None:
        self._no_anchors()

    def fetch_alias(self) -> None:
        self._no_anchors()

    def _no_anchors(self) -> None:
        mark = self.reader.get_mark()
        raise AnchorTokenDisallowed("While scanning", mark, "Found disallowed anchor token", mark)


class Loader(Reader, _Scanner, Parser, Composer, StrictYAMLConstructor, VersionedResolver):  # type: ignore[misc]
    """ruamel's loader protocol: ``ruamel.load(text, Loader=Loader)``."""

    label = "<DAG file>"  # strictyaml's constructor names the document in its errors
    allow_flow_style = True  # depends_on: [a, b]

    def __init__(self, stream: str, version: Any = None, preserve_quotes: Any = None) -> None:
        Reader.__init__(self, stream, loader=self)
        Scanner.__init__(self, loader=self)
        Parser.__init__(self, loader=self)
        Composer.__init__(self, loader=self)
        StrictYAMLConstructor.__init__(self, preserve_quotes=preserve_quotes, loader=self)
        VersionedResolver.__init__(self, version, loader=self)


def load(text: str) -> object:
    """The document in ``text``: a ``CommentedMap``, ``CommentedSeq``, string or None.

    Raises ``strictyaml.StrictYAMLError`` (a duplicate key, a tag, an anchor or alias) or
    ruamel's ``MarkedYAMLError`` (not YAML), each with the mark of the fault.
    """
    return ruamel.load(text, Loader=Loader)
