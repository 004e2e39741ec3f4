"""Adaptive Cards: what each viewer sees and may do, escaping, and 1.5 schema validity.

Every card built here is validated against schemas/adaptive-card-1.5.json. The council
is the P1/P2/P3 one from domain_helpers, so nothing may assume urgent/high/normal/low.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from domain_helpers import other_council, utc
from hypothesis import given
from hypothesis import strategies as st
from support import assert_valid_card, write_council

from responder.cards import (
    DEFAULT_OUTCOMES,
    TaskListRow,
    TaskView,
    map_url,
    notice_card,
    task_card,
    task_list_card,
    text,
    url_safe_https,
)
from responder.cards.common import priority_label
from responder.cards.task_card import outcome_choices
from responder.config import load_council
from responder.domain.lifecycle import Action, Status, allowed_actions, relations
from responder.domain.records import ReporterContact, TaskRecord
from responder.domain.vocabulary import NOTE_MAX, REASON_MAX

COUNCIL = other_council()
NOW = utc(2026, 3, 2, 12)  # Monday
WARN = "\u26a0\ufe0f"  # ⚠️
DUE = "Wed 4 Mar, 09:00"  # record()'s due time, in words
NASTY = "**bold** [click](https://evil.example) {{DATE(2020-01-01T00:00:00Z)}} <b>"


def record(**changes: Any) -> TaskRecord:
    """A task built by hand: TaskRecord carries no reporter contact details at all."""
    task = TaskRecord(
        id=1042,
        reference="FEN2-1042",
        type="litter",
        description="Bags of rubbish by the bus stop",
        lat=50.5,
        lon=1.5,
        address="1 Marsh Lane",
        ward="Marsh",
        team="clean-a",
        assignee="ann",
        status=Status.ASSIGNED,
        priority="P3",
        due_at=utc(2026, 3, 4, 9),
        created_at=utc(2026, 3, 2, 9, 30),
        updated_at=utc(2026, 3, 2, 9, 30),
        closed_at=None,
        source="web-form",
        raised_by="resident",
        raised_by_person=None,
        photos=(),
        priority_reasons=(),
        routing_reasons=(),
        report_count=1,
        outcome=None,
        version=3,
    )
    return dataclasses.replace(task, **changes)


def view_for(task: TaskRecord, person_id: str | None, **extra: Any) -> TaskView:
    """The view ``person_id`` gets, with actions from the real transition table."""
    team = COUNCIL.team(task.team)
    assert team is not None
    rel = relations(person_id, COUNCIL, task.team, task.assignee)
    actions = allowed_actions(task.status, rel, queue_task=team.routing == "queue")
    assignee = COUNCIL.person(task.assignee) if task.assignee else None
    task_type = COUNCIL.task_type(task.type)
    assert task_type is not None
    fields: dict[str, Any] = {
        "task": task,
        "type_name": task_type.name,
        "team_name": team.name,
        "assignee_name": assignee.name if assignee else None,
        "priority_rank": COUNCIL.priority_rank(task.priority),
        "priority_count": len(COUNCIL.priority_names),
        "due_local": task.due_at.astimezone(COUNCIL.tz),
        "now": NOW,
        "actions": tuple(actions),
    }
    return TaskView(**(fields | extra))


def build(view: TaskView) -> dict:
    card = task_card(view)
    assert_valid_card(card)
    return card


# -- looking into a card -----------------------------------------------------------------


def nodes(node: Any) -> Iterator[dict]:
    """Every JSON object in the card, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from nodes(value)


def texts(card: dict) -> list[str]:
    """Everything shown as (Markdown) text: TextBlocks and facts."""
    shown = [n["text"] for n in nodes(card) if n.get("type") == "TextBlock"]
    for fact_set in (n for n in nodes(card) if n.get("type") == "FactSet"):
        shown += [part for fact in fact_set["facts"] for part in (fact["title"], fact["value"])]
    return shown


def all_text(card: dict) -> str:
    return "\n".join(texts(card))


def facts(card: dict) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for n in nodes(card)
        if n.get("type") == "FactSet"
        for fact in n["facts"]
    }


