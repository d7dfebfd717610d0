"""Pure parts of observability: the outbox reader's gap rule, webhook backoff, usage
arithmetic and pricing, right-sizing rounding, and the SVG charts."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from batchyard.config import InstancePrice, Price, Settings
from batchyard.events import outbox as ob
from batchyard.events.outbox import Outbox, Position, Transition
from batchyard.events.webhooks import backoff, signature
from batchyard.service.usage import Pricing, _round_mib, _round_vcpus, percentile, small_amount
from batchyard.ui import charts


def rows(*ids: int) -> list[Transition]:
    return [Transition(i, 1, i, None, "SUBMITTED", None) for i in ids]


def test_outbox_stops_at_a_gap_until_older_transactions_end():
    pos = Position(10)
    # 11 visible, 12 missing, 13 visible: deliver 11, remember the gap with the xmax then
    got = Outbox._contiguous(pos, rows(11, 13), xmin=100, xmax=105)
    assert [r.id for r in got] == [11] and pos.id == 11 and pos.gap[:2] == (12, 105)
    # transactions that existed then still run (xmin < 105): wait
    assert Outbox._contiguous(pos, rows(13), xmin=104, xmax=110) == [] and pos.id == 11
    # the missing row committed meanwhile: in order, gap forgotten
    got = Outbox._contiguous(Position(11, pos.gap), rows(12, 13), xmin=104, xmax=110)
    assert [r.id for r in got] == [12, 13]
    # or they all ended without it (a rollback): move past the gap
    p2 = Position(11, pos.gap)
    assert [r.id for r in Outbox._contiguous(p2, rows(13, 14), xmin=105, xmax=111)] == [13, 14]
    assert p2.id == 14 and p2.gap is None


def test_outbox_gives_up_on_a_gap_after_the_limit(monkeypatch):
    pos = Position(1, (2, 50, time.monotonic() - ob.MAX_GAP_SECONDS - 1))
    assert [r.id for r in Outbox._contiguous(pos, rows(3), xmin=10, xmax=60)] == [3]


def test_backoff_doubles_to_a_ceiling():
    values = [backoff(n, 1.0, 30.0) for n in range(1, 8)]
    for n, v in enumerate(values, start=1):
        assert 0.9 * min(30, 2 ** (n - 1)) <= v <= 1.1 * min(30, 2 ** (n - 1))
    assert signature("k", b"body").startswith("sha256=") and len(signature("k", b"")) == 71


def test_percentile_and_rounding():
    assert percentile([5, 1, 3, 2, 4], 0.95) == 5
    assert percentile(list(range(1, 101)), 0.95) == 95
    assert percentile([0.8], 0.95) == 0.8
    assert _round_vcpus(0.01) == 0.25 and _round_vcpus(0.3) == 0.5 and _round_vcpus(1.0) == 1
    assert _round_vcpus(1.2) == 2 and _round_vcpus(3.0) == 3
    assert _round_mib(10) == 64 and _round_mib(200) == 256 and _round_mib(256) == 256
    assert small_amount(0.000024) == "0.000024" and small_amount(0.0031) == "0.0031"


def test_pricing_precedence():
    s = Settings(
        compute_environment_prices={
            "own": Price(vcpu_hour=0.05),
            "typed": Price(instance_type="big.box"),
        },
        instance_prices={"big.box": InstancePrice(hourly=1.0, vcpus=4, memory_gib=10)},
    )
    p = Pricing(s)
    default = p.rate("anything", None)
    assert (default.vcpu_hour, default.gib_hour) == (0.024, 0.006)
    assert default.source == "price_vcpu_hour (default), price_gib_hour (default)"
    own = p.rate("own", ["m5.large"])
    assert own.vcpu_hour == 0.05 and own.gib_hour == 0.006
    assert own.source == "compute_environment_prices.own, price_gib_hour (default)"
    typed = p.rate("typed", None)
    assert typed.vcpu_hour == 1.0 / 2 / 4 and typed.gib_hour == 1.0 / 2 / 10
    assert typed.source == (
        "compute_environment_prices.typed: instance_prices.big.box ($1/h for 4 vCPUs and 10 GiB)"
    )
    # m5.large, split evenly between its 2 vCPUs and 8 GiB, gives the defaults
    m5 = p.rate("other", ["optimal", "m5.large"])
    assert abs(m5.vcpu_hour - 0.024) < 1e-12 and abs(m5.gib_hour - 0.006) < 1e-12
    assert m5.source == "the built-in on-demand price of m5.large ($0.096/h for 2 vCPUs and 8 GiB)"
    configured = Pricing(Settings(price_gib_hour=0.01)).rate("anything", None)
    assert configured.source == "price_vcpu_hour (default), price_gib_hour (configured)"


def test_charts_are_valid_svg():
    svg = charts.bars(["a", "b", "c"], [("ok", "ok", [1, 2, 0]), ("bad", "bad", [0, 1, 3])], "t")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    bars = [e for e in root.iter() if e.tag.endswith("rect") and e.get("class") in ("ok", "bad")]
    assert len(bars) == 4 + 2  # four non-zero values, two legend swatches
    assert charts.nice_max(7) == 10 and charts.nice_max(0.3) == 0.5 and charts.nice_max(0) == 1
    ET.fromstring(charts.area(["x", "y"], [0, 4], "depth"))
    ET.fromstring(charts.empty("nothing"))
    labels, counts = charts.wait_histogram([0.5, 2, 2, 40, 5000])
    assert counts == [1, 2, 0, 1, 0, 0, 1] and len(labels) == 7
