"""What people type, parsed into commands: phrasings, typos, canonical arguments and
messages that must not be taken for a command."""

from __future__ import annotations

import ast
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from responder.dialogs import commands, intents
from responder.dialogs.intents import Command, Parser, normalise, parse

WARDS = ("Northgate", "Eastwood", "Southmere", "Riverside")  # examples/wards.geojson
PARSER = Parser(WARDS, "RSP")


def table(name: str, argument: str, *phrases: str) -> list:
    return [pytest.param(p, name, argument, id=f"{name}:{p}") for p in phrases]


CASES = [
    # -- officers' commands (as before) ----------------------------------------------------
    *table(
        "my_tasks",
        "",
        "my tasks",
        "My Tasks!",
        "  my   tasks  ",
        "my task",
        "tasks",
        "jobs",
        "list",
        "show my tasks",
        "please show me my tasks",
        "my taks",  # typo, still not my_cases
        "my tsaks",
    ),
    *table("on_duty", "", "on duty", "On-duty", "onduty", "back on duty", "clock on", "on dutty"),
    *table("off_duty", "", "off duty", "off-duty", "Off Duty.", "clock off", "finish", "offf duty"),
    *table(
        "help", "", "", "   ", "?", "!!", "help", "Help?", "hi", "Hello", "hello!", "hey", "hiya"
    ),
    *table("help", "", "what can you do?", "what can you do", "commands", "halp me"),
    *table(
        "link_team", "sc-north", "link team sc-north", "Link Team SC-North", "link tem sc-north"
    ),
    *table("link_team", "", "link team"),
    # -- councillors' cases ------------------------------------------------------------------
    *table(
        "my_cases",
        "",
        "status of my cases",
        "Status of my cases?",
        "my cases",
        "My Cases",
        "status of my case",
        "what's happening with my cases",
        "What\u2019s happening with my cases?",
        "whats happening with my cases",
        "my reports",
        "cases",
        "please can you show me my cases",
        "can you show me my cases please",
        "show me my cases",
        "staus of my cases",  # typos
        "status of my casse",
        "my casse",
        "my cses",
        "whats hapening with my cases",
        "my reprots",
    ),
    # -- ward summaries: a ward of the council, in its own spelling ----------------------------
    *table(
        "ward_summary",
        "Northgate",
        "what's open in Northgate",
        "whats open in northgate?",
        "What\u2019s open in NORTHGATE!",
        "what is open in northgate",
        "open in northgate",
        "Northgate summary",
        "summary northgate",
        "summary for Northgate",
        "summary of northgate ward",
        "northgate",
        "Northgate?",
        "can you show me what's open in northgate",
        "what's happening in northgate",
        "cases in northgate",
        "whats opne in northgte",  # typos
        "summery northgate",
        "Northgate summery",
        "sumary for northgate",
        "whats open in norhtgate",
        "northgte",
    ),
    *table("ward_summary", "Eastwood", "what's open in Eastwood", "eastwood summary", "eastwod"),
    *table("ward_summary", "Riverside", "summary for the riverside ward", "riverside ward"),
    # A clear ward question about a ward the council does not have: the words, so the bot
    # can say it does not know that ward; and with no ward named, "" so it can ask.
    *table(
        "ward_summary",
        "hill parc",
        "what's open in Hill Parc",
        "whats open in hill parc?",
        "summary for Hill Parc",
        "Hill Parc summary",
    ),
    *table("ward_summary", "", "what's open", "what's open?", "summary", "summery"),
    # -- one case: the canonical reference -----------------------------------------------------
    *table(
        "case",
        "RSP-1042",
        "case 1042",
        "case RSP-1042",
        "case rsp1042",
        "case rsp 1042",
        "Case #1042",
        "RSP-1042",
        "rsp-1042",
        "RSP1042",
        "#1042",
        "1042",
        "show case 1042",
        "status of case 1042",
        "status of rsp-1042",
        "history of rsp-1042",
        "History of RSP-1042?",
        "RSP-1042 status",
        "rsp-01042",
        "please show case 1042",
        "csae 1042",  # typos
        "staus of case 1042",
        "histroy of rsp-1042",
        "show cace 1042",
    ),
    # Not one of ours (at or below the offset): what was typed, for the bot to say so.
    *table("case", "12", "case 12"),
    *table("case", "RSP-12", "case rsp-12"),
    # -- following ----------------------------------------------------------------------------
    *table(
        "follow",
        "RSP-1042",
        "follow 1042",
        "follow RSP-1042",
        "Follow rsp1042",
        "follow case 1042",
        "start following RSP-1042",
        "folow 1042",  # typos
        "follw rsp-1042",
        "follow cas 1042",
    ),
    *table("follow", "", "follow"),
    *table(
        "unfollow",
        "RSP-1042",
        "unfollow 1042",
        "unfollow RSP-1042",
        "unfollow case 1042",
        "stop following 1042",
        "Stop following RSP-1042.",
        "unfolow 1042",  # typos
        "stop folowing 1042",
        "stop following cse 1042",
    ),
    # -- raising ------------------------------------------------------------------------------
    *table(
        "raise",
        "",
        "raise a task",
        "Raise a task",
        "raise task",
        "raise",
        "report something",
        "new task",
        "report an issue",
        "Report an issue!",
        "I want to raise a task",
        "can you raise a task please",
        "rasie a task",  # typos
        "raise a tsak",
        "raise an isue",
        "new tsak",
        "report somthing",
        "rasie",
    ),
    # -- cancelling ---------------------------------------------------------------------------
    *table(
        "cancel",
        "",
        "cancel",
        "Cancel!",
        "stop",
        "STOP",
        "quit",
        "never mind",
        "Never mind.",
        "nevermind",
        "cancle",
        "nver mind",
    ),
]


