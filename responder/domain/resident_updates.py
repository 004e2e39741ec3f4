"""A Notify message being sent to a reporter, and the words about it (pure)."""

from __future__ import annotations

from dataclasses import dataclass

ERASED = "contact details erased"
CHANNEL_WORDS = {"email": "Email", "sms": "Text message"}
ADDRESS_WORDS = {"email": "email address", "sms": "mobile number"}


@dataclass(frozen=True)
class Job:
    reference: str  # the outbox idempotency key, sent to Notify as 'reference'
    task_id: int
    report_id: int
    event: str
    channel: str  # email | sms
    template_id: str

    @property
    def what(self) -> str:
        return f"{CHANNEL_WORDS.get(self.channel, self.channel)} '{self.event}'"