def executes(card: dict) -> list[dict]:
    """The Action.Execute buttons a user can press (not the card's refresh)."""
    return [n for n in nodes(card.get("actions", [])) if n.get("type") == "Action.Execute"]


def verbs(card: dict) -> set[str]:
    return {action["verb"] for action in executes(card)}


def top_titles(card: dict) -> list[str]:
    return [action["title"] for action in card.get("actions", [])]


def visible_titles(card: dict) -> list[str]:
    """The buttons shown side by side (not under the overflow "…")."""
    return [a["title"] for a in card.get("actions", []) if a.get("mode") != "secondary"]


def overflow_titles(card: dict) -> list[str]:
    return [a["title"] for a in card.get("actions", []) if a.get("mode") == "secondary"]


def form(card: dict, verb: str) -> dict:
    """The ShowCard sub-card whose submit button has ``verb``."""
    for action in card.get("actions", []):
        if action["type"] == "Action.ShowCard" and verbs(action["card"]) == {verb}:
            return action["card"]
    raise AssertionError(f"no form for {verb!r}")


def inputs(sub_card: dict) -> dict[str, dict]:
    return {n["id"]: n for n in nodes(sub_card) if n.get("type", "").startswith("Input.")}


def unescaped(shown: str) -> str:
    """What Markdown would act on: each backslash escape becomes an inert NUL."""
    return re.sub(r"\\.", "\0", shown, flags=re.DOTALL)


def assert_literal(shown: str) -> None:
    """No Markdown emphasis, code, link, HTML or Teams template can act in ``shown``."""
    bare = unescaped(shown)
    assert not set(bare) & set("*_`[]<~\\"), shown
    assert not re.search(r"&#?\w+;", bare), shown
    assert "{{" not in shown, shown
    for row in bare.split("\n"):
        assert not re.match(r"[ \t]|[#>+\-=|]|\d+[.)]([ \t]|$)", row), shown


# -- who may do what ---------------------------------------------------------------------


def test_assigned_officer_can_accept_or_hand_back():
    card = build(view_for(record(status=Status.ASSIGNED), "ann"))
    assert verbs(card) == {"accept", "handback"}
    accept = card["actions"][0]
    assert accept == {
        "type": "Action.Execute",
        "title": "Accept",
        "style": "positive",
        "verb": "accept",
        "data": {"taskId": 1042, "version": 3},
    }
    assert top_titles(card) == ["Accept", "Hand back"]
    reason = inputs(form(card, "handback"))["reason"]
    # No isRequired: Teams' red "*" is 3.2:1 on its dark theme; the bot checks the reason.
    assert "isRequired" not in reason and reason["type"] == "Input.Text"


def test_accepted_task_can_be_started_updated_completed_or_handed_back():
    card = build(view_for(record(status=Status.ACCEPTED), "ann"))
    assert verbs(card) == {"start", "update", "complete", "handback"}
    assert top_titles(card) == ["Start", "Complete", "Add update", "Hand back"]
    assert card["actions"][0]["type"] == "Action.Execute"  # Start is a direct button


@pytest.mark.parametrize(
    ("status", "shown", "overflow"),
    [
        (Status.ASSIGNED, ["Accept", "Hand back"], []),
        (Status.ACCEPTED, ["Start", "Complete", "Add update"], ["Hand back"]),
        (Status.IN_PROGRESS, ["Complete", "Add update", "Hand back"], []),
    ],
)
def test_at_most_three_buttons_show_the_next_step_first_and_the_rest_overflow(
    status, shown, overflow
):
    card = build(view_for(record(status=status), "ann"))
    assert visible_titles(card) == shown
    assert overflow_titles(card) == overflow
    first = card["actions"][0]
    assert first["style"] == "positive"
    assert [a for a in card["actions"] if a.get("style") == "positive"] == [first]


