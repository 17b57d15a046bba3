"""How long tracking rides out an outage, and when it gives up: pure, no clock."""

from __future__ import annotations

import random

import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.errors import AuthError, Throttled, TrackingAbandoned
from orchestrator.rollout._outage import OUTAGE_NAP_MAX, Deadlines, Outage
from orchestrator.rollout._watch import Watched, WatchedInvocation

DEADLINES = Deadlines(delivery_timeout=300.0, command_timeout=60.0, stop_grace=60.0)


def invocation(dispatched_at: float) -> WatchedInvocation:
    instance = Instance("i-1", "n1", InstanceStatus.RUNNING, "cn-hangzhou-h", "", "linux")
    return WatchedInvocation("t-1", "all", dispatched_at, {"i-1": Watched(instance)})


def test_the_deadline_is_the_latest_dispatch_plus_delivery_timeout_and_slack():
    """dispatch + delivery_timeout + timeout + min(delivery_timeout, stop_grace)."""
    assert DEADLINES.give_up_at([invocation(10.0), invocation(100.0)]) == 100 + 300 + 60 + 60
    short = Deadlines(delivery_timeout=1.0, command_timeout=1.0, stop_grace=60.0)
    assert short.give_up_at([invocation(0.0)]) == 3.0


def test_a_requested_stop_extends_the_deadline_by_the_stop_grace():
    late = invocation(0.0)
    late.instances["i-1"].stop_requested_at = 1000.0
    assert DEADLINES.give_up_at([late]) == 1060.0


def test_before_the_deadline_a_throttled_poll_is_ridden_out_and_after_it_is_not():
    outage = Outage("r", since=0.0)
    error = Throttled("Throttling", "slow down", action="DescribeInvocations")
    outage.poll_failed(error, now=100.0, give_up_at=480.0)
    nap = outage.nap(random.Random(1), poll_min=1.0, now=100.0, give_up_at=480.0)
    assert 1.0 <= nap <= OUTAGE_NAP_MAX
    assert outage.nap(random.Random(1), poll_min=1.0, now=479.5, give_up_at=480.0) <= 0.5
    with pytest.raises(TrackingAbandoned) as caught:
        outage.poll_failed(error, now=480.0, give_up_at=480.0)
    assert caught.value.cause is error
    assert "after 2 failed polls in 480 s" in str(caught.value)


def test_refused_credentials_give_up_at_once():
    error = AuthError("InvalidAccessKeyId.NotFound", "gone", action="DescribeInvocations")
    with pytest.raises(TrackingAbandoned, match="tracking stopped: DescribeInvocations"):
        Outage("r", since=0.0).poll_failed(error, now=1.0, give_up_at=1000.0)
