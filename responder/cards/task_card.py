"""The task card: one task, as one viewer may see and act on it.

Mobile first: what and how urgent at the top, then where and who, the report itself,
and buttons for what this viewer may do now. Actions that need input (a note, an
outcome, an officer) open a small sub-card (Action.ShowCard) holding the inputs and
their own submit button, so the card itself stays short.

Every button is an Action.Execute whose data carries the task id and the version the
card was built from, so the bot can tell a stale card from a current one. The card
carries no reporter contact details: TaskRecord has none, and nothing here adds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from microsoft_teams.cards import (
    ActionSet,
    AdaptiveCard,
    CardElement,
    Choice,
    ChoiceSetInput,
    Container,
    ExecuteAction,
    Fact,
    FactSet,
    Image,
    ImageSet,
    OpenUrlAction,
    RefreshDefinition,
    ShowCardAction,
    TextBlock,
    TextInput,
)

from responder.cards.common import (
    DONE_SIGN,
    WARNING_SIGN,
    due_relative,
    execute,
    line,
    priority_label,
    to_dict,
    when,
)
from responder.cards.escape import clean, text, url_safe_https
from responder.domain import vocabulary
from responder.domain.lifecycle import OPEN_STATUSES, Action, Status
from responder.domain.records import TaskRecord
from responder.domain.vocabulary import NOTE_MAX, OVERDUE_WORDS, REASON_MAX, OutcomeWords

MAX_PHOTOS = 4
MAX_RECENT = 3


def outcome_choices(outcomes: Iterable[OutcomeWords]) -> tuple[tuple[str, str], ...]:
    """(value, title) for the completion form: the outcome codes with staff names."""
    return tuple((o.code, o.words("officer")) for o in outcomes)


# The choices of a service whose council file names no outcomes of its own.
DEFAULT_OUTCOMES: tuple[tuple[str, str], ...] = outcome_choices(vocabulary.DEFAULT_OUTCOMES)

# The buttons a card here has.
CardAction = ExecuteAction | ShowCardAction | OpenUrlAction

# Input ids, unique across the card's forms: the bot reads these names from the action's
# data (bot/card_inputs.py reads updateNote and completeNote as the note, and still
# accepts ``note`` from cards sent before).
UPDATE_NOTE, COMPLETE_NOTE = "updateNote", "completeNote"
OUTCOME, REASON, OFFICER = "outcome", "reason", "officer"
PRIORITY, CANCEL_REASON = "priority", "cancelReason"


@dataclass(frozen=True)
class TaskView:
    """Everything the card shows, prepared by the caller (pure inputs)."""

    task: TaskRecord
    type_name: str  # "Fly-tipping"
    team_name: str
    assignee_name: str | None
    priority_rank: int  # 0 = most urgent in this council
    priority_count: int  # how many priorities the council has
    due_local: datetime  # task.due_at in the council's timezone
    now: datetime  # aware; for "overdue" marking
    actions: tuple[Action, ...]  # what this viewer may do now (lifecycle.allowed_actions)
    # (person_id, name): on-duty officers of the team, for managers.
    reassign_choices: tuple[tuple[str, str], ...] = ()
    # (value, title): the council's other priorities, most urgent first, for managers.
    priority_choices: tuple[tuple[str, str], ...] = ()
    # (value, title): the task's service's outcomes (``outcome_choices``)
    outcomes: tuple[tuple[str, str], ...] = DEFAULT_OUTCOMES
    notice: str | None = None  # a line at the top, e.g. a refusal or "Taken by Carol Warden"
    refresh_user_ids: tuple[str, ...] = ()  # Teams user ids that get their own view
    recent: tuple[tuple[str, str], ...] = ()  # (when, what), newest first; 3 are shown
    # For a report without an address: the nearest address known from other reports and
    # how far it is, in metres (queries.tasks.nearest_address).
    near: tuple[str, float] | None = None

    @property
    def is_open(self) -> bool:
        return self.task.status in OPEN_STATUSES

    @property
    def overdue(self) -> bool:
        return self.is_open and self.now > self.task.due_at

    @property
    def data(self) -> dict[str, Any]:
        """What every action sends back: which task, as of which version."""
        return {"taskId": self.task.id, "version": self.task.version}


def task_card(view: TaskView) -> dict[str, Any]:
    """The Adaptive Card (1.5) for ``view``, as plain JSON-ready data."""
    card = AdaptiveCard(
        body=_body(view),
        actions=list(_actions(view)),
        refresh=_refresh(view),
    )
    return to_dict(card)


def directions_url(lat: float, lon: float) -> str:
    """Directions to the spot in the phone's maps app.

    Google Maps' cross-platform URL (``/maps/dir/?api=1``): Teams mobile opens an
    Action.OpenUrl https link in the system browser or, through Android App Links / iOS
    universal links, straight in the Google Maps app, which starts navigation there; without
    the app it opens directions in the browser. ``geo:`` and ``maps:`` URLs are not an option:
    Teams (desktop, web and iOS) does not open such schemes from Action.OpenUrl.
    """
    return f"https://www.google.com/maps/dir/?api=1&destination={lat:.6f},{lon:.6f}"


def place_words(address: str | None, lat: float, lon: float, near: tuple[str, float] | None) -> str:
    """The report's address; else 'Near 1 High Street (about 40 m)'; else coordinates."""
    if address and address.strip():
        return address
    if near is not None:
        name, metres = near
        return f"Near {name} (about {max(10, round(metres / 10) * 10)} m)"
    return f"{lat:.5f}, {lon:.5f}"