def test_managers_change_priority_cancel_and_assign_an_unassigned_task():
    task = record(status=Status.UNASSIGNED, assignee=None)
    choices = (("P1", "P1 priority"), ("P2", "P2 priority"))
    view = view_for(task, "mo", reassign_choices=(("ben", "Ben"),), priority_choices=choices)
    card = build(view)
    assert {"reassign", "priority", "cancel"} <= verbs(card)
    assert "Assign" in top_titles(card) and "Reassign" not in top_titles(card)
    priority = inputs(form(card, "priority"))["priority"]
    assert [c["value"] for c in priority["choices"]] == ["P1", "P2"]
    reason = inputs(form(card, "cancel"))["cancelReason"]
    assert reason["maxLength"] == 500 and "isRequired" not in reason


def test_past_six_actions_the_managers_share_one_manage_button():
    """Teams drops actions past six. The council file never gives one person all eight
    (a manager is not a team's officer), but a card must never lose one silently."""
    every = (
        Action.START,
        Action.COMPLETE,
        Action.UPDATE,
        Action.HANDBACK,
        Action.REASSIGN,
        Action.PRIORITY,
        Action.CANCEL,
    )
    view = view_for(
        record(status=Status.ACCEPTED),
        "ann",
        actions=every,
        reassign_choices=(("ben", "Ben"),),
        priority_choices=(("P1", "P1 priority"),),
    )
    card = build(view)
    titles = [a["title"] for a in card["actions"]]
    assert len(titles) <= 6 and titles[-1] == "Manage", titles
    assert verbs(card) >= {"start", "complete", "update", "handback"} | {
        "reassign",
        "priority",
        "cancel",
    }


def test_task_in_progress_can_be_updated_completed_or_handed_back():
    card = build(view_for(record(status=Status.IN_PROGRESS), "ann"))
    assert verbs(card) == {"update", "complete", "handback"}
    assert "Start" not in top_titles(card)


def test_update_form_asks_for_a_note():
    card = build(view_for(record(status=Status.IN_PROGRESS), "ann"))
    note = inputs(form(card, "update"))["updateNote"]
    assert note["type"] == "Input.Text"
    assert note["isMultiline"] is True and "isRequired" not in note
    assert note["maxLength"] == 1000 and note["placeholder"]


def test_complete_form_offers_outcomes_and_an_optional_note():
    card = build(view_for(record(status=Status.IN_PROGRESS), "ann"))
    fields = inputs(form(card, "complete"))
    outcome = fields["outcome"]
    assert outcome["type"] == "Input.ChoiceSet" and outcome["style"] == "compact"
    assert outcome["value"] == "resolved"  # always one chosen
    assert [(c["value"], c["title"]) for c in outcome["choices"]] == list(DEFAULT_OUTCOMES)
    assert "isRequired" not in fields["completeNote"]


def test_complete_form_uses_the_given_outcomes():
    outcomes = (("done", "Done"), ("gone", "Already gone"))
    card = build(view_for(record(status=Status.ACCEPTED), "ann", outcomes=outcomes))
    outcome = inputs(form(card, "complete"))["outcome"]
    assert outcome["value"] == "done"
    assert [c["title"] for c in outcome["choices"]] == ["Done", "Already gone"]


def test_complete_form_offers_exactly_the_services_outcomes_from_the_council_file(tmp_path):
    def own(data: dict) -> None:
        data["services"][0]["outcomes"] = [
            {"code": "cleared", "name": "Cleared"},
            {"code": "passed-to-highways", "name": "Passed to Highways"},
        ]

    council = load_council(write_council(tmp_path, own))
    offered = outcome_choices(council.outcomes_for("fly-tipping"))
    card = build(view_for(record(status=Status.ACCEPTED), "ann", outcomes=offered))
    outcome = inputs(form(card, "complete"))["outcome"]
    assert outcome["value"] == "cleared"
    assert [(c["value"], c["title"]) for c in outcome["choices"]] == [
        ("cleared", "Cleared"),
        ("passed-to-highways", "Passed to Highways"),
    ]
    # A service naming none offers the four defaults.
    defaults = outcome_choices(council.outcomes_for("grass-cutting"))
    card = build(view_for(record(status=Status.ACCEPTED), "ann", outcomes=defaults))
    outcome = inputs(form(card, "complete"))["outcome"]
    assert [(c["value"], c["title"]) for c in outcome["choices"]] == list(DEFAULT_OUTCOMES)


