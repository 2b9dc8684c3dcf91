"""The stall watchdog's timing, on trio's autojump clock: a stall is noticed one period after
the agent's last progress (as its files' modification times date it), not up to a look
later, and without looking more often than a quarter of the period (at most 10 s)."""

from __future__ import annotations

import trio
import trio.testing

from dagspec.watchdog import Stamp, Watchdog


class Agent:
    """Files whose modification times are on trio's clock (``wall``), changed on demand."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {"log": 0}
        self.looks = 0
        self.news: list[tuple[float, float | None]] = []

    def touch(self, name: str = "log") -> None:
        self.files[name] = round(trio.current_time() * 1e9)

    def stamp(self) -> Stamp:
        self.looks += 1
        assert self.looks < 10_000, "the watchdog looks in a loop"
        return tuple((name, mtime, 1) for name, mtime in sorted(self.files.items()))

    def heard(self, idle: float | None) -> None:
        self.news.append((trio.current_time(), idle))


async def _watch(agent: Agent, period: float) -> tuple[Watchdog, float]:
    """Run a watchdog until it ends the attempt; the time it did."""
    dog = Watchdog(period, agent.stamp, agent.heard, wall=trio.current_time)
    with trio.CancelScope() as scope:
        await dog.watch(scope)
    return dog, trio.current_time()


async def test_a_stall_is_noticed_one_period_after_the_last_progress(
    autojump_clock: trio.testing.MockClock,
) -> None:
    agent = Agent()
    async with trio.open_nursery() as nursery:

        async def work() -> None:
            await trio.sleep(3.3)  # between two looks (every 10 s)
            agent.touch()

        nursery.start_soon(work)
        dog, ended = await _watch(agent, 60.0)
    (stalled_at, idle), *rest = agent.news
    assert rest == []
    assert abs(stalled_at - 63.3) < 0.01 and idle is not None and abs(idle - 60) < 0.01
    assert abs(ended - 123.3) < 0.01 and dog.ended and abs(dog.idle - 120) < 0.01


async def test_progress_after_a_stall_clears_it_and_the_next_is_timed_from_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    agent = Agent()
    async with trio.open_nursery() as nursery:

        async def work() -> None:
            await trio.sleep(70.5)  # stalled at 60, moves again at 70.5
            agent.touch("specs/001-a/tasks.yaml")

        nursery.start_soon(work)
        await _watch(agent, 60.0)
    times = [(round(at, 2), idle is None) for at, idle in agent.news]
    assert times == [(60.0, False), (80.0, True), (130.5, False)]  # cleared at the next look


async def test_a_silent_agent_is_looked_at_no_more_than_every_tenth_of_a_minute(
    autojump_clock: trio.testing.MockClock,
) -> None:
    agent = Agent()
    _, ended = await _watch(agent, 600.0)  # 20 minutes of silence, a look every 10 s
    assert ended == 1200.0
    assert agent.looks <= 1 + 1200 / 10 + 2


async def test_a_change_without_a_time_counts_from_the_look_that_saw_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    agent = Agent()
    agent.files["specs/001-a/draft.md"] = 0
    async with trio.open_nursery() as nursery:

        async def work() -> None:
            await trio.sleep(3.3)
            del agent.files["specs/001-a/draft.md"]  # a file gone: no time to read

        nursery.start_soon(work)
        await _watch(agent, 60.0)
    assert round(agent.news[0][0], 2) == 70.0  # seen at the look at 10 s


async def test_a_deadline_a_rounding_error_short_of_the_timeout_is_still_reached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """(250.006 + 60) - 250.006 < 60 in floating point: judged by ``idle >= timeout``, the
    watchdog woke at its deadline, found it not yet due, and slept until it again, forever."""
    agent = Agent()
    async with trio.open_nursery() as nursery:

        async def work() -> None:
            for _ in range(5):  # busy until 250.006
                await trio.sleep(50.0012)
                agent.touch()

        nursery.start_soon(work)
        _, ended = await _watch(agent, 60.0)
    assert agent.looks < 100
    assert [round(at, 3) for at, _ in agent.news] == [310.006]
    assert round(ended, 3) == 370.006
