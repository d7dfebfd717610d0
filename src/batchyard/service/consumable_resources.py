"""Consumable resources: named counters (licenses, API quotas...) that jobs reserve."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from batchyard.domain import checks
from batchyard.domain.clock import now_ms
from batchyard.domain.resources import ConsumableResource, Page
from batchyard.errors import Conflict, InvalidRequest
from batchyard.service.context import RESOURCES, Context
from batchyard.service.pagination import cut_page, page_size
from batchyard.service.suggest import unknown
from batchyard.store import resources as repo

RESOURCE_TYPES = ("REPLENISHABLE", "NON_REPLENISHABLE")
OPERATIONS = ("SET", "ADD", "REMOVE")
CLIENT_TOKEN_TTL_MS = 8 * 3600 * 1000  # AWS keeps an UpdateConsumableResource token 8 hours
MAX_QUANTITY = 2**63 - 1  # quantities are AWS longs (and BIGINT columns)


class ConsumableResources:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(
        self,
        *,
        name: str,
        total_quantity: int | None = None,
        resource_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ConsumableResource:
        checks.resource_name(name, "consumableResourceName")
        tags = checks.tags(tags or {})
        total = 0 if total_quantity is None else total_quantity
        if total < 0:
            raise InvalidRequest(f"totalQuantity is {total}; it must not be negative")
        kind = resource_type or "REPLENISHABLE"
        if kind not in RESOURCE_TYPES:
            raise InvalidRequest(
                f"resourceType {kind!r} is not valid; use {' or '.join(RESOURCE_TYPES)}"
            )
        try:
            with self.ctx.store.write() as conn:
                if repo.consumable_resource(conn, name) is not None:
                    raise Conflict(f"A consumable resource named {name!r} already exists")
                repo.insert_consumable_resource(
                    conn,
                    name=name,
                    resource_type=kind,
                    total_quantity=total,
                    in_use_quantity=0,
                    tags=tags,
                    created_at=now_ms(),
                )
                cr = repo.consumable_resource(conn, name)
        except IntegrityError:
            raise Conflict(f"A consumable resource named {name!r} already exists") from None
        assert cr is not None
        return cr

    def get(self, name: str) -> ConsumableResource:
        with self.ctx.store.read() as conn:
            cr = repo.consumable_resource(conn, name)
            if cr is None:
                raise unknown(conn, "consumable resource", name)
        return cr

    def update(
        self,
        name: str,
        *,
        operation: str | None,
        quantity: int | None,
        client_token: str | None = None,
    ) -> ConsumableResource:
        op = operation or "SET"
        if op not in OPERATIONS:
            raise InvalidRequest(f"operation {op!r} is not valid; use SET, ADD or REMOVE")
        if quantity is None:
            raise InvalidRequest(
                "quantity is required: the new total (SET) or the change (ADD, REMOVE)"
            )
        if quantity < 0:
            raise InvalidRequest(f"quantity is {quantity}; it must not be negative")
        request_hash = hashlib.sha256(orjson.dumps([name, op, quantity])).hexdigest()
        now = now_ms()
        with self.ctx.store.write() as conn:
            # the row lock serializes concurrent updates (and repeats of one token) on PostgreSQL
            cr = repo.consumable_resource(conn, name, lock="update")
            if cr is None:
                raise unknown(conn, "consumable resource", name)
            if client_token is not None:
                seen = repo.idempotent_result(
                    conn, "UpdateConsumableResource", client_token, now - CLIENT_TOKEN_TTL_MS
                )
                if seen is not None:
                    if seen[0] != request_hash:
                        raise Conflict(
                            f"clientToken {client_token!r} was already used for a different "
                            "update in the last 8 hours; use a new token"
                        )
                    # a repeated request gets the answer the first one got, changing nothing
                    return dataclasses.replace(cr, total_quantity=seen[1]["total_quantity"])
            total = {
                "SET": quantity,
                "ADD": cr.total_quantity + quantity,
                "REMOVE": cr.total_quantity - quantity,
            }[op]
            if total < 0:
                raise InvalidRequest(
                    f"REMOVE {quantity} would make the total of {name!r} negative "
                    f"(it is {cr.total_quantity})"
                )
            if total > MAX_QUANTITY:
                raise InvalidRequest(
                    f"ADD {quantity} would take the total of {name!r} past {MAX_QUANTITY}, the "
                    f"largest quantity (it is {cr.total_quantity})"
                )
            repo.update_consumable_resource(conn, cr.id, total_quantity=total)
            if client_token is not None:
                # an object, not a bare number: SQLite's numeric affinity for the JSON column
                # would turn the text "15" into the integer 15, which is no JSON document
                result = {"total_quantity": total}
                repo.remember_result(
                    conn, "UpdateConsumableResource", client_token, request_hash, result, now
                )
            cr = repo.consumable_resource(conn, name)
        self.ctx.changed(RESOURCES)
        assert cr is not None
        return cr

    def delete(self, name: str) -> None:
        with self.ctx.store.write() as conn:
            cr = repo.consumable_resource(conn, name, lock="update")
            if cr is None:
                raise unknown(conn, "consumable resource", name)
            if cr.in_use_quantity > 0:
                raise Conflict(
                    f"consumable resource {name!r} is in use by running jobs "
                    f"({cr.in_use_quantity} reserved); delete it when they finish"
                )
            repo.delete_consumable_resource(conn, cr.id)

    def list(
        self, filters: list[dict[str, Any]] | None, max_results: int | None, next_token: str | None
    ) -> Page:
        patterns = None
        for i, f in enumerate(filters or []):
            if f.get("name") != "CONSUMABLE_RESOURCE_NAME":
                raise InvalidRequest(
                    f"filters[{i}].name {f.get('name')!r} is not supported; use "
                    "CONSUMABLE_RESOURCE_NAME"
                )
            patterns = (patterns or []) + list(f.get("values") or [])
        limit = page_size(max_results)
        after = self.ctx.tokens.decode(next_token, "ListConsumableResources", patterns)
        with self.ctx.store.read() as conn:
            items = repo.consumable_resources(
                conn, name_patterns=patterns, after_id=after, limit=limit + 1
            )
        return cut_page(self.ctx.tokens, "ListConsumableResources", patterns, items, limit)