@pytest.mark.parametrize(("text", "name", "argument"), CASES)
def test_phrasings(text: str, name: str, argument: str) -> None:
    assert PARSER.parse(text) == Command(name, argument)


@pytest.mark.parametrize(
    "text",
    [
        "the bins are overflowing",
        "There's a lot of fly-tipping behind the shops on the high street",
        "Hillpark",  # ward-like, but close to no ward: not a ward summary
        "hill parc",
        "Northfield",
        "what time is it",
        "open the gate",
        "northgate road is blocked",
        "12",  # a number that cannot be a reference
        "clock of",  # as close to "clock off" as to "clock on": no guess
        "of duty",
        "my dog",
        "case closed yesterday, thanks",
        "please",
        "x" * 500,
    ],
)
def test_not_a_command(text: str) -> None:
    assert PARSER.parse(text).name == "unknown"


def test_unknown_carries_the_words() -> None:
    assert PARSER.parse("The bins are overflowing!") == Command(
        "unknown", "the bins are overflowing"
    )


def test_none_is_help() -> None:
    assert PARSER.parse(None) == Command("help")


def test_officer_and_councillor_words_do_not_cross() -> None:
    assert PARSER.parse("my tasks").name == "my_tasks"
    assert PARSER.parse("my cases").name == "my_cases"
    assert PARSER.parse("my open tasks").name == "my_tasks"
    assert PARSER.parse("my open cases").name == "my_cases"
    assert PARSER.parse("report").name == "raise"
    assert PARSER.parse("reports").name == "my_cases"


def test_every_listed_phrase_parses_to_its_own_command() -> None:
    for name, phrases in intents._PHRASES.items():
        for phrase in phrases:
            assert PARSER.parse(phrase) == Command(name), phrase


def test_normalise() -> None:
    assert normalise("  What\u2019s   OPEN in  Northgate?! ") == "whats open in northgate"
    assert normalise("off-duty - RSP-1042 -x y-") == "off-duty rsp-1042 x y"


def test_ward_names_with_spaces_hyphens_and_apostrophes() -> None:
    parser = Parser(["Hill Park", "St. Mary's", "Hamble-le-Rice"], "RSP")
    assert parser.parse("what's open in st marys") == Command("ward_summary", "St. Mary's")
    assert parser.parse("St. Mary's summary") == Command("ward_summary", "St. Mary's")
    assert parser.parse("hamble le rice summary") == Command("ward_summary", "Hamble-le-Rice")
    assert parser.parse("Hamble-le-Rice") == Command("ward_summary", "Hamble-le-Rice")
    assert parser.parse("what's open in Hill Parc") == Command("ward_summary", "Hill Park")
    assert parser.parse("hill park") == Command("ward_summary", "Hill Park")


def test_two_wards_equally_close_is_no_guess() -> None:
    parser = Parser(["Northgate", "Southgate"], "RSP")
    assert parser.parse("whats open in Nouthgate") == Command("ward_summary", "nouthgate")
    assert parser.parse("nouthgate").name == "unknown"


def test_another_prefix() -> None:
    parser = Parser(WARDS, "FEN2")
    assert parser.parse("case FEN2-1042") == Command("case", "FEN2-1042")
    assert parser.parse("follow fen21042") == Command("follow", "FEN2-1042")
    assert parser.parse("1042") == Command("case", "FEN2-1042")
    assert parser.parse("rsp-1042").name == "unknown"  # another council's prefix


def test_module_parse_and_the_old_import() -> None:
    assert parse("what's open in northgate", WARDS) == Command("ward_summary", "Northgate")
    assert parse("case 1042", prefix="FEN2") == Command("case", "FEN2-1042")
    # responder.dialogs.commands.parse(text) still works, with no ward names known.
    assert commands.parse("my tasks") == Command("my_tasks")
    assert commands.parse("link team sc-north") == Command("link_team", "sc-north")
    assert commands.parse("case 1042") == Command("case", "RSP-1042")
    assert commands.parse("what's open in Northgate") == Command("ward_summary", "northgate")
    assert commands.parse("northgate").name == "unknown"
    assert commands.Command is Command


def test_command_is_frozen() -> None:
    command = Command("case", "RSP-1042")
    with pytest.raises(FrozenInstanceError):
        command.name = "help"  # type: ignore[misc]
    assert Command("help").argument == ""


def test_pure_module() -> None:
    tree = ast.parse(Path(intents.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "re", "collections", "dataclasses", "functools"} | {
        "rapidfuzz",
        "responder",
    }
