"""Alembic environment: run with a connection handed in by responder.store.migrate."""

from alembic import context

from responder.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Several instances may start at once: one migrates, the others wait.
        context.execute("SELECT pg_advisory_xact_lock(727274)")
    context.run_migrations()