def test_reason_box_holds_no_more_than_the_action_accepts():
    card = build(view_for(record(status=Status.ACCEPTED), "ann"))
    assert inputs(form(card, "handback"))["reason"]["maxLength"] == REASON_MAX
    assert inputs(form(card, "update"))["updateNote"]["maxLength"] == NOTE_MAX


def test_manager_can_reassign_to_the_officers_offered():
    choices = (("ben", "Ben"), ("cat", "Cat"))
    card = build(view_for(record(status=Status.ACCEPTED), "mo", reassign_choices=choices))
    # A manager may add updates, hand back, reassign and cancel (views.py takes hand back
    # away from managers who do not hold the task); no priority choices given, no button.
    assert verbs(card) == {"update", "handback", "reassign", "cancel"}
    officer = inputs(form(card, "reassign"))["officer"]
    assert officer["type"] == "Input.ChoiceSet"
    assert [(c["value"], c["title"]) for c in officer["choices"]] == list(choices)


def test_reassign_is_left_out_when_nobody_can_take_it():
    card = build(view_for(record(status=Status.ACCEPTED), "mo"))
    assert "reassign" not in verbs(card)


def test_someone_else_gets_a_read_only_card_with_directions():
    card = build(view_for(record(status=Status.ACCEPTED), "fay"))  # another team's officer
    assert executes(card) == []
    assert card.get("actions", []) == []
    assert directions(card) == {
        "type": "Action.OpenUrl",
        "title": "Directions",
        "url": "https://www.google.com/maps/dir/?api=1&destination=50.500000,1.500000",
    }


def directions(card: dict) -> dict:
    [action_set] = [n for n in card["body"] if n["type"] == "ActionSet"]
    [button] = action_set["actions"]
    return button


def test_where_comes_straight_under_the_title_with_directions():
    card = build(view_for(record(), "ann"))
    kinds = [(n["type"], n.get("text")) for n in card["body"][:4]]
    assert kinds == [
        ("TextBlock", "Litter"),
        ("TextBlock", "FEN2-1042"),
        ("TextBlock", "\U0001f4cd 1 Marsh Lane"),
        ("ActionSet", None),
    ]
    assert directions(card)["url"].startswith("https://www.google.com/maps/dir/?api=1&")


def test_without_an_address_the_nearest_known_one_stands_in_else_coordinates():
    near = build(view_for(record(address=None), "ann", near=("3 Marsh Lane", 43.2)))
    assert "\U0001f4cd Near 3 Marsh Lane (about 40 m)" in texts(near)
    bare = build(view_for(record(address=None), "ann"))
    assert "\U0001f4cd 50.50000, 1.50000" in texts(bare)


def test_completed_task_shows_its_outcome_and_offers_nothing():
    task = record(status=Status.COMPLETED, outcome="private-land", closed_at=utc(2026, 3, 5, 10))
    card = build(view_for(task, "ann"))  # past due, but closed: not overdue
    assert executes(card) == []
    shown = texts(card)
    assert "\u2705 Done (On private land)" in shown
    assert "Overdue" not in all_text(card)
    assert not [n for n in nodes(card) if "color" in n]
    assert "Closed Thu 5 Mar, 10:00" in shown


def test_cancelled_task_says_so():
    card = build(view_for(record(status=Status.CANCELLED), "mo"))
    assert "Cancelled" in texts(card)
    assert executes(card) == []


def test_queue_task_waits_for_someone_in_the_team():
    task = record(type="pothole", team="roads", assignee=None, status=Status.UNASSIGNED)
    card = build(view_for(task, "fay"))
    assert verbs(card) == {"accept"}
    assert "Waiting for someone in Roads to accept" in texts(card)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (Status.ASSIGNED, "Assigned to Ann"),
        (Status.ACCEPTED, "Accepted by Ann"),
        (Status.IN_PROGRESS, "In progress – Ann"),
    ],
)
def test_status_in_words(status, words):
    assert words in texts(build(view_for(record(status=status), "fay")))


# -- what the card shows -----------------------------------------------------------------


