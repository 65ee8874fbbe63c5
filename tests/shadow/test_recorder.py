"""The recorder process stays out of the proxy's way for the CPU."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from facade.shadow.recorder import Recorder


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling class")
def test_the_recorder_runs_in_the_idle_scheduling_class() -> None:
    loop = asyncio.new_event_loop()
    recorder = Recorder(loop, lambda route, result, n: None)
    try:
        pid = recorder.process.pid
        assert pid is not None
        deadline = time.monotonic() + 20
        policy = os.sched_getscheduler(pid)
        while policy != os.SCHED_IDLE and time.monotonic() < deadline:
            time.sleep(0.05)  # the spawned interpreter sets it once it has started
            policy = os.sched_getscheduler(pid)
        assert policy == os.SCHED_IDLE
        assert os.sched_getscheduler(os.getpid()) != os.SCHED_IDLE  # the worker is not
    finally:
        recorder.close()
        loop.close()
