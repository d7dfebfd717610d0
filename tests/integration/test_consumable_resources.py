"""Consumable resources through boto3, on both stores: CRUD, quantities, idempotent updates,
filters and pagination."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from helpers import arn, client_error, paginate, tamper

MAX_LONG = 2**63 - 1


def describe(batch, ref: str) -> dict:
    found = batch.describe_consumable_resource(consumableResource=ref)
    found.pop("ResponseMetadata")
    return found


def test_create_describe_update_delete(batch, unique):
    name = unique("licenses")
    created = batch.create_consumable_resource(
        consumableResourceName=name,
        totalQuantity=10,
        resourceType="NON_REPLENISHABLE",
        tags={"vendor": "acme"},
    )
    cr_arn = arn("consumable-resource", name)
    assert (created["consumableResourceName"], created["consumableResourceArn"]) == (name, cr_arn)
    found = describe(batch, cr_arn)
    assert isinstance(found.pop("createdAt"), int)
    assert found == {
        "consumableResourceName": name,
        "consumableResourceArn": cr_arn,
        "totalQuantity": 10,
        "inUseQuantity": 0,
        "availableQuantity": 10,
        "resourceType": "NON_REPLENISHABLE",
        "tags": {"vendor": "acme"},
    }
    assert describe(batch, name)["totalQuantity"] == 10

    for operation, quantity, total in [("ADD", 5, 15), ("REMOVE", 3, 12), ("SET", 4, 4)]:
        answer = batch.update_consumable_resource(
            consumableResource=name, operation=operation, quantity=quantity
        )
        assert answer["totalQuantity"] == total
        assert answer["consumableResourceArn"] == cr_arn
        assert describe(batch, name)["availableQuantity"] == total
    # SET is the default operation
    assert (
        batch.update_consumable_resource(consumableResource=cr_arn, quantity=7)["totalQuantity"]
        == 7
    )

    batch.delete_consumable_resource(consumableResource=cr_arn)
    err = client_error(batch.describe_consumable_resource, consumableResource=name)
    assert f"consumable resource '{name}' does not exist" in err["Message"]
    err = client_error(batch.delete_consumable_resource, consumableResource=name)
    assert "does not exist" in err["Message"]
    err = client_error(batch.update_consumable_resource, consumableResource=name, quantity=1)
    assert "does not exist" in err["Message"]


def test_defaults(batch, unique):
    name = unique("cr")
    batch.create_consumable_resource(consumableResourceName=name)
    found = describe(batch, name)
    assert (found["totalQuantity"], found["resourceType"]) == (0, "REPLENISHABLE")
    assert found["tags"] == {}  # as AWS answers an untagged resource


def test_client_token_makes_an_update_idempotent(batch, unique):
    name = unique("cr")
    batch.create_consumable_resource(consumableResourceName=name, totalQuantity=10)
    token = uuid.uuid4().hex
    first = batch.update_consumable_resource(
        consumableResource=name, operation="ADD", quantity=5, clientToken=token
    )
    assert first["totalQuantity"] == 15
    again = batch.update_consumable_resource(
        consumableResource=name, operation="ADD", quantity=5, clientToken=token
    )
    assert again["totalQuantity"] == 15
    assert describe(batch, name)["totalQuantity"] == 15

    # a later change by someone else: the retried request still answers what it answered first
    batch.update_consumable_resource(consumableResource=name, operation="SET", quantity=100)
    retried = batch.update_consumable_resource(
        consumableResource=name, operation="ADD", quantity=5, clientToken=token
    )
    assert retried["totalQuantity"] == 15
    assert describe(batch, name)["totalQuantity"] == 100

    err = client_error(
        batch.update_consumable_resource,
        consumableResource=name,
        operation="ADD",
        quantity=6,
        clientToken=token,
    )
    assert f"clientToken '{token}' was already used for a different update" in err["Message"]
    assert describe(batch, name)["totalQuantity"] == 100


def test_rules_refuse_and_change_nothing(batch, unique):
    name = unique("cr")
    batch.create_consumable_resource(consumableResourceName=name, totalQuantity=3)
    for kwargs, message in [
        ({"operation": "REMOVE", "quantity": 4}, "REMOVE 4 would make the total of"),
        ({"operation": "MULTIPLY", "quantity": 2}, "operation 'MULTIPLY' is not valid"),
        ({"quantity": -1}, "quantity is -1; it must not be negative"),
        ({"operation": "ADD"}, "quantity is required"),
        ({"operation": "ADD", "quantity": MAX_LONG}, f"past {MAX_LONG}, the largest quantity"),
    ]:
        err = client_error(batch.update_consumable_resource, consumableResource=name, **kwargs)
        assert err["Code"] == "ClientException" and err["Status"] == 400, kwargs
        assert message in err["Message"], (kwargs, err["Message"])
        assert describe(batch, name)["totalQuantity"] == 3

    for kwargs, message in [
        ({"consumableResourceName": name}, f"A consumable resource named '{name}' already exists"),
        ({"consumableResourceName": "has space"}, "consumableResourceName 'has space' is not"),
        ({"consumableResourceName": "c" * 129}, "use 1 to 128 letters"),
        ({"totalQuantity": -5}, "totalQuantity is -5; it must not be negative"),
        ({"resourceType": "RENEWABLE"}, "resourceType 'RENEWABLE' is not valid"),
        ({"tags": {"aws:a": "b"}}, "reserved prefix 'aws:'"),
    ]:
        request = {"consumableResourceName": unique("cr"), **kwargs}
        err = client_error(batch.create_consumable_resource, **request)
        assert err["Code"] == "ClientException" and message in err["Message"], err
        if request["consumableResourceName"] != name:
            err = client_error(
                batch.describe_consumable_resource,
                consumableResource=request["consumableResourceName"],
            )
            assert "does not exist" in err["Message"]
    assert describe(batch, name)["totalQuantity"] == 3

    big = unique("cr")
    batch.create_consumable_resource(consumableResourceName=big, totalQuantity=MAX_LONG)
    assert describe(batch, big)["availableQuantity"] == MAX_LONG


def test_list_filters_and_pagination(batch, unique):
    prefix = unique("Filter")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        batch.create_consumable_resource(consumableResourceName=n, totalQuantity=1)
    other = unique("cr")
    batch.create_consumable_resource(consumableResourceName=other, totalQuantity=2)

    def listed(page_size: int, *values: str) -> list[str]:
        filters = [{"name": "CONSUMABLE_RESOURCE_NAME", "values": list(values)}] if values else []
        kwargs = {"filters": filters} if filters else {}
        found = paginate(
            batch.list_consumable_resources, "consumableResources", page_size, **kwargs
        )
        return [c["consumableResourceName"] for c in found]

    assert listed(2, f"{prefix.lower()}*") == names  # a prefix, case-insensitive
    assert listed(100, names[3].upper(), other) == [names[3], other]
    assert listed(1, f"{prefix}-1", f"{prefix}-4*") == [names[1], names[4]]
    assert listed(100, "no-such-resource") == []
    everything = listed(3)
    assert len(everything) == len(set(everything)) and set(names) | {other} <= set(everything)

    (summary,) = batch.list_consumable_resources(
        filters=[{"name": "CONSUMABLE_RESOURCE_NAME", "values": [other]}]
    )["consumableResources"]
    assert summary == {
        "consumableResourceName": other,
        "consumableResourceArn": arn("consumable-resource", other),
        "totalQuantity": 2,
        "inUseQuantity": 0,
        "resourceType": "REPLENISHABLE",
    }

    by_prefix = [{"name": "CONSUMABLE_RESOURCE_NAME", "values": [f"{prefix}*"]}]
    token = batch.list_consumable_resources(filters=by_prefix, maxResults=2)["nextToken"]
    page = batch.list_consumable_resources(filters=by_prefix, maxResults=2, nextToken=token)
    assert [c["consumableResourceName"] for c in page["consumableResources"]] == names[2:4]
    err = client_error(batch.list_consumable_resources, maxResults=2, nextToken=token)
    assert "nextToken was not issued for this ListConsumableResources request" in err["Message"]
    err = client_error(batch.list_consumable_resources, nextToken=tamper(token), filters=by_prefix)
    assert "nextToken is not a token this server issued" in err["Message"]
    err = client_error(
        batch.list_consumable_resources, filters=[{"name": "RESOURCE_TYPE", "values": ["x"]}]
    )
    assert "filters[0].name 'RESOURCE_TYPE' is not supported" in err["Message"]


def test_concurrent_updates_are_not_lost(batch, unique):
    name = unique("cr")
    batch.create_consumable_resource(consumableResourceName=name, totalQuantity=0)

    def add(token: str) -> int:
        answer = batch.update_consumable_resource(
            consumableResource=name, operation="ADD", quantity=1, clientToken=token
        )
        return answer["totalQuantity"]

    with ThreadPoolExecutor(8) as pool:
        totals = list(pool.map(add, [uuid.uuid4().hex for _ in range(24)]))
    assert sorted(totals) == list(range(1, 25))  # each saw the one before it
    assert describe(batch, name)["totalQuantity"] == 24

    # the same request retried at once from several places is applied once
    token = uuid.uuid4().hex
    with ThreadPoolExecutor(8) as pool:
        totals = list(pool.map(add, [token] * 8))
    assert totals == [25] * 8
    assert describe(batch, name)["totalQuantity"] == 25