def test_heading_names_type_and_reference():
    card = build(view_for(record(), "ann"))
    heading, reference = card["body"][:2]
    assert heading["text"] == "Litter"
    assert heading["size"] == "Large" and heading["weight"] == "Bolder"
    # The reference on its own line: never wrapped at its hyphen.
    assert reference["text"] == "FEN2-1042" and reference["wrap"] is False


@pytest.mark.parametrize(
    ("priority", "label"),
    [("P1", "\U0001f534 P1 priority"), ("P2", "\U0001f7e0 P2 priority"), ("P3", "P3 priority")],
)
def test_priority_is_in_words_and_signs_never_colour_alone(priority, label):
    card = build(view_for(record(priority=priority), "ann"))
    marker = next(n for n in nodes(card) if n.get("text") == label)
    assert marker["weight"] == "Bolder"
    # Teams' Warning yellow (1.5:1 on white), Good green (2:1) and its dark theme's
    # Attention red (3.2:1) fail WCAG 4.5:1: every text is the default colour.
    assert not [n for n in nodes(card) if "color" in n]


def test_priority_labels_for_councils_of_other_sizes():
    assert priority_label("urgent", 0, 1) == "\U0001f534 Urgent priority"
    assert priority_label("routine", 1, 2) == "Routine priority"  # the second of two
    assert priority_label("high", 1, 5) == "\U0001f7e0 High priority"
    assert priority_label("Top priority", 4, 5) == "Top priority"


def test_priority_sign_follows_rank_not_name():
    view = view_for(record(), "ann")  # P3: the least urgent
    card = build(dataclasses.replace(view, task=record(priority="urgent")))
    assert "Urgent priority" in texts(card)


def test_overdue_open_task_is_marked():
    overdue = build(view_for(record(), "ann", now=utc(2026, 3, 4, 9, 1)))
    marker = next(n for n in nodes(overdue) if n.get("text", "").startswith("\u26a0\ufe0f"))
    assert marker["text"] == "\u26a0\ufe0f Overdue: 1 min late · was due Wed 4 Mar, 09:00"
    assert marker["weight"] == "Bolder" and "color" not in marker
    on_time = build(view_for(record(), "ann", now=utc(2026, 3, 4, 8, 59)))
    assert "Overdue" not in all_text(on_time)


def due_line(card: dict) -> str:
    return next(t for t in texts(card) if t.startswith("Due ") or "was due" in t)


def test_due_time_is_local_and_in_words():
    summer = record(due_at=utc(2026, 6, 1, 8))  # 09:00 British Summer Time
    assert due_line(build(view_for(summer, "ann"))).startswith("Due Mon 1 Jun, 09:00 · ")
    next_year = record(due_at=utc(2027, 1, 4, 9))
    assert due_line(build(view_for(next_year, "ann"))).startswith("Due Mon 4 Jan 2027, 09:00")


@pytest.mark.parametrize(
    ("now", "words"),
    [
        (utc(2026, 3, 4, 6), "Due Wed 4 Mar, 09:00 · due in 3 h"),
        (utc(2026, 3, 4, 8, 35, 30), "Due Wed 4 Mar, 09:00 · due in 24 min"),
        (utc(2026, 3, 2, 12), "Due Wed 4 Mar, 09:00 · due in 1 day 21 h"),
        (utc(2026, 3, 4, 11, 10), f"{WARN} Overdue: 2 h 10 min late · was due {DUE}"),
        (utc(2026, 3, 4, 9, 0, 30), f"{WARN} Overdue: under a minute late · was due {DUE}"),
    ],
)
def test_due_time_says_how_long_is_left_or_how_late_it_is(now, words):
    # due 2026-03-04 09:00 (GMT); the card is rendered afresh when opened, so it is current.
    assert due_line(build(view_for(record(), "ann", now=now))) == words


def test_facts_say_where_ward_team_and_when_reported():
    card = build(view_for(record(), "ann"))
    assert facts(card) == {
        "Ward": "Marsh",
        "Team": "Cleansing A",
        "Reported": "Mon 2 Mar, 09:30",
    }


