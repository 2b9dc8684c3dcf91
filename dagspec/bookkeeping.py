"""A drive's git bookkeeping: what it knows of the repository, so that git is asked each
question once (issue 16), and the locks over what must be serial.

Read when the drive begins (``Bookkeeping.load``, three git processes): whether the user's
configuration asks for signed commits (``commit.gpgSign``), who commits in the checkout
(``git_config.identity_env``: given to the commits in worktrees and to agents, on branches where an
``includeIf "onbranch:..."`` identity does not apply), every branch name (autospec
numbers a new spec above the ``NNN-`` of every branch it sees, contract §1.5), and the tips
of the run's own branches ``dag/<run>/...``, the integration branch's among them. The drive
then keeps it up to date itself: it is the only writer of the run's branches while it holds
the run's lock (README, Files on disk), so what it set is what is there. It records the
integration branch's tip after each join, the specs whose work that branch has, and the
spec numbers it handed out.

Three locks, each over one thing that must not run concurrently in one repository, so that
none waits for another's git:

- ``worktrees``: making or removing a worktree (``git worktree add``: concurrent ones read
  each other's half-made administrative directories and fail, git 2.39; other runs of the
  repository wait on ``worktree_adds``) and taking back a spec's branch from an old
  autospec (``compat.take_back``);
- ``joining``: every change of the integration branch. A join writes objects and moves one
  ref by compare-and-swap (``dagspec.integration``), and a ``worktree add`` writes another
  worktree's files and a new branch, so a spec's worktree is made while another spec joins
  (with instant agents, one at a time, the two used to alternate behind one lock);
- ``numbering``: handing out a spec number, so a spec whose worktree is ready never waits
  for another's ``worktree add`` (seconds in a large repository) to get its number. Under
  it, the repository's ledger of numbers (``ledgers.SPEC_NUMBERS``) is locked too, for the other
  runs of the repository: each number is above every one any run handed out.

Everything else of a spec's bookkeeping (copying the configuration, committing its work in
its own worktree, which writes only that worktree's index and its own branch) runs
unlocked, beside other specs' agents and bookkeeping. A spec with dependencies starts from
the integration branch's tip as ``integration`` holds it: its dependencies joined before it
was ready, so any tip read from then on has their work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import attrs

from dagspec import git_batch, git_commit, git_config, git_worktree, ledgers, spec_dirs
from dagspec.integration import integration_branch


@attrs.define
class Bookkeeping:
    """What one drive knows of its repository (module docstring). ``branches``: the run's
    branches when the drive began, ``{name: tip}``; ``integration``: the integration
    branch's tip as this drive last saw or set it, None while it does not exist;
    ``joined``: the specs whose work it has; ``collected``: the spec directory of each spec
    it collected, ``{id: name}``, known before the join puts it in the integration branch;
    ``floor``: the highest spec number seen in a branch name or handed out; ``local``:
    every local branch when the drive began (none of them is autospec's stray branch in
    a worktree made now: ``compat.note_branches``)."""

    repo: Path
    sign: bool
    identity: dict[str, str]
    branches: dict[str, str]
    integration: str | None
    floor: int
    local: frozenset[str] = frozenset()
    joined: set[str] = attrs.field(factory=set)
    collected: dict[str, str] = attrs.field(factory=dict)  # spec id: its spec directory
    worktrees: threading.Lock = attrs.field(factory=threading.Lock)
    joining: threading.Lock = attrs.field(factory=threading.Lock)
    numbering: threading.Lock = attrs.field(factory=threading.Lock)
    _base_dirs: dict[str, list[str]] = attrs.field(factory=dict)
    _asking: threading.Lock = attrs.field(factory=threading.Lock)  # one ``ls-tree``, not two

    @classmethod
    def load(cls, repo: Path, run_id: str) -> Bookkeeping:
        """Ask git once for what the drive of run ``run_id`` needs to know."""
        tips = git_batch.branch_tips(repo, "refs/heads", "refs/remotes")
        prefix = f"refs/heads/dag/{run_id}/"
        own = {
            ref.removeprefix("refs/heads/"): sha
            for ref, sha in tips.items()
            if ref.startswith(prefix)
        }
        names = git_batch.short_names(tips)
        numbers = [spec_dirs.number_of(n) for n in names if spec_dirs.is_numbered(n)]
        return cls(
            repo=repo,
            sign=git_commit.signs_commits(repo),
            identity=git_config.identity_env(repo),
            branches=own,
            integration=own.get(integration_branch(run_id)),
            floor=max(numbers, default=0),
            local=frozenset(
                r.removeprefix("refs/heads/") for r in tips if r.startswith("refs/heads/")
            ),
        )

    def base_dirs(self, worktree: Path, commit: str) -> Callable[[], list[str]]:
        """The directories under ``specs/`` in ``commit`` (the run's base commit), asked of
        git at most once a drive (a commit's tree never changes), when first needed."""

        def ask() -> list[str]:
            with self._asking:
                if commit not in self._base_dirs:
                    self._base_dirs[commit] = git_worktree.tree_dirs(worktree, commit, "specs")
                return self._base_dirs[commit]

        return ask

    def next_number(self, in_specs: int, floor: int) -> int:
        """The spec number to hand out: above ``in_specs`` (the worktree's own ``specs/``),
        the caller's ``floor``, every branch name and every number handed out before.
        Call with ``numbering`` held."""
        self.floor = max(self.floor, in_specs, floor) + 1
        return self.floor

    def hand_out(
        self,
        worktree: Path,
        floor: int,
        run_id: str,
        spec_id: str,
        stopped: Callable[[], bool] = lambda: False,
    ) -> int:
        """Steer the specify in ``worktree`` to a number above ``floor`` and above every
        number any run of the repository handed out (its ledger, read and written under
        its lock: runs at once never share one); return it. Raises ``WaitStopped`` when
        ``stopped()`` while another run holds the ledger."""
        ledger = ledgers.held(self.repo, ledgers.SPEC_NUMBERS, stopped)
        with self.numbering, ledger as handed:
            highest = spec_dirs.highest_handed_out(handed.lines)
            number = self.next_number(spec_dirs.highest_in_specs(worktree), max(floor, highest))
            spec_dirs.place_reservation(worktree, number)
            handed.add(spec_dirs.handed_out(number, run_id, spec_id))
        return number
