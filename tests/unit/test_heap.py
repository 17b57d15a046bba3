"""The collector around a run's steps (`cli/_heap.py`)."""

from __future__ import annotations

import gc

from orchestrator.cli._heap import paused_collector


def test_the_collector_is_paused_for_the_block_and_on_again_after():
    assert gc.isenabled()
    with paused_collector():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with paused_collector():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