def test_repeat_reports_are_counted_and_coordinates_stand_in_for_an_address():
    card = build(view_for(record(report_count=4, address=None), "ann"))
    assert facts(card)["Reports"] == "4"
    assert "\U0001f4cd 50.50000, 1.50000" in texts(card)


def test_description_and_recent_history_are_shown():
    recent = (("Mon 2 Mar 11:00", "Accepted by Ann"),) + tuple(
        (f"Mon 2 Mar 10:0{i}", f"Older {i}") for i in range(4)
    )
    card = build(view_for(record(), "ann", recent=recent))
    shown = texts(card)
    assert "Bags of rubbish by the bus stop" in shown
    assert "Mon 2 Mar 11:00 · Accepted by Ann" in shown
    assert sum("Older" in s for s in shown) == 2  # three lines at most


def test_notice_comes_first():
    card = build(view_for(record(), "ann", notice="Taken by Ben"))
    assert texts(card)[0] == "Taken by Ben"


def test_photos_are_https_only_and_at_most_four():
    photos = (
        "http://forms.example/a.jpg",
        "javascript:alert(1)",
        'https://forms.example/x.jpg" onerror="x',
        "https://forms.example/1.jpg",
        "https://forms.example/2.jpg",
        "https://forms.example/3.jpg",
        "https://forms.example/4.jpg",
        "https://forms.example/5.jpg",
    )
    card = build(view_for(record(photos=photos), "ann"))
    urls = [n["url"] for n in nodes(card["body"]) if n.get("type") == "Image"]
    assert urls == [f"https://forms.example/{i}.jpg" for i in range(1, 5)]
    assert "javascript" not in json.dumps(card) and "http://" not in json.dumps(card)


def test_a_single_photo_is_shown_full_width_and_described():
    card = build(view_for(record(photos=("https://forms.example/1.jpg",)), "ann"))
    image = next(n for n in nodes(card["body"]) if n.get("type") == "Image")
    assert image["size"] == "Stretch"
    assert image["altText"] == "Photo 1 of 1 from the report: Litter at 1 Marsh Lane"
    assert image["selectAction"]["type"] == "Action.OpenUrl"
    assert image["selectAction"]["url"] == "https://forms.example/1.jpg"


def test_the_first_of_several_photos_is_full_width_the_rest_thumbnails():
    photos = tuple(f"https://forms.example/{i}.jpg" for i in (1, 2, 3))
    card = build(view_for(record(photos=photos), "ann"))
    [container] = [
        n
        for n in card["body"]
        if n["type"] == "Container" and "items" in n and n["items"][0].get("type") == "Image"
    ]
    first, thumbnails, caption = container["items"]
    assert first["size"] == "Stretch" and first["url"] == photos[0]
    assert first["altText"] == "Photo 1 of 3 from the report: Litter at 1 Marsh Lane"
    assert thumbnails["type"] == "ImageSet"
    assert [i["altText"] for i in thumbnails["images"]] == [
        f"Photo {i} of 3 from the report: Litter at 1 Marsh Lane" for i in (2, 3)
    ]
    assert [i["selectAction"]["url"] for i in thumbnails["images"]] == list(photos[1:])
    assert caption["text"] == "Photo 1 of 3. Tap a photo to open it"


def test_bad_photos_only_leave_no_images():
    card = build(view_for(record(photos=("http://a.example/1.jpg", "ftp://b/2")), "ann"))
    assert not [n for n in nodes(card) if n.get("type") in ("Image", "ImageSet")]


def test_map_link():
    assert map_url(51.9051, 0.8873) == (
        "https://www.openstreetmap.org/?mlat=51.905100&mlon=0.887300#map=18/51.905100/0.887300"
    )


def test_no_reporter_contact_data():
    reporter = ReporterContact(
        name="Rita Reporter", email="rita@example.com", phone="07700900123", updates=("sms",)
    )
    fields = {f.name for f in dataclasses.fields(TaskRecord)}
    assert not fields & {"reporter", "name", "email", "phone", "contact"}
    task = record(status=Status.ACCEPTED, photos=("https://forms.example/1.jpg",))
    for viewer in ("ann", "mo", "fay"):
        dumped = json.dumps(build(view_for(task, viewer)))
        for detail in (reporter.name, reporter.email, reporter.phone):
            assert detail not in dumped


