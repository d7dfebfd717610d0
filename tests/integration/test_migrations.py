"""The migrations build, from an empty database, exactly the schema ``store/tables.py``
declares, on SQLite and on PostgreSQL; running them again changes nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from batchyard.store import tables
from batchyard.store.db import Store
from batchyard.store.migrate import alembic_config


def schema(store: Store) -> dict:
    """Tables, their columns, indexes and unique constraints, as the database reports them."""
    with store.engine.connect() as conn:
        db = inspect(conn)
        return {
            name: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in db.get_columns(name)],
                sorted((i["name"], tuple(i["column_names"])) for i in db.get_indexes(name)),
                sorted(str(u["column_names"]) for u in db.get_unique_constraints(name)),
            )
            for name in db.get_table_names()
        }


def differences(store: Store) -> list:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, tables.metadata)


def test_migrating_an_empty_database(database_url, tmp_path):
    url = database_url() or f"sqlite:///{tmp_path / 'empty.db'}"
    store = Store(url)
    try:
        assert schema(store) == {}
        store.migrate()
        assert differences(store) == []
        with store.engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
        assert revision == ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert set(schema(store)) == set(tables.metadata.tables) | {"alembic_version"}

        before = schema(store)
        store.migrate()  # a second start-up: nothing to do
        assert schema(store) == before
        assert differences(store) == []
    finally:
        store.close()
