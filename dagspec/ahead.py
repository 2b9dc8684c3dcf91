"""Worktrees prepared ahead: the next specs', made while every slot is busy (issue 16).

With fewer slots than ready specs, a slot that comes free used to wait for the next spec's
``git worktree add`` before its agent could start. The scheduler (``dagspec.scheduler``)
now prepares the specs most likely to start next (its own choice, ``_next``) while the
slots are busy: one at a time, never while a spec holding a slot waits for its own (they
share the lock over ``git worktree add``, ``dagspec.bookkeeping``), and at most one per
slot, so that agents ending together all start their successors at once. A spec chosen
when a slot is free takes its worktree from here if it is one. Only a spec never attempted
is prepared ahead: nothing of it is recorded yet, so nothing recorded changes. One
prepared and then not started (the run was stopped) is removed, with its branch, when the
drive ends; a driver killed meanwhile leaves what one killed between ``worktree add`` and
the save of ``running`` leaves, which the next drive discards the same way
(``worktree.create_worktree``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from dagspec.attempt import Prepared


@attrs.define
class _Result:
    done: trio.Event = attrs.field(factory=trio.Event)
    value: Prepared | None = None
    error: Exception | None = None


@attrs.define
class Ahead:
    """The specs being prepared or prepared ahead, by id."""

    fresh: set[str]  # the specs never attempted (no attempt, branch or worktree recorded)
    results: dict[str, _Result] = attrs.field(factory=dict)

    def __len__(self) -> int:
        """How many specs are prepared or being prepared ahead, not yet taken."""
        return len(self.results)

    @property
    def ids(self) -> set[str]:
        """The specs prepared or being prepared ahead."""
        return set(self.results)

    @property
    def making(self) -> bool:
        """Whether a worktree is being made ahead now."""
        return any(not r.done.is_set() for r in self.results.values())

    def consider(
        self,
        nursery: trio.Nursery,
        spec_id: str | None,
        prepare: Callable[[str], Awaitable[Prepared]],
        made: Callable[[], None],
    ) -> None:
        """Call while every slot is busy, with the spec the scheduler would start next:
        prepare it in a task of ``nursery`` if it was never attempted (``fresh``), then call
        ``made``; its failure is kept for ``take``."""
        if spec_id is None or spec_id not in self.fresh:
            return
        result = self.results[spec_id] = _Result()

        async def make() -> None:
            try:
                result.value = await prepare(spec_id)
            except Exception as exc:  # the spec's to fail when it starts (issue 11)
                result.error = exc
            finally:
                result.done.set()
                made()

        nursery.start_soon(make)

    def leftovers(self) -> list[Prepared]:
        """The worktrees prepared ahead and never taken (the run stopped first), now
        forgotten: the caller removes them (``Workspace.discard``)."""
        made = [r.value for r in self.results.values() if r.value is not None]
        self.results.clear()
        return made

    async def take(self, spec_id: str) -> Prepared | None:
        """The spec's worktree prepared ahead (waiting for it if it is being made), or None
        when it was not; raises what preparing it raised."""
        self.fresh.discard(spec_id)  # attempted from now on
        result = self.results.get(spec_id)
        if result is None:
            return None
        await result.done.wait()  # cancelled here, it stays a leftover to remove
        del self.results[spec_id]
        if result.error is not None:
            raise result.error
        return result.value