# -- refresh and action data -------------------------------------------------------------


def test_refresh_asks_the_bot_for_each_listed_users_view():
    card = build(view_for(record(), "ann", refresh_user_ids=("29:1ann", "29:1mo")))
    assert card["refresh"]["userIds"] == ["29:1ann", "29:1mo"]
    action = card["refresh"]["action"]
    assert action["type"] == "Action.Execute" and action["verb"] == "refresh"
    assert action["data"] == {"taskId": 1042, "version": 3}


def test_refresh_without_user_ids_leaves_them_out():
    card = build(view_for(record(), "ann"))
    assert "userIds" not in card["refresh"]
    assert card["refresh"]["action"]["verb"] == "refresh"


def test_every_action_carries_task_id_and_version():
    task = record(status=Status.ACCEPTED, version=7)
    view = view_for(task, "ann", reassign_choices=(("ben", "Ben"),))
    manager_too = dataclasses.replace(view, actions=(*view.actions, *view_for(task, "mo").actions))
    card = build(manager_too)
    assert verbs(card) == {"start", "update", "complete", "handback", "reassign", "cancel"}
    for action in executes(card):
        assert action["data"] == {"taskId": 1042, "version": 7}
    assert len(card["actions"]) <= 6  # what Teams shows


# -- escaping ----------------------------------------------------------------------------


def test_nothing_from_outside_acts_as_markdown_link_or_template():
    task = record(
        description=NASTY + "\n# Heading\n> quote\n- item\n1. item\n    code",
        address=NASTY,
        ward="_Marsh_",
        status=Status.ACCEPTED,
    )
    view = view_for(
        task,
        "ann",
        type_name=NASTY,
        team_name=NASTY,
        assignee_name="[Ann](https://evil.example)",
        notice=NASTY,
        recent=((NASTY, NASTY),),
    )
    card = build(view)
    for shown in texts(card):
        assert_literal(shown)
    assert "**bold**" not in all_text(card)
    assert "](" not in unescaped(all_text(card))
    assert "{{DATE" not in json.dumps(card, ensure_ascii=False)


def test_escaped_text_keeps_the_words():
    shown = text(NASTY)
    assert unescaped(shown) != shown
    assert re.sub(r"\\(.)", r"\1", shown).replace("\u200b", "") == NASTY


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("# Heading", "\\# Heading"),
        ("> quote", "\\> quote"),
        ("- item", "\\- item"),
        ("+ item", "\\+ item"),
        ("1. first", "1\\. first"),
        ("2) second", "2\\) second"),
        ("3.\n50.5 litres", "3\\.\n50.5 litres"),
        ("    code", "code"),
        ("a\n===", "a\n\\==="),
        ("| a | b |", "\\| a | b |"),
        ("&amp; &#42;", "\\&amp; \\&#42;"),
        ("back\\slash", "back\\\\slash"),
        (
            "snake_case *star* `tick` ~~strike~~",
            "snake\\_case \\*star\\* \\`tick\\` \\~\\~strike\\~\\~",
        ),
        ("Fish & chips - 3.50 (cash)", "Fish & chips - 3.50 (cash)"),
        ("{{TIME(2020-01-01T00:00:00Z)}}", "{\u200b{TIME(2020-01-01T00:00:00Z)}}"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("bell\x07 null\x00 rtl\u202e tab\there", "bell null rtl tab here"),
    ],
)
def test_text_escaping(raw, shown):
    assert text(raw) == shown


def test_long_text_is_capped():
    card = build(view_for(record(description="x" * 5000), "ann"))
    description = next(s for s in texts(card) if s.startswith("xxx"))
    assert len(description) == 1500 and description.endswith("…")
    assert len(text("y" * 40, limit=10)) == 10


@given(st.text())
def test_any_text_renders_literally(raw):
    shown = text(raw)
    assert_literal(shown)
    assert len(re.sub(r"\\(.)", r"\1", shown, flags=re.DOTALL)) <= 1500 + shown.count("\u200b")


