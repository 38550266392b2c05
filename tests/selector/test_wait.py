"""Selector.wait(): the one-shot, level-triggered coroutine; never leaves a watcher."""

import asyncio
from typing import Any

import pytest

from selector_app.selector import Selector
from tests.selector.conftest import Res, logged_errors

# Every test waits on `sel` with the resource "res" registered.
pytestmark = pytest.mark.usefixtures("res")


async def _waiting(
    sel: Selector, *, timeout: float | None = None, **conditions: Any
) -> asyncio.Task:
    """Start `sel.wait(...)` in a task and let it reach its await."""
    task = asyncio.create_task(sel.wait(timeout=timeout, **conditions))
    await asyncio.sleep(0)
    assert not task.done()
    assert len(sel.watchers()) == 1
    return task


async def test_wait_returns_at_once_when_available(sel, res):
    res.seq = 3
    async with asyncio.timeout(1):
        assert await sel.wait(res=2) == {"res": 3}
    assert sel.watchers() == []


async def test_wait_returns_the_results_of_a_later_fire(sel, res):
    task = await _waiting(sel, res=0)
    sel.trigger("res")  # nothing new yet
    await asyncio.sleep(0)
    assert not task.done()
    res.seq = 1
    sel.trigger("res")
    assert sel.watchers() == []  # cancelled in the callback, before the task resumes
    async with asyncio.timeout(1):
        assert await task == {"res": 1}
    assert sel.watchers() == []


async def test_wait_merges_mapping_and_keywords(sel, res):
    other = Res(5)
    sel.register(other=other)
    res.seq = 1
    async with asyncio.timeout(1):
        assert await sel.wait({"res": 0, "other": 10}, other=0) == {
            "res": 1,
            "other": 5,
        }
    assert sel.watchers() == []


async def test_only_the_first_fire_counts(sel, res, caplog):
    task = await _waiting(sel, res=0)
    res.seq = 1
    sel.trigger("res")
    res.seq = 2
    sel.trigger("res")
    sel.trigger("res")
    async with asyncio.timeout(1):
        assert await task == {"res": 1}
    assert sel.watchers() == []
    assert logged_errors(caplog) == []


async def test_wait_times_out_with_timeout_error(sel):
    async with asyncio.timeout(5):
        with pytest.raises(TimeoutError):
            await sel.wait(res=0, timeout=0.01)
    assert sel.watchers() == []


async def test_wait_with_timeout_returns_a_fire_before_the_deadline(sel, res):
    task = await _waiting(sel, res=0, timeout=30)
    res.seq = 1
    sel.trigger("res")
    async with asyncio.timeout(1):
        assert await task == {"res": 1}
    assert sel.watchers() == []


async def test_wait_with_timeout_returns_at_once_when_available(sel, res):
    res.seq = 1
    async with asyncio.timeout(1):
        assert await sel.wait(res=0, timeout=0) == {"res": 1}
    assert sel.watchers() == []


async def test_cancelling_wait_reraises_and_cancels_the_watcher(sel, res):
    task = await _waiting(sel, res=0)
    task.cancel()
    async with asyncio.timeout(1):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sel.watchers() == []
    res.seq = 1
    sel.trigger("res")  # nothing left to fire
    assert sel.watchers() == []


async def test_cancelling_wait_with_a_timeout_reraises(sel):
    task = await _waiting(sel, res=0, timeout=30)
    task.cancel()
    async with asyncio.timeout(1):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sel.watchers() == []


async def test_cancelling_after_a_fire_but_before_resuming_still_cancels(sel, res):
    task = await _waiting(sel, res=0)
    res.seq = 1
    sel.trigger("res")
    task.cancel()
    async with asyncio.timeout(1):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sel.watchers() == []


@pytest.mark.parametrize("conditions", [None, {}])
async def test_wait_without_conditions_raises_value_error(sel, conditions):
    async with asyncio.timeout(1):
        with pytest.raises(ValueError):
            await sel.wait(conditions)
        with pytest.raises(ValueError):
            await sel.wait(conditions, timeout=1)
    assert sel.watchers() == []


async def test_wait_with_a_none_name_raises_type_error(sel):
    async with asyncio.timeout(1):
        with pytest.raises(TypeError):
            await sel.wait({None: 0})
    assert sel.watchers() == []


async def test_an_exception_in_the_immediate_check_propagates(sel):
    def broken(_):
        raise RuntimeError("provider failed")

    sel.register(broken=broken)
    async with asyncio.timeout(1):
        with pytest.raises(RuntimeError):
            await sel.wait(broken=0)
    assert sel.watchers() == []


async def test_positional_only_conditions_leaves_the_name_free(sel):
    sel.register(conditions=Res(1))
    async with asyncio.timeout(1):
        assert await sel.wait(conditions=0) == {"conditions": 1}
    assert sel.watchers() == []


async def test_many_waiters_each_get_one_result(sel, res):
    tasks = [asyncio.create_task(sel.wait(res=0)) for _ in range(50)]
    await asyncio.sleep(0)
    assert len(sel.watchers("res")) == 50
    res.seq = 7
    sel.trigger("res")
    async with asyncio.timeout(1):
        assert await asyncio.gather(*tasks) == [{"res": 7}] * 50
    assert sel.watchers() == []
