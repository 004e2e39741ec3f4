"""Officers' photos: who may add them to which task, and the limits (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from responder.config.model import Council
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.records import TaskRecord

PENDING_FOR = timedelta(days=1)
# A task's photo list stays a size a card and the intake API can carry.
MAX_TASK_PHOTOS = 50
# Tasks offered when the officer has several (the most urgent first).
MAX_CHOICES = 10
# Statuses of a task "in hand": the officer has accepted it, or is working on it.
IN_HAND: frozenset[Status] = frozenset({Status.ACCEPTED, Status.IN_PROGRESS})

NOT_YOURS = "Only the assigned officer or a manager of the team can add photos to this task."
CLOSED = {
    Status.COMPLETED: "This task is already completed, so photos can't be added to it.",
    Status.CANCELLED: "This task has been cancelled, so photos can't be added to it.",
}
GONE = "Those photos are no longer waiting to be added: send them again."
FULL = f"This task already has {MAX_TASK_PHOTOS} photos, the most it can hold."


@dataclass(frozen=True)
class NewPhoto:
    content_type: str  # what the bytes are (sniffed), e.g. image/jpeg
    data: bytes


def photo_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/api/photos/{token}"


def refusal(council: Council, task: TaskRecord, person_id: str) -> str | None:
    """Why ``person_id`` may not add photos to ``task`` now, or None when they may."""
    if task.status not in OPEN_STATUSES:
        return CLOSED.get(task.status, NOT_YOURS)
    team = council.team(task.team)
    if task.assignee == person_id or (team is not None and person_id in team.managers):
        return None
    return NOT_YOURS


def pick(person_tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
    """The tasks a photo could be for: those in hand if any, else every open one."""
    in_hand = [t for t in person_tasks if t.status in IN_HAND]
    return (in_hand or list(person_tasks))[:MAX_CHOICES]


def photo_words(count: int) -> str:
    return "the photo" if count == 1 else f"{count} photos"