PLAIN_AND_OTHERS = "Ab9 ,.:;!?'\"()/@%£·…’-" + "\t\n\r\x1c\x85\u2028\u200b#>+=|*_&{1.)"


@given(
    st.one_of(
        st.text(),
        # Mostly the plain characters, so the short path is taken often, with a few others.
        st.text(st.sampled_from(PLAIN_AND_OTHERS), max_size=40),
    ),
    st.sampled_from([1500, 10, 1]),
)
def test_the_short_path_for_plain_text_changes_nothing(raw, limit):
    from responder.cards.escape import _escape

    assert text(raw, limit) == _escape(raw, limit)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://forms.example/uploads/abc.jpg", True),
        ("HTTPS://forms.example/a.jpg?size=large&v=2", True),
        ("http://forms.example/a.jpg", False),
        ("javascript:alert(1)", False),
        ("data:image/png;base64,AAAA", False),
        ("https://forms.example/a b.jpg", False),
        ('https://forms.example/a.jpg"onerror', False),
        ("https://forms.example/a.jpg'", False),
        ("https://council.gov.uk@evil.example/a.jpg", False),
        ("https:///nohost", False),
        ("https://forms.example/\u202egpj.exe", False),
        ("", False),
    ],
)
def test_url_safe_https(url, ok):
    assert url_safe_https(url) == (url if ok else None)


# -- lists and notices -------------------------------------------------------------------


def row(i: int, overdue: bool = False) -> TaskListRow:
    return TaskListRow(
        reference=f"FEN2-{i}",
        type_name="Litter",
        priority="P2",
        status_text="assigned",
        due_text="due Wed 4 Mar 09:00",
        overdue=overdue,
        address=f"{i} Marsh Lane",
        task_id=i,
    )


def list_rows(card: dict) -> list[dict]:
    return [n for n in card["body"] if n["type"] == "Container"]


def test_empty_list_says_so():
    card = task_list_card("Your open tasks", [], "You have no open tasks.")
    assert_valid_card(card)
    assert texts(card) == ["Your open tasks", "You have no open tasks."]
    assert list_rows(card) == []


def test_list_rows_open_their_task():
    card = task_list_card("Your open tasks", [row(1, overdue=True), row(2), row(3)], "None")
    assert_valid_card(card)
    rows = list_rows(card)
    assert len(rows) == 3
    for i, container in enumerate(rows, 1):
        select = container["selectAction"]
        assert select["type"] == "Action.Execute" and select["verb"] == "open"
        assert select["data"] == {"taskId": i}
    assert "\u26a0\ufe0f Overdue" in texts(rows[0]) and "\u26a0\ufe0f Overdue" not in texts(rows[1])
    assert "P2 priority · assigned · due Wed 4 Mar 09:00" in texts(rows[1])
    assert not [n for n in nodes(card) if "color" in n]
    assert "No open tasks" not in texts(card)


def test_long_list_shows_25_and_counts_the_rest():
    card = task_list_card("Open in Marsh", [row(i) for i in range(30)], "None")
    assert_valid_card(card)
    assert len(list_rows(card)) == 25
    assert texts(card)[-1] == "…and 5 more."


def test_list_text_is_escaped():
    nasty = dataclasses.replace(row(1), type_name=NASTY, address=NASTY, status_text=NASTY)
    card = task_list_card(NASTY, [nasty], NASTY)
    assert_valid_card(card)
    for shown in texts(card):
        assert_literal(shown)


def test_notice_card():
    plain = notice_card("Task FEN2-1042 was completed.")
    assert_valid_card(plain)
    assert texts(plain) == ["Task FEN2-1042 was completed."]
    titled = notice_card(NASTY, title="Sorry")
    assert_valid_card(titled)
    assert texts(titled)[0] == "Sorry"
    assert_literal(texts(titled)[1])


def test_cards_are_plain_json():
    card = build(view_for(record(status=Status.IN_PROGRESS), "ann"))
    assert json.loads(json.dumps(card)) == card
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert "$schema" not in card and "schema" not in card
