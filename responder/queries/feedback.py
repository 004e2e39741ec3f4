"""What the residents' feedback page may tell the resident about their report. (Staff
pages read a task's ratings with the task: ``queries/task_page``, ``queries/performance``.)

The resident's page is reached by a signed link, not a sign-in, so what it reads is only
what the completion message already said: the task type, the address, when it was
completed and the outcome (resident words are chosen by the page), the task reference.
Never who did the work or any note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from responder.store.schema import feedback, reports, tasks


@dataclass(frozen=True)
class ReportForFeedback:
    report_id: int
    task_id: int
    type: str  # the task type code
    address: str | None
    completed_at: datetime
    outcome: str | None
    rated: int | None  # the rating already given for this report, if any


_REPORT = (
    select(
        reports.c.id.label("report_id"),
        tasks.c.id.label("task_id"),
        tasks.c.type,
        tasks.c.address,
        tasks.c.status,
        tasks.c.closed_at,
        tasks.c.outcome,
        feedback.c.rating,
    )
    .join(tasks, tasks.c.id == reports.c.task_id)
    .outerjoin(feedback, feedback.c.report_id == reports.c.id)
)


def report_for_feedback(conn: Connection, report_id: int) -> ReportForFeedback | None:
    """The report's task as the feedback page shows it; None when there is no such report
    or its task is not completed (both are 'no such link' to the resident)."""
    row = conn.execute(_REPORT.where(reports.c.id == report_id)).first()
    if row is None or row.status != "completed" or row.closed_at is None:
        return None
    return ReportForFeedback(
        row.report_id,
        row.task_id,
        row.type,
        row.address,
        row.closed_at,
        row.outcome,
        row.rating,
    )


__all__ = ["ReportForFeedback", "report_for_feedback"]