def map_url(lat: float, lon: float) -> str:
    """OpenStreetMap centred on the spot, with a marker."""
    la, lo = f"{lat:.6f}", f"{lon:.6f}"
    return f"https://www.openstreetmap.org/?mlat={la}&mlon={lo}#map=18/{la}/{lo}"


# -- body ------------------------------------------------------------------------------


def _body(view: TaskView) -> list[CardElement]:
    body: list[CardElement] = []
    if view.notice:
        body.append(Container(style="emphasis", items=[line(view.notice, weight="Bolder")]))
    body += [*_heading(view), *_where(view), *_urgency(view), _status(view), _facts(view)]
    if view.task.description.strip():
        body.append(line(view.task.description, separator=True))
    task = view.task
    where = place_words(task.address, task.lat, task.lon, view.near)
    photos = photos_element(task.photos, f"{view.type_name} at {where}")
    if photos is not None:
        body.append(photos)
    body += _recent(view.recent)
    return body


def _heading(view: TaskView) -> list[CardElement]:
    """The type, then the reference on a line of its own: a long type name wraps between
    words and never splits 'RSP-1042' at its hyphen."""
    return [
        line(view.type_name, size="Large", weight="Bolder", style="heading"),
        TextBlock(text=text(view.task.reference), wrap=False, weight="Bolder", spacing="None"),
    ]


def _urgency(view: TaskView) -> list[CardElement]:
    """'🔴 Urgent priority', then 'Due Mon 23 Nov, 09:00 · due in 3 h' or, bolder,
    '⚠️ Overdue: 2 h 10 min late · was due Mon 23 Nov, 09:00' (default colour: see common)."""
    label = priority_label(view.task.priority, view.priority_rank, view.priority_count)
    blocks: list[CardElement] = [line(label, weight="Bolder")]
    task = view.task
    if view.is_open:
        due = when(view.due_local, view.now)
        late = due_relative(view.due_local, view.now)
        if view.overdue:
            words = f"{WARNING_SIGN} {OVERDUE_WORDS}: {late} · was due {due}"
            blocks.append(line(words, weight="Bolder", spacing="None"))
        else:
            blocks.append(line(f"Due {due} · {late}", spacing="None"))
    elif task.closed_at is not None:
        closed = when(task.closed_at.astimezone(view.due_local.tzinfo), view.now)
        blocks.append(line(f"Closed {closed}", is_subtle=True, spacing="None"))
    return blocks


def status_text(view: TaskView) -> str:
    """Where the task stands, in words."""
    return vocabulary.status_line(
        view.task.status.value, view.assignee_name, view.team_name, _outcome_title(view)
    )


def _outcome_title(view: TaskView) -> str | None:
    value = view.task.outcome
    return dict(view.outcomes).get(value, value) if value else None


def _status(view: TaskView) -> TextBlock:
    words = status_text(view)
    if view.task.status is Status.COMPLETED:
        words = f"{DONE_SIGN} {words}"
    return line(words, weight="Bolder")


