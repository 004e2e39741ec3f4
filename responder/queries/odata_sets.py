"""The OData feed's entity sets as SQL (issue 19): Tasks, Events, Wards, Teams, Officers.

Each set is a whitelist of properties, each an EDM type over a SQL expression; ``$filter``
is parsed by ``odata-query`` (a maintained OData parser, not one written here) and each
name it meets is looked up in that whitelist only, never as an arbitrary column, and
``visible(scope)`` is always ANDed for tasks and events. No set holds contact details:
officers are id, name, role and team; events are the task's history (public events only,
people as their role, for keys without ``internals``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from odata_query import ast as o_ast
from odata_query import exceptions as o_ex
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.sqlalchemy.core import AstToSqlAlchemyCoreVisitor
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import BindParameter

from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES
from responder.domain.reference import REFERENCE_OFFSET
from responder.domain.visibility import MAX_TASK_ID, Scope
from responder.domain.vocabulary import PUBLIC_EVENT_WORDS
from responder.queries.scope import visible
from responder.store.schema import UTCDateTime, feedback, people, task_events, tasks, teams, wards

PAGE_SIZE = 1000
MAX_FILTER = 2000  # characters of $filter
FUNCTIONS = frozenset(
    {
        "contains",
        "startswith",
        "endswith",
        "tolower",
        "toupper",
        "trim",
        "length",
        "year",
        "month",
        "day",
        "hour",
        "minute",
    }
)


class QueryProblem(ValueError):
    """A query option that cannot be answered; ``option`` names it ($filter, $orderby...)."""

    def __init__(self, option: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.option = option
        self.status = status


@dataclass(frozen=True)
class Prop:
    name: str
    edm: str  # Edm.String, Edm.Int64, Edm.DateTimeOffset, Edm.Boolean, Edm.Double...
    expr: ColumnElement
    nullable: bool = True


@dataclass(frozen=True)
class EntitySet:
    name: str  # Tasks
    type_name: str  # Task
    key: str  # the key property
    props: tuple[Prop, ...]
    where: tuple[ColumnElement[bool], ...]  # visibility, always ANDed
    # Per row, after reading (e.g. people's names for a key without internals).
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    by_name: dict[str, Prop] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({p.name: p for p in self.props})


def _names(mapping: dict[str, str], column: ColumnElement) -> ColumnElement:
    if not mapping:
        return column
    return case(mapping, value=column, else_=column)


def entity_sets(
    domain: Domain, scope: Scope, now: dt.datetime, internals: bool
) -> dict[str, EntitySet]:
    council = domain.council
    type_names = {t.code: t.name for t in council.file.task_types}
    team_names = {t.code: t.name for t in council.file.teams}
    person_names = {p.id: p.name for p in council.file.people}
    open_values = sorted(s.value for s in OPEN_STATUSES)
    accepted = (
        select(func.min(task_events.c.at))
        .where(task_events.c.task_id == tasks.c.id, task_events.c.action == "accept")
        .correlate(tasks)
        .scalar_subquery()
    )
    rating = (
        select(func.avg(feedback.c.rating))
        .where(feedback.c.task_id == tasks.c.id)
        .correlate(tasks)
        .scalar_subquery()
    )
    completed = case((tasks.c.status == "completed", tasks.c.closed_at), else_=null())
    in_time = case(
        (and_(tasks.c.status == "completed", tasks.c.closed_at <= tasks.c.due_at), true()),
        (tasks.c.status == "completed", false()),
        else_=null(),
    )
    overdue = and_(tasks.c.status.in_(open_values), tasks.c.due_at < now)
    prefix = f"{domain.prefix}-"
    task_props = (
        Prop("Id", "Edm.Int64", tasks.c.id, nullable=False),
        Prop(
            "Reference",
            "Edm.String",
            literal(prefix, String) + cast(tasks.c.id + REFERENCE_OFFSET, String),
            nullable=False,
        ),
        Prop("Type", "Edm.String", tasks.c.type, nullable=False),
        Prop("TypeName", "Edm.String", _names(type_names, tasks.c.type), nullable=False),
        Prop("Priority", "Edm.String", tasks.c.priority, nullable=False),
        Prop("Status", "Edm.String", tasks.c.status, nullable=False),
        Prop("Outcome", "Edm.String", tasks.c.outcome),
        Prop("Ward", "Edm.String", tasks.c.ward, nullable=False),
        Prop("Team", "Edm.String", tasks.c.team, nullable=False),
        Prop("TeamName", "Edm.String", _names(team_names, tasks.c.team), nullable=False),
        Prop("OfficerId", "Edm.String", tasks.c.assignee),
        Prop("OfficerName", "Edm.String", _names(person_names, tasks.c.assignee)),
        Prop("Source", "Edm.String", tasks.c.source, nullable=False),
        Prop("RaisedBy", "Edm.String", tasks.c.raised_by, nullable=False),
        Prop("ReportedAt", "Edm.DateTimeOffset", tasks.c.created_at, nullable=False),
        Prop("AcceptedAt", "Edm.DateTimeOffset", accepted),
        Prop("CompletedAt", "Edm.DateTimeOffset", completed),
        Prop("ClosedAt", "Edm.DateTimeOffset", tasks.c.closed_at),
        Prop("DueAt", "Edm.DateTimeOffset", tasks.c.due_at, nullable=False),
        Prop("UpdatedAt", "Edm.DateTimeOffset", tasks.c.updated_at, nullable=False),
        Prop("InTime", "Edm.Boolean", in_time),
        Prop("Overdue", "Edm.Boolean", overdue, nullable=False),
        Prop("Rating", "Edm.Double", rating),
        Prop("ReportCount", "Edm.Int32", tasks.c.report_count, nullable=False),
    )
    seen = visible(scope)
    event_where: list[ColumnElement[bool]] = [
        task_events.c.task_id.in_(select(tasks.c.id).where(seen))
    ]
    if not internals:
        event_where.append(task_events.c.action.in_(sorted(PUBLIC_EVENT_WORDS)))
    roles: dict[str, str] = {p.id: p.role for p in council.file.people}

    def event_shape(row: dict[str, Any]) -> dict[str, Any]:
        if "Actor" in row:
            row["Actor"] = _who(row["Actor"], person_names, roles, internals)
        return row

    event_props = (
        Prop("Id", "Edm.Int64", task_events.c.id, nullable=False),
        Prop("TaskId", "Edm.Int64", task_events.c.task_id, nullable=False),
        Prop("At", "Edm.DateTimeOffset", task_events.c.at, nullable=False),
        Prop("Action", "Edm.String", task_events.c.action, nullable=False),
        Prop("FromStatus", "Edm.String", task_events.c.from_status),
        Prop("ToStatus", "Edm.String", task_events.c.to_status),
        Prop("Actor", "Edm.String", task_events.c.actor, nullable=False),
        Prop("Note", "Edm.String", task_events.c.note),
    )
    ward_props = (
        Prop("Name", "Edm.String", wards.c.name, nullable=False),
        Prop("Active", "Edm.Boolean", wards.c.active, nullable=False),
    )
    team_props = (
        Prop("Code", "Edm.String", teams.c.code, nullable=False),
        Prop("Name", "Edm.String", teams.c.name, nullable=False),
        Prop("Active", "Edm.Boolean", teams.c.active, nullable=False),
    )
    first_team: dict[str, str] = {}
    for team in council.file.teams:
        for person in (*team.managers, *team.officers):
            first_team.setdefault(person, team.code)
    officer_props = (
        Prop("Id", "Edm.String", people.c.id, nullable=False),
        Prop("Name", "Edm.String", people.c.name, nullable=False),
        Prop("Role", "Edm.String", people.c.role, nullable=False),
        Prop("Team", "Edm.String", _names(first_team, people.c.id)),
        Prop("Active", "Edm.Boolean", people.c.active, nullable=False),
    )
    return {
        s.name: s
        for s in (
            EntitySet("Tasks", "Task", "Id", task_props, (seen,)),
            EntitySet("Events", "Event", "Id", event_props, tuple(event_where), event_shape),
            EntitySet("Wards", "Ward", "Name", ward_props, ()),
            EntitySet("Teams", "Team", "Code", team_props, ()),
            EntitySet(
                "Officers",
                "Officer",
                "Id",
                officer_props,
                (people.c.role.in_(["officer", "manager"]),),
            ),
        )
    }


def _who(actor: str, names: dict[str, str], roles: dict[str, str], internals: bool) -> str:
    if actor == "system":
        return "Responder"
    if actor.startswith("intake:"):
        return "intake"
    if actor in names:
        return names[actor] if internals else roles[actor]
    return actor if internals else "council"


class _Filter(AstToSqlAlchemyCoreVisitor):
    """odata-query's Core visitor on a whitelist: names are the set's properties only;
    literals are bound with the compared property's type (times as UTC; a date is midnight
    in the council's time zone); LIKE patterns escape % and _."""

    def __init__(self, entity_set: EntitySet, tz: dt.tzinfo) -> None:
        self.entity_set = entity_set
        self.tz = tz

    def visit_Identifier(self, node: o_ast.Identifier) -> ColumnElement:  # type: ignore[override]
        if node.namespace:
            raise QueryProblem("$filter", f"{'.'.join(node.namespace)} is not supported here")
        prop = self.entity_set.by_name.get(node.name)
        if prop is None:
            raise QueryProblem(
                "$filter", f"{node.name!r} is not a property of {self.entity_set.name}"
            )
        return prop.expr

    def visit_Attribute(self, node: o_ast.Attribute) -> ColumnElement:  # type: ignore[override]
        raise QueryProblem("$filter", "navigation (a/b) is not supported: this feed has none")

    def visit_CollectionLambda(self, node: Any) -> ColumnElement:
        raise QueryProblem("$filter", "any() and all() are not supported: this feed has none")

    def visit_Integer(self, node: o_ast.Integer) -> BindParameter:
        value = node.py_val
        if not -MAX_TASK_ID - 1 <= value <= MAX_TASK_ID:
            raise QueryProblem("$filter", f"{node.val} is out of range for Edm.Int64")
        return literal(value)

    def visit_Call(self, node: o_ast.Call) -> ColumnElement:
        name = node.func.name.lower()
        if name not in FUNCTIONS:
            raise QueryProblem(
                "$filter",
                f"{node.func.name}() is not supported (supported: {', '.join(sorted(FUNCTIONS))})",
            )
        return super().visit_Call(node)  # type: ignore[return-value]

    def _substr_function(self, field: Any, substr: Any, func_name: str) -> ColumnElement:
        identifier = self.visit(field)
        if not isinstance(substr, o_ast.String):
            raise QueryProblem("$filter", f"{func_name}() needs a string literal")
        return getattr(identifier, func_name)(substr.py_val, autoescape=True)

    def visit_Compare(self, node: o_ast.Compare) -> ColumnElement:  # type: ignore[override]
        left = self.visit(node.left)
        right = self.visit(node.right)
        left, right = self._typed(right, node.left, left), self._typed(left, node.right, right)
        op = self.visit(node.comparator)
        return op(left, right)

    def _typed(self, other: Any, node: Any, value: Any) -> Any:
        """``value`` (a literal node's binding) with ``other``'s column type."""
        if not isinstance(node, (o_ast.DateTime, o_ast.Date)):
            return value
        if not isinstance(other, ColumnElement) or not isinstance(other.type, UTCDateTime):
            if isinstance(node, o_ast.Date):
                return value
            raise QueryProblem("$filter", f"{node.val} is compared with something not a time")
        try:
            moment = node.py_val
        except (ValueError, OverflowError):
            raise QueryProblem("$filter", f"{node.val} is not a date or time") from None
        if isinstance(moment, dt.datetime):
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
        else:
            moment = dt.datetime.combine(moment, dt.time(0), tzinfo=self.tz)
        try:
            moment = moment.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise QueryProblem("$filter", f"{node.val} is out of range") from None
        return literal(moment, UTCDateTime())


