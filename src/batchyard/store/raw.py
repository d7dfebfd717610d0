"""Driver-level SQL for the hot paths (status changes, the scheduler's pass).

Statements are written once with ``:name`` parameters, translated once to the driver's own
style (SQLite's ``:name``, psycopg's ``%(name)s``), and run on the DBAPI cursor of the
caller's SQLAlchemy connection, inside its transaction. Building, compiling and hashing
SQLAlchemy expressions costs more than SQLite executing them; at thousands of jobs a second
that difference is most of the scheduler's time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


@functools.cache
def _pg(sql: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def json_param(name: str, pg: bool) -> str:
    """A JSON parameter in SQL: PostgreSQL's columns are jsonb."""
    return f"CAST(:{name} AS jsonb)" if pg else f":{name}"


def driver(conn: Connection) -> Any:
    """The DBAPI connection under ``conn`` (SQLAlchemy types it optional: it is None only
    once the connection is closed)."""
    dbapi = conn.connection.driver_connection
    if dbapi is None:
        raise RuntimeError("the connection is closed")
    return dbapi


class Raw:
    def __init__(self, conn: Connection) -> None:
        self.pg = conn.dialect.name == "postgresql"
        self.cursor = driver(conn).cursor()

    def sql(self, template: str) -> str:
        return _pg(template) if self.pg else template

    def json(self, name: str) -> str:
        return json_param(name, self.pg)

    @staticmethod
    def dumps(value: Any) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    def loads(self, value: Any) -> Any:
        """A JSON column's value: SQLite gives text, psycopg already a Python object."""
        if value is None or self.pg:
            return value
        return orjson.loads(value)

    def execute(self, template: str, params: dict[str, Any] | None = None) -> int:
        self.cursor.execute(self.sql(template), params or {})
        return self.cursor.rowcount

    def executemany(self, template: str, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.cursor.executemany(self.sql(template), rows)

    def returning_each(
        self, template: str, rows: Sequence[dict[str, Any]]
    ) -> list[list[tuple[Any, ...]]]:
        """Run ``template`` (a statement ending in RETURNING) once for each row of
        parameters; what each run returned. PostgreSQL gets them all in one pipeline
        (psycopg's executemany), sparing a round trip per row; SQLite runs in process."""
        if not rows:
            return []
        if not self.pg:
            return [self.query(template, r) for r in rows]
        self.cursor.executemany(self.sql(template), rows, returning=True)
        out = [list(self.cursor.fetchall())]
        while self.cursor.nextset():
            out.append(list(self.cursor.fetchall()))
        return out

    def query(self, template: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.cursor.execute(self.sql(template), params or {})
        return list(self.cursor.fetchall())

    def in_list(self, name: str, values: Iterable[Any], params: dict[str, Any]) -> str:
        """``IN (...)`` for ``values``, adding their parameters to ``params``."""
        names = []
        for i, v in enumerate(values):
            key = f"{name}{i}"
            params[key] = v
            names.append(f":{key}")
        return f"({', '.join(names) or 'NULL'})"