def _where(view: TaskView) -> list[CardElement]:
    """Where, straight under the title, with a button for directions in the maps app."""
    task = view.task
    words = place_words(task.address, task.lat, task.lon, view.near)
    directions = OpenUrlAction(title="Directions", url=directions_url(task.lat, task.lon))
    return [
        line(f"\U0001f4cd {words}", weight="Bolder", spacing="Small"),  # 📍
        ActionSet(actions=[directions], spacing="Small"),
    ]


def _facts(view: TaskView) -> FactSet:
    task = view.task
    reported = task.created_at.astimezone(view.due_local.tzinfo)
    facts = [
        ("Ward", task.ward),
        ("Team", view.team_name),
        ("Reported", when(reported, view.now)),
    ]
    if task.report_count > 1:
        facts.append(("Reports", str(task.report_count)))
    return FactSet(facts=[Fact(title=text(t), value=text(v)) for t, v in facts])


def photos_element(urls: Sequence[str], subject: str = "") -> CardElement | None:
    """Up to four https photos: the first full width, the others as thumbnails below it;
    each opens full size when tapped. ``subject`` ('Fly-tipping at 42 High Street') goes
    into every photo's alt text, for a screen reader and when the image does not load."""
    safe = [u for u in (url_safe_https(url) for url in urls) if u][:MAX_PHOTOS]
    if not safe:
        return None
    n = len(safe)
    about = f": {subject}" if subject else ""

    def alt(i: int) -> str:
        return clean(f"Photo {i} of {n} from the report{about}", limit=200)  # not Markdown

    first = Image(
        url=safe[0],
        alt_text=alt(1),
        size="Stretch",
        select_action=OpenUrlAction(url=safe[0], title="Open photo 1"),
    )
    caption = "Tap the photo to open it" if n == 1 else f"Photo 1 of {n}. Tap a photo to open it"
    items: list[CardElement] = [first]
    if n > 1:
        items.append(
            ImageSet(
                image_size="Medium",
                images=[
                    Image(
                        url=u,
                        alt_text=alt(i),
                        select_action=OpenUrlAction(url=u, title=f"Open photo {i}"),
                    )
                    for i, u in enumerate(safe[1:], 2)
                ],
            )
        )
    items.append(line(caption, size="Small", is_subtle=True, spacing="None"))
    return Container(items=items, separator=True)


def _recent(recent: Sequence[tuple[str, str]]) -> list[CardElement]:
    if not recent:
        return []
    heading = line("Recent", weight="Bolder", size="Small", separator=True)
    shown = recent[:MAX_RECENT]
    return [heading, *(line(f"{at} · {what}", size="Small", is_subtle=True) for at, what in shown)]


# -- actions ---------------------------------------------------------------------------


# The next step of the work, when this viewer may take it: shown first, styled positive.
NEXT_STEPS = (Action.ACCEPT, Action.START, Action.COMPLETE)
# Buttons a phone shows whole side by side (390 px); the rest go under "…" (mode
# secondary, Adaptive Cards 1.5), where Teams lists them by name.
MAX_VISIBLE = 3
# Teams renders at most six actions on a card and drops the rest silently; past that,
# the managers' actions share one "Manage" button.
MAX_ACTIONS = 6
MANAGING = (Action.REASSIGN, Action.PRIORITY, Action.CANCEL)


def _actions(view: TaskView) -> list[CardAction]:
    """Buttons for what this viewer may do now: the next step first (positive), at most
    three side by side, the rest in the overflow menu. Verbs and data never change."""
    builders = {
        Action.ACCEPT: _accept,
        Action.START: _start,
        Action.COMPLETE: _complete,
        Action.UPDATE: _update,
        Action.HANDBACK: _handback,
        Action.REASSIGN: _reassign,
        Action.PRIORITY: _priority,
        Action.CANCEL: _cancel,
    }  # ASSIGN is routing's (a manager assigns with Reassign/Assign)
    actions: list[CardAction] = []
    managing: list[CardAction] = []
    for action, build in builders.items():
        if action not in view.actions:
            continue
        button = build(view)
        if button is None:
            continue
        if not actions and action in NEXT_STEPS:
            button.style = "positive"
        (managing if action in MANAGING else actions).append(button)
    if len(actions) + len(managing) > MAX_ACTIONS:
        manage = AdaptiveCard(body=[], actions=list[Any](managing))
        managing = [ShowCardAction(title="Manage", card=manage)]
    actions += managing
    for button in actions[MAX_VISIBLE:]:
        button.mode = "secondary"
    return actions


