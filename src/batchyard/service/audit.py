"""The audit log, CloudTrail-style: every mutating API call and every refused signature, with
who (user and access key), what (the IAM action), on what (resource ARNs), from where (the
client's address) and how it ended (``Success`` or the error code).

Records are queued by the request and written by a background thread in batches (every
0.2 s), so auditing costs a request no disk write of its own. A crash of the server may lose
the records of the last fraction of a second; a clean stop writes them all. The same thread
records when each access key was last used and drops records older than
``audit_retention_days``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from batchyard.domain.clock import now_ms
from batchyard.errors import InvalidRequest
from batchyard.store import security as repo
from batchyard.store.db import Store

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2
MAX_QUEUE = 100_000
MAX_PAGE = 1000


@dataclass(slots=True)
class Record:
    principal: str
    action: str
    resources: list[str]
    outcome: str  # Success, or the error code
    status: int
    source: str | None = None
    access_key_id: str | None = None
    message: str | None = None
    request_id: str | None = None
    at: int = 0


class Audit:
    def __init__(self, store: Store, retention_days: float) -> None:
        self.store = store
        self.retention_ms = int(retention_days * 86_400_000)
        self._queue: deque[Record] = deque()
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_expiry = 0.0
        self.dropped = 0

    # ---- recording ------------------------------------------------------------------------

    def record(self, rec: Record) -> None:
        rec.at = rec.at or now_ms()
        with self._lock:
            if len(self._queue) >= MAX_QUEUE:  # the store is stuck: count, never block
                self.dropped += 1
                return
            self._queue.append(rec)
            self._start()

    def used(self, access_key_id: str) -> None:
        """Remember that a key signed a request (written with the next batch)."""
        with self._lock:
            self._used[access_key_id] = now_ms()
            self._start()

    def _start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="batchyard-audit", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # the store is down: keep the queue, try again
                log.exception("cannot write audit records; will retry")
                time.sleep(1)

    def flush(self) -> None:
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            used, self._used = self._used, {}
        expire = time.monotonic() >= self._next_expiry
        if not batch and not used and not expire:
            return
        rows = [
            {
                "at": r.at,
                "principal": r.principal[:128],
                "access_key_id": (r.access_key_id or None) and r.access_key_id[:128],
                "action": r.action[:128],
                "resources": r.resources,
                "source": (r.source or None) and r.source[:64],
                "outcome": r.outcome[:64],
                "status": r.status,
                "message": (r.message or None) and r.message[:2000],
                "request_id": r.request_id,
            }
            for r in batch
        ]
        try:
            with self.store.write(durable=False) as conn:
                repo.insert_audit(conn, rows)
                repo.touch_keys(conn, used)
                if expire:
                    repo.expire_audit(conn, now_ms() - self.retention_ms)
        except Exception:
            with self._lock:  # put them back, oldest first
                self._queue.extendleft(reversed(batch))
                for k, v in used.items():
                    self._used.setdefault(k, v)
            raise
        if expire:
            self._next_expiry = time.monotonic() + 3600

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.flush()

    # ---- reading --------------------------------------------------------------------------

    def query(
        self,
        *,
        since: int | None = None,
        until: int | None = None,
        principal: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; a page of ``limit`` and the token of the next page."""
        self.flush()  # what was just done is visible at once
        limit = limit or 100
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        before = None
        if next_token:
            try:
                before = int(base64.urlsafe_b64decode(next_token.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise InvalidRequest("nextToken is not one this endpoint issued") from None
        with self.store.read() as conn:
            rows = repo.audit(
                conn,
                since=since,
                until=until,
                principal=principal,
                action=action,
                outcome=outcome,
                before_id=before,
                limit=limit + 1,
            )
        token = None
        if len(rows) > limit:
            rows = rows[:limit]
            token = base64.urlsafe_b64encode(str(rows[-1]["id"]).encode()).decode()
        return rows, token
