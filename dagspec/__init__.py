"""dagspec: run many autospec workflows at once, in dependency order, and merge them back.

The map of the package is in CONTRIBUTING.md ("Map of the code"); ``lifecycle`` is the place
to start: every status and transition of a run, as pure functions.
"""

from __future__ import annotations

__version__ = "0.1.0"
