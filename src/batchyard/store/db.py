"""The database: engine set-up for SQLite and PostgreSQL, transactions, migrations.

SQLite runs in WAL mode with ``synchronous=FULL``, so a commit is on disk when it returns
(this is what lets SubmitJob answer only after the job is durable). Write transactions start
with ``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of one failing on
upgrade, and writers inside this process take a lock first so they never busy-wait at all.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError

from batchyard.config import ConfigError
from batchyard.store import tables
from batchyard.store.raw import driver

log = logging.getLogger(__name__)
T = TypeVar("T")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Store:
    """One database. ``read()`` and ``write()`` each yield a connection inside a transaction."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError(f"database_url {url!r} is not a valid SQLAlchemy URL") from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"database_url {url!r}: only sqlite:/// and postgresql+psycopg:// are supported"
            )
        if self.dialect == "postgresql" and parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self._write_lock = threading.Lock()
        self._group: GroupCommit | None = None
        self._group_lock = threading.Lock()
        self.engine = self._create_engine()

    @property
    def description(self) -> str:
        """Where the data lives, for the start-up log line (no password)."""
        if self.dialect == "sqlite":
            return f"SQLite at {self.url.database}"
        return f"PostgreSQL at {self.url.render_as_string(hide_password=True)}"

    def _create_engine(self) -> Engine:
        kwargs: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        if self.dialect == "sqlite":
            db = self.url.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 16
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(self.url, **kwargs)
        except (NoSuchModuleError, ImportError) as e:
            raise ConfigError(f"database_url {self.url!s}: driver not available ({e})") from None
        if self.dialect == "sqlite":
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        return engine

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot on both stores)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self, durable: bool = True) -> Iterator[Connection]:
        """A write transaction, committed when the block exits normally.

        ``durable`` (the default, e.g. SubmitJob) means on disk when the commit returns.
        The scheduler's own bookkeeping passes ``durable=False``: its commits survive a
        crash of batchyard at once and reach the disk with the next durable commit or
        checkpoint (SQLite ``synchronous=NORMAL``; PostgreSQL ``synchronous_commit=off``),
        which is what lets it commit often without an fsync each time.
        """
        lock = self._write_lock if self.dialect == "sqlite" else contextlib.nullcontext()
        with lock, self.engine.connect() as conn:
            conn = conn.execution_options(batchyard_write=True)
            raw = driver(conn)  # outside SQLAlchemy's autobegin
            if self.dialect == "sqlite" and not durable:
                raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    if self.dialect == "postgresql" and not durable:
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    yield conn
            finally:
                if self.dialect == "sqlite" and not durable:
                    raw.execute("PRAGMA synchronous=FULL")

    def grouped(
        self,
        work: Callable[[Connection], T],
        after: Callable[[T], None] | None = None,
    ) -> Future[T]:
        """Run ``work`` in a durable write transaction shared with whatever other grouped
        work is waiting (group commit): each piece in a savepoint of its own, one fsync for
        all. The future is done when the commit is on disk (``after`` has then run with the
        result, on the committing thread). This is what lets many clients submit jobs at
        once while every SubmitJob still returns only after its job is durable; the caller
        waits on the future without holding a thread (``asyncio.wrap_future``)."""
        if self._group is None:
            with self._group_lock:
                if self._group is None:
                    self._group = GroupCommit(self)
        return self._group.start(work, after)

    def writer(self) -> Writer:
        """A connection of its own for one thread's frequent non-durable writes (the
        scheduler): no pool checkout and no settings switched per transaction."""
        return Writer(self)

    def conninfo(self) -> str:
        """A libpq connection string for PostgreSQL (for connections outside the pool)."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def notify(self, topic: str) -> None:
        """Wake the scheduler of whichever server leads (PostgreSQL only; see
        :mod:`batchyard.scheduler.leader`)."""
        if self.dialect != "postgresql":
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_notify('batchyard', :topic)"), {"topic": topic})
            conn.commit()

    def check(self) -> None:
        """Fail early, with the reason, when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as e:
            raise ConfigError(f"cannot open the database ({self.description}): {e.orig}") from None

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; serialized across servers)."""
        from batchyard.store.migrate import upgrade

        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(813001)"))
            try:
                upgrade(conn)
                conn.commit()
            finally:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(813001)"))
                    conn.commit()

    def secret(self, key: str) -> bytes:
        """A random per-database secret (created once), e.g. to sign pagination tokens.

        Servers sharing a database agree on it: whoever inserts first wins, the others read.
        """
        query = select(tables.settings.c.value).where(tables.settings.c.key == key)
        for _ in range(3):
            with self.read() as conn:
                row = conn.execute(query).first()
            if row is not None:
                return bytes.fromhex(row.value)
            try:
                with self.write() as conn:
                    conn.execute(
                        tables.settings.insert().values(key=key, value=secrets.token_hex(32))
                    )
            except IntegrityError:
                pass  # another server inserted it; read theirs
        raise RuntimeError(f"could not read or create the {key} setting")

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("batchyard_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


class Writer:
    """See :meth:`Store.writer`. Commits survive a crash of batchyard at once and reach the
    disk with the next durable commit (see :meth:`Store.write`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: Connection | None = None

    def _connect(self) -> Connection:
        conn = self.store.engine.connect().execution_options(batchyard_write=True)
        if self.store.dialect == "sqlite":
            driver(conn).execute("PRAGMA synchronous=NORMAL")
        else:
            conn.exec_driver_sql("SET synchronous_commit = off")
            conn.commit()
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        if self._conn is None:
            self._conn = self._connect()
        sqlite = self.store.dialect == "sqlite"
        lock = self.store._write_lock if sqlite else contextlib.nullcontext()
        try:
            with lock, self._conn.begin():
                yield self._conn
        except BaseException:
            # the connection may be broken (a database restart): start afresh next time
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


_Grouped = tuple[Callable[[Connection], Any], Callable[[Any], None] | None, Future[Any]]


class GroupCommit:
    """A thread that commits queued work in batches (see :meth:`Store.grouped`)."""

    MAX_BATCH = 256

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: deque[_Grouped] = deque()
        self._ready = threading.Condition()
        self._thread = threading.Thread(
            target=self._loop, name="batchyard-group-commit", daemon=True
        )
        self._thread.start()

    def start(
        self, work: Callable[[Connection], T], after: Callable[[T], None] | None
    ) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            self._queue.append((work, after, future))
            self._ready.notify()
        return future

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self.MAX_BATCH))
                ]
            done: list[tuple[_Grouped, Any, BaseException | None]] = []
            try:
                with self.store.write() as conn:
                    # driver-level savepoints: SQLAlchemy's compile a statement per name
                    cursor = driver(conn).cursor()
                    for item in batch:
                        work, _, _ = item
                        cursor.execute("SAVEPOINT grouped")
                        try:
                            result = work(conn)
                        except BaseException as e:
                            cursor.execute("ROLLBACK TO SAVEPOINT grouped")
                            cursor.execute("RELEASE SAVEPOINT grouped")
                            done.append((item, None, e))
                        else:
                            cursor.execute("RELEASE SAVEPOINT grouped")
                            done.append((item, result, None))
            except BaseException as e:
                for _, _, future in batch:
                    future.set_exception(e)
                continue
            for (_, after, future), result, error in done:
                if error is None and after is not None:
                    try:
                        after(result)
                    except Exception:  # committed all the same: the result stands
                        log.exception("after a grouped commit")
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)