def _accept(view: TaskView) -> CardAction:
    return execute("accept", view.data, "Accept")


def _start(view: TaskView) -> CardAction:
    return execute("start", view.data, "Start")


def _update(view: TaskView) -> CardAction:
    note = _text_input(UPDATE_NOTE, "Update", "What have you done or found?")
    return _form("Add update", [note], execute("update", view.data, "Send update"))


def _complete(view: TaskView) -> CardAction:
    inputs: list[CardElement] = []
    if view.outcomes:
        inputs.append(
            ChoiceSetInput(
                id=OUTCOME,
                label="Outcome",
                style="compact",
                value=view.outcomes[0][0],
                choices=[Choice(title=title, value=value) for value, title in view.outcomes],
            )
        )
    inputs.append(_text_input(COMPLETE_NOTE, "Note (optional)", "Anything the team should know?"))
    submit = execute("complete", view.data, "Complete task")
    submit.style = "positive"
    return _form("Complete", inputs, submit)


def _handback(view: TaskView) -> CardAction:
    reason = _text_input(
        REASON,
        "Why are you handing it back?",
        "Reason",
        max_length=REASON_MAX,
    )
    return _form("Hand back", [reason], execute("handback", view.data, "Hand back"))


def _reassign(view: TaskView) -> CardAction | None:
    if not view.reassign_choices:
        return None  # nobody on duty to give it to
    officer = ChoiceSetInput(
        id=OFFICER,
        label="Reassign to",
        style="compact",
        placeholder="Choose an officer",
        choices=[Choice(title=name, value=pid) for pid, name in view.reassign_choices],
    )
    # An unassigned task (a queue nobody took, or nobody on duty) is assigned, not re-.
    verb = "Assign" if view.task.assignee is None else "Reassign"
    officer.label = f"{verb} to"
    return _form(verb, [officer], execute("reassign", view.data, verb))


def _priority(view: TaskView) -> CardAction | None:
    if not view.priority_choices:
        return None
    choice = ChoiceSetInput(
        id=PRIORITY,
        label="New priority (the due time follows)",
        style="compact",
        value=view.priority_choices[0][0],
        choices=[Choice(title=title, value=value) for value, title in view.priority_choices],
    )
    return _form("Change priority", [choice], execute("priority", view.data, "Change priority"))


def _cancel(view: TaskView) -> CardAction:
    reason = _text_input(
        CANCEL_REASON, "Why cancel it?", "e.g. a duplicate of RSP-1042", max_length=REASON_MAX
    )
    submit = execute("cancel", view.data, "Cancel task")
    submit.style = "destructive"
    return _form("Cancel task", [reason], submit)


def _text_input(
    input_id: str,
    label: str,
    placeholder: str,
    max_length: int = NOTE_MAX,
) -> TextInput:
    """A multi-line text box.

    No input on these cards sets isRequired: Teams draws its label's "*" in Attention red,
    3.2:1 on the dark theme (below WCAG's 4.5:1). The bot checks every form instead and
    answers on the card, naming what is missing (commands/act.py, dialogs/raising.py).
    """
    return TextInput(
        id=input_id,
        label=label,
        placeholder=placeholder,
        is_multiline=True,
        max_length=max_length,
    )


def _form(title: str, inputs: list[CardElement], submit: CardAction) -> ShowCardAction:
    """A button opening a sub-card with ``inputs`` and ``submit``.

    With the default associatedInputs ("auto"), the submit sends the inputs of its own
    sub-card (and of the card above it, which has none), not those of sibling forms.
    """
    return ShowCardAction(title=title, card=AdaptiveCard(body=inputs, actions=[submit]))


def _refresh(view: TaskView) -> RefreshDefinition:
    """Teams asks the bot for a fresh copy of the card for each listed user on view."""
    action = execute("refresh", view.data, "Refresh")
    user_ids = list(view.refresh_user_ids) or None
    return RefreshDefinition(action=action, user_ids=user_ids)