_lexer = ODataLexer()
_parser = ODataParser()


def filter_clause(entity_set: EntitySet, text: str, tz: dt.tzinfo) -> ColumnElement[bool]:
    """``$filter`` as SQL over the set's whitelist; ``QueryProblem`` says what is wrong."""
    if len(text) > MAX_FILTER:
        raise QueryProblem("$filter", f"is longer than {MAX_FILTER} characters")
    try:
        tree = _parser.parse(_lexer.tokenize(text))
        clause = _Filter(entity_set, tz).visit(tree)
    except QueryProblem:
        raise
    except o_ex.ODataException as exc:
        raise QueryProblem("$filter", _message(exc)) from None
    except (RecursionError, NotImplementedError, TypeError, ValueError, AttributeError):
        raise QueryProblem("$filter", "cannot be read as an OData expression") from None
    if not isinstance(clause, ColumnElement) or not isinstance(clause.type, Boolean):
        if isinstance(clause, ColumnElement) and clause.type._type_affinity is Boolean:
            return clause
        raise QueryProblem("$filter", "must be a condition (true or false for each row)")
    return clause


def _message(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:300]


@dataclass(frozen=True)
class Order:
    prop: Prop
    descending: bool


def read_page(
    conn: Connection,
    entity_set: EntitySet,
    selected: Sequence[Prop],
    where: Sequence[ColumnElement[bool]],
    order: Sequence[Order],
    *,
    after: Any = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    count: bool = False,
) -> tuple[list[dict[str, Any]], int | None]:
    """Rows (dicts by property name, the key always included) and the count if asked.

    Without ``order`` the rows are in key order and ``after`` (the last key served) is a
    keyset; with ``order`` they are in that order, then the key, from ``offset``."""
    key = entity_set.by_name[entity_set.key]
    clauses = [*entity_set.where, *where]
    # On SQLite times are read as its UTC text (export.rows.LocalTimes writes them).
    raw = conn.dialect.name == "sqlite"
    columns = {
        p.name: (
            type_coerce(p.expr, String) if raw and p.edm == "Edm.DateTimeOffset" else p.expr
        ).label(p.name)
        for p in selected
    }
    columns.setdefault(key.name, key.expr.label(key.name))
    ordering = [
        *(o.prop.expr.desc() if o.descending else o.prop.expr.asc() for o in order),
        key.expr.asc(),
    ]
    # The page's keys first (only what the filter and order need), then the columns for
    # those keys: the correlated sub-selects (accepted time, rating) run for a page's rows,
    # never for every row the filter matches.
    keys = select(key.expr).correlate(None)  # its own FROM, not the outer query's
    if clauses:
        keys = keys.where(and_(*clauses))
    if after is not None and not order:
        keys = keys.where(key.expr > after)
    keys = keys.order_by(*ordering).offset(offset or None).limit(limit)
    statement = (
        select(*columns.values()).where(key.expr.in_(keys.scalar_subquery())).order_by(*ordering)
    )
    rows = [dict(r._mapping) for r in conn.execute(statement)]
    if entity_set.shape is not None:
        rows = [entity_set.shape(r) for r in rows]
    total = None
    if count:
        counted = select(func.count()).select_from(key.expr.table)
        if clauses:
            counted = counted.where(and_(*clauses))
        total = conn.execute(counted).scalar_one()
    return rows, total
