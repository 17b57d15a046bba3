"""Sends whose answer the journal lost, looked up among the run's own invocations.

A process killed between a RunCommand and the flush of its answer leaves that token
`sending`. A resume could simply send it again with the same ClientToken (the API then
answers with the original invocation), but `orchestrator stop` must send nothing, and how
long the API remembers a ClientToken is not documented (unconfirmed; we assume hours at
least, as for Alibaba Cloud's other idempotent calls, and the lookup does not depend on
it). So the run's invocations (they all carry its run tag) are listed once, and each lost
send is matched by its purpose (verify commands carry their own name) and its exact set
of instances: within one run and purpose no two RunCommands name the same set. A match
is the answer; a send with no match is sent again by a resume (it may not be listed yet:
the API is eventually consistent) and left alone by a stop.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from orchestrator.ecs import PATIENT_READS
from orchestrator.rollout import RUN_TAG_KEY, VERIFY_COMMAND_NAME, BatchState, RecordedBatch

if TYPE_CHECKING:
    from orchestrator.ecs import EcsClient
    from orchestrator.journal._reader import JournalRecord
    from orchestrator.rollout import RunHistory


async def find_lost_sends(client: EcsClient, record: JournalRecord) -> RunHistory:
    """The run's history, with every lost send found among its invocations accepted."""
    history = record.history()
    lost = [row for row in record.batches if row.state is BatchState.SENDING]
    if not lost:
        return history
    listed: dict[tuple[str, frozenset[str]], str] = {}
    tags = {RUN_TAG_KEY: record.header.run_id}
    # Read-only and safe to repeat: a burst of throttling must not end a resume unstarted.
    async for invocation in client.describe_invocations(tags=tags, retry=PATIENT_READS):
        purpose = "verify" if invocation.command_name == VERIFY_COMMAND_NAME else "run"
        instances = frozenset(item.instance_id for item in invocation.instances)
        listed[purpose, instances] = invocation.invoke_id
    found = {
        row.client_token: RecordedBatch(row.client_token, BatchState.ACCEPTED, invoke_id)
        for row in lost
        if (invoke_id := listed.get((row.purpose, frozenset(row.instance_ids))))
    }
    return replace(history, batches={**history.batches, **found})
