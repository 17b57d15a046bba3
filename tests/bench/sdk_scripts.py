"""What a user writes today: a rollout with the official SDK (alibabacloud_ecs20140526).

Two scripts, the benchmark's yardsticks (bench_side_by_side.py, bench_long.py), and a
record of what the tool is compared with:

- `plain`: one thread. List the tagged instances (DescribeInstances, paged by
  NextToken), keep those whose Cloud Assistant is online (DescribeCloudAssistantStatus,
  100 ids a call), then for each batch of 50: RunCommand, poll DescribeInvocationResults
  every second until every instance is done, next batch.
- `threaded`: the same, the batches spread over 8 worker threads (ThreadPoolExecutor).

Both retry a Throttling answer after a short backoff (0.2 s, doubling, at most 2 s; a
RunCommand carries a ClientToken, so a retried one cannot run twice) and count every
request they send, retries included. Run alone: `python tests/bench/sdk_scripts.py
--endpoint http://127.0.0.1:PORT [--workers 8]` against a simulator.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from alibabacloud_ecs20140526 import models as ecs
from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from orchestrator.sim import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

if TYPE_CHECKING:
    from collections.abc import Callable

REGION = "cn-hangzhou"
BATCH = 50
POLL_SECONDS = 1.0
T = TypeVar("T")
STILL_RUNNING = frozenset({"Pending", "Scheduled", "Running", "Stopping"})


@dataclass(slots=True)
class Tally:
    """Requests sent per action (retries included), throttles, each instance's status."""

    calls: Counter[str] = field(default_factory=Counter)
    throttles: int = 0
    statuses: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, action: str, send: Callable[[], T]) -> T:
        """`send()`, counted; a Throttling answer retried after a short backoff."""
        backoff = 0.2
        while True:
            with self.lock:
                self.calls[action] += 1
            try:
                return send()
            except ClientException as error:
                if not str(error.code).startswith("Throttling"):
                    raise
                with self.lock:
                    self.throttles += 1
                time.sleep(backoff)  # the script's backoff, not a test's wait
                backoff = min(backoff * 2, 2.0)


def connect(endpoint: str) -> Client:
    """A Tea SDK client pointed at `endpoint` (`http://host:port`), the simulator's key."""
    host = endpoint.removeprefix("http://").rstrip("/")
    return Client(
        Config(
            access_key_id=DEFAULT_ACCESS_KEY_ID,
            access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
            endpoint=host,
            protocol="http",
            region_id=REGION,
        )
    )


def tagged_instances(client: Client, tally: Tally, key: str, value: str) -> list[str]:
    """Every instance with tag key=value, page after page."""
    found: list[str] = []
    token = None
    while True:
        request = ecs.DescribeInstancesRequest(
            region_id=REGION,
            max_results=100,
            next_token=token,
            tag=[ecs.DescribeInstancesRequestTag(key=key, value=value)],
        )
        body = tally.call("DescribeInstances", partial(client.describe_instances, request)).body
        found += [i.instance_id for i in body.instances.instance]
        token = body.next_token
        if not token:
            return found


def online(client: Client, tally: Tally, ids: list[str]) -> list[str]:
    """The instances among `ids` whose Cloud Assistant agent is online."""
    up: list[str] = []
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        token = None
        while True:
            request = ecs.DescribeCloudAssistantStatusRequest(
                region_id=REGION, instance_id=chunk, max_results=50, next_token=token
            )
            send = partial(client.describe_cloud_assistant_status, request)
            body = tally.call("DescribeCloudAssistantStatus", send).body
            statuses = body.instance_cloud_assistant_status_set.instance_cloud_assistant_status
            up += [s.instance_id for s in statuses if s.cloud_assistant_status == "true"]
            token = body.next_token
            if not token:
                break
    return up


def run_batch(client: Client, tally: Tally, ids: list[str], script: str) -> None:
    """RunCommand on `ids`, then DescribeInvocationResults every second until all done."""
    run = ecs.RunCommandRequest(
        region_id=REGION,
        type="RunShellScript",
        command_content=script,
        instance_id=ids,
        timeout=120,
        client_token=str(uuid.uuid4()),
    )
    invoke_id = tally.call("RunCommand", partial(client.run_command, run)).body.invoke_id
    while True:
        time.sleep(POLL_SECONDS)  # the script's poll interval, what a user writes
        request = ecs.DescribeInvocationResultsRequest(
            region_id=REGION, invoke_id=invoke_id, page_size=50
        )
        send = partial(client.describe_invocation_results, request)
        body = tally.call("DescribeInvocationResults", send).body
        results: list[Any] = body.invocation.invocation_results.invocation_result
        status = {r.instance_id: r.invocation_status for r in results}
        if len(status) == len(ids) and not STILL_RUNNING & set(status.values()):
            with tally.lock:
                tally.statuses.update(status)
            return


def rollout(endpoint: str, *, workers: int, script: str = "echo ok") -> Tally:
    """The whole script: targets, then every batch (`workers` at a time; 1 = plain)."""
    client = connect(endpoint)
    tally = Tally()
    ids = online(client, tally, tagged_instances(client, tally, "bench", "rollout"))
    batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
    if workers <= 1:
        for batch in batches:
            run_batch(client, tally, batch, script)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done in [pool.submit(run_batch, client, tally, b, script) for b in batches]:
                done.result()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--endpoint", required=True, help="the simulator's URL")
    parser.add_argument("--workers", type=int, default=1, help="threads (1: plain)")
    args = parser.parse_args()
    started = time.perf_counter()
    tally = rollout(args.endpoint, workers=args.workers)
    print(  # noqa: T201
        f"{len(tally.statuses)} instances, {Counter(tally.statuses.values())}, "
        f"{sum(tally.calls.values())} calls {dict(tally.calls)}, "
        f"{tally.throttles} throttled, {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
