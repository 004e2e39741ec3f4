"""Adaptive Card builders: pure functions from domain values (and the viewer) to card JSON.

No I/O here. Every card is a plain dict that is a valid Adaptive Card 1.5, built with the
microsoft-teams-cards models; everything from outside is escaped (``escape.text``).
"""

from responder.cards.escape import text, url_safe_https
from responder.cards.lists import TaskListRow, notice_card, task_list_card
from responder.cards.task_card import DEFAULT_OUTCOMES, TaskView, map_url, task_card

__all__ = [
    "DEFAULT_OUTCOMES",
    "TaskListRow",
    "TaskView",
    "map_url",
    "notice_card",
    "task_card",
    "task_list_card",
    "text",
    "url_safe_https",
]
