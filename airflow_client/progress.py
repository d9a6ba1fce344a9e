"""How far a run got, counted by task id, from Airflow's task instances or from pushed task events.

Both sources give the same kind of answer (:class:`~airflow_client.models.Progress`):
a mapped task counts once, done when every map index of it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from airflow_client.models import JobEvent, Progress
from airflow_client.transports.base import TaskInstance

__all__ = ["FINISHED_TASK_STATES", "from_events", "from_task_instances"]

#: Airflow task-instance states after which a task will not run again by itself.
FINISHED_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
_EPOCH = datetime.min


def from_task_instances(task_instances: Sequence[TaskInstance]) -> Progress:
    by_task: dict[str, list[TaskInstance]] = defaultdict(list)
    for ti in task_instances:
        by_task[ti.task_id].append(ti)
    done = sum(all(ti.state in FINISHED_TASK_STATES for ti in tis) for tis in by_task.values())
    running = next((ti.task_id for ti in task_instances if ti.state == "running"), "")
    failed = [ti for ti in task_instances if ti.state == "failed"]
    # The one that failed last is the one that ended the run (the others may be downstream of it).
    failed.sort(key=lambda ti: ti.end_date.replace(tzinfo=None) if ti.end_date else _EPOCH)
    last = failed[-1] if failed else None
    return Progress(
        total=len(by_task),
        done=done,
        running_task_id=running,
        failed_task_id=last.task_id if last else "",
        failed_try_number=last.try_number if last else None,
        failed_map_index=last.map_index if last else -1,
    )


def from_events(events: Iterable[JobEvent], task_count: int | None) -> Progress:
    """From a run's task events (oldest first). ``task_count``: the DAG's, as the sender said."""
    latest: dict[tuple[str, int], JobEvent] = {}
    for event in events:
        if event.task_id:
            latest[(event.task_id, event.map_index)] = event
    by_task: dict[str, list[JobEvent]] = defaultdict(list)
    for (task_id, _map_index), event in latest.items():
        by_task[task_id].append(event)
    done = sum(all(event.finished_task for event in found) for found in by_task.values())
    running = [event for event in latest.values() if event.kind in {"task_start", "task_retry"}]
    failed = [event for event in latest.values() if event.kind == "task_failure"]
    last = max(failed, key=lambda event: event.occurred_at) if failed else None
    return Progress(
        # Tasks that never ran (skipped) send nothing: the DAG's own count is the total.
        total=max(task_count or 0, len(by_task)),
        done=done,
        running_task_id=max(running, key=lambda event: event.occurred_at).task_id if running else "",
        failed_task_id=last.task_id if last else "",
        failed_try_number=last.try_number if last else None,
        failed_map_index=last.map_index if last else -1,
        failed_error=last.error if last else "",
    )
