"""What jobs used, what they cost, and what they reserved without using.

Per attempt the provider records what the job really used (``attempts.usage``): CPU seconds
and peak memory of the job's whole process tree where the host has cgroups (cpuacct and
memory), else of its main process and the children it waited for (rusage), plus the wall
time. Next to it stands what the job reserved: its vCPUs and memory (the ``jobs`` row), for as
long as the attempt ran.

Cost is the reservation priced: ``(vCPUs × vCPU-hour price + GiB × GiB-hour price) × hours``,
with the compute environment's prices (docs/observability.md: the settings, the defaults
derived from an m5.large). Waste is the part of that cost that paid for capacity the attempt
did not use: vCPUs beyond its average CPU use, memory beyond its peak. An attempt without a
usage record (an agent that died) has a cost and no waste.

Right-sizing hints compare, per job definition revision and request, the 95th percentile of
use over the attempts of the period (nearest rank, attempts of at least :data:`MIN_WALL`
seconds) with the request, and say what to request instead and what it would have saved.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from batchyard.config import Settings
from batchyard.domain.resources import INLINE_LABEL
from batchyard.errors import InvalidRequest
from batchyard.service.context import Context
from batchyard.store import resources as res

MIN_WALL = 1.0  # seconds: shorter attempts say more about start-up than about the job
MIN_ATTEMPTS = 3
HEADROOM = 1.2
GROUPS = ("queue", "job_definition", "share_identifier", "day", "compute_environment", "job")

# On-demand Linux prices in us-east-1 (USD per hour), vCPUs and GiB: a starting point for
# compute environments whose instanceTypes name them. instance_prices in the config add to
# and override these.
INSTANCE_PRICES: dict[str, tuple[float, float, float]] = {
    "m5.large": (0.096, 2, 8),
    "m5.xlarge": (0.192, 4, 16),
    "m5.2xlarge": (0.384, 8, 32),
    "m5.4xlarge": (0.768, 16, 64),
    "c5.large": (0.085, 2, 4),
    "c5.xlarge": (0.17, 4, 8),
    "c5.2xlarge": (0.34, 8, 16),
    "r5.large": (0.126, 2, 16),
    "r5.xlarge": (0.252, 4, 32),
    "r5.2xlarge": (0.504, 8, 64),
}


@dataclass(frozen=True, slots=True)
class Rate:
    vcpu_hour: float
    gib_hour: float
    source: str  # where the prices come from, in the settings' own names, for people


class Pricing:
    """The price of a vCPU-hour and a GiB-hour on each compute environment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default = Rate(
            settings.price_vcpu_hour,
            settings.price_gib_hour,
            ", ".join(self._setting(n) for n in ("price_vcpu_hour", "price_gib_hour")),
        )
        self.instances = {k: v for k, v in INSTANCE_PRICES.items()}
        for name, p in settings.instance_prices.items():
            self.instances[name] = (p.hourly, p.vcpus, p.memory_gib)

    def _setting(self, name: str) -> str:
        """``price_gib_hour (default)``, or ``(configured)`` when a flag, variable or the
        config file set it."""
        state = "configured" if name in self.settings.model_fields_set else "default"
        return f"{name} ({state})"

    def _instance(self, name: str) -> Rate | None:
        found = self.instances.get(name)
        if found is None:
            return None
        hourly, vcpus, gib = found
        table = (
            f"instance_prices.{name}"
            if name in self.settings.instance_prices
            else f"the built-in on-demand price of {name}"
        )
        # half the instance's price buys its vCPUs, half its memory (m5.large: $0.024 per
        # vCPU-hour, $0.006 per GiB-hour, the defaults)
        return Rate(
            hourly / 2 / vcpus,
            hourly / 2 / gib,
            f"{table} (${hourly:g}/h for {vcpus:g} vCPUs and {gib:g} GiB)",
        )

    def rate(self, ce_name: str, instance_types: list[str] | None) -> Rate:
        own = self.settings.compute_environment_prices.get(ce_name)
        if own is not None:
            entry = f"compute_environment_prices.{ce_name}"
            if own.instance_type:
                found = self._instance(own.instance_type)
                if found is not None:
                    return Rate(found.vcpu_hour, found.gib_hour, f"{entry}: {found.source}")
            missing = [
                self._setting(name)
                for name, value in (
                    ("price_vcpu_hour", own.vcpu_hour),
                    ("price_gib_hour", own.gib_hour),
                )
                if value is None
            ]
            return Rate(
                own.vcpu_hour if own.vcpu_hour is not None else self.default.vcpu_hour,
                own.gib_hour if own.gib_hour is not None else self.default.gib_hour,
                ", ".join([entry, *missing]),
            )
        for name in instance_types or []:
            found = self._instance(name)
            if found is not None:
                return found
        return self.default


@dataclass(slots=True)
class AttemptUsage:
    """One finished attempt: what it reserved, used and cost."""

    attempt_id: int
    job_id: str
    job_name: str
    attempt: int
    queue: str
    job_definition: str  # name:revision
    job_definition_label: str  # what people read (JobDefinition.label)
    share_identifier: str | None
    compute_environment: str
    tags: dict[str, str]
    started_at: int
    stopped_at: int
    exit_code: int | None
    oom_killed: bool
    vcpus: float
    memory_mib: int
    wall_seconds: float
    cpu_seconds: float | None
    peak_memory_mib: float | None
    measured_by: str  # cgroup, rusage, none
    cost: float
    waste: float
    vcpu_hour: float
    gib_hour: float
    price_source: str  # where vcpu_hour and gib_hour come from (Rate.source)

    @property
    def cpu_average(self) -> float | None:
        if self.cpu_seconds is None or self.wall_seconds <= 0:
            return None
        return self.cpu_seconds / self.wall_seconds

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.stopped_at / 1000, UTC).strftime("%Y-%m-%d")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu_average"] = self.cpu_average
        d["day"] = self.day
        return d


@dataclass(slots=True)
class Group:
    key: str
    label: str  # the key as people read it (an inline job definition: what it runs)
    attempts: int = 0
    jobs: int = 0
    wall_hours: float = 0.0
    vcpu_hours: float = 0.0  # reserved
    cpu_hours: float = 0.0  # used (attempts with a usage record)
    gib_hours: float = 0.0  # reserved
    peak_gib_hours: float = 0.0  # peak memory × time (attempts with a usage record)
    measured_vcpu_hours: float = 0.0  # reserved, by attempts with a usage record
    measured_gib_hours: float = 0.0
    cost: float = 0.0
    waste: float = 0.0
    failed_attempts: int = 0
    _jobs: set[str] = field(default_factory=set, repr=False)

    def add(self, a: AttemptUsage) -> None:
        hours = a.wall_seconds / 3600
        self.attempts += 1
        self._jobs.add(a.job_id)
        self.jobs = len(self._jobs)
        self.wall_hours += hours
        self.vcpu_hours += a.vcpus * hours
        self.gib_hours += a.memory_mib / 1024 * hours
        self.cost += a.cost
        self.waste += a.waste
        if a.exit_code != 0:
            self.failed_attempts += 1
        if a.cpu_seconds is not None:
            self.cpu_hours += a.cpu_seconds / 3600
            self.measured_vcpu_hours += a.vcpus * hours
        if a.peak_memory_mib is not None:
            self.peak_gib_hours += a.peak_memory_mib / 1024 * hours
            self.measured_gib_hours += a.memory_mib / 1024 * hours

    def as_dict(self) -> dict[str, Any]:
        cpu_eff = self.cpu_hours / self.measured_vcpu_hours if self.measured_vcpu_hours else None
        mem_eff = self.peak_gib_hours / self.measured_gib_hours if self.measured_gib_hours else None
        return {
            "key": self.key,
            "label": self.label,
            "attempts": self.attempts,
            "jobs": self.jobs,
            "failed_attempts": self.failed_attempts,
            "wall_hours": round(self.wall_hours, 9),
            "vcpu_hours": round(self.vcpu_hours, 9),
            "cpu_hours": round(self.cpu_hours, 9),
            "gib_hours": round(self.gib_hours, 9),
            "peak_gib_hours": round(self.peak_gib_hours, 9),
            "cpu_efficiency": None if cpu_eff is None else round(cpu_eff, 4),
            "memory_efficiency": None if mem_eff is None else round(mem_eff, 4),
            "cost": self.cost,
            "waste": self.waste,
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _round_vcpus(v: float) -> float:
    """A vCPU request for ``v``: quarters below 1 vCPU, whole vCPUs from there."""
    if v <= 1:
        return max(0.25, math.ceil(v * 4 - 1e-9) / 4)
    return float(math.ceil(v - 1e-9))


def _round_mib(m: float) -> int:
    return max(64, math.ceil(m / 64 - 1e-9) * 64)


def _fmt_vcpus(v: float) -> str:
    return f"{v:g} vCPU" if v == 1 else f"{v:g} vCPUs"


@dataclass(slots=True)
class Hint:
    job_definition: str  # name:revision
    label: str  # what people read (JobDefinition.label)
    resource: str  # vcpus or memory
    kind: str  # over-request, under-request
    requested: float
    p95: float
    max: float
    suggested: float
    attempts: int
    saving: float  # over the period, at the suggested request (0 for an under-request)
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Named:
    """A job definition as a hint names it."""

    ref: str
    label: str

    @property
    def inline(self) -> bool:
        return self.label.startswith(INLINE_LABEL)

    @property
    def subject(self) -> str:
        """``job definition etl:3``; an inline one by the command that submits it, since
        that command is where its request is changed."""
        if self.inline:
            return f"`batchyard submit -- {self.label.removeprefix(INLINE_LABEL)}`"
        return f"job definition {self.ref}"

    def flag(self, name: str, value: str) -> str:
        """How to ask for ``value`` on an inline job's command line (nothing for the others)."""
        return f" ({name} {value})" if self.inline else ""


def parse_since(value: str | None, default_ms: int, now: int) -> int:
    """``7d``, ``12h``, ``30m``, epoch milliseconds or an ISO 8601 time -> epoch ms."""
    if value is None or value == "":
        return now - default_ms
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return now - int(float(value[:-1]) * units[value[-1]])
    from batchyard.events.api import parse_time

    return parse_time(value, "since")


class Usage:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.pricing = Pricing(ctx.settings)

    # ---- records ----------------------------------------------------------------------------

    def attempts(self, since: int, until: int) -> Iterator[AttemptUsage]:
        """Every attempt that ended in [since, until), with its use, cost and waste."""
        if until <= since:
            raise InvalidRequest("the period is empty: 'until' must be after 'since'")
        with self.ctx.store.read() as conn:
            queues = {q.id: q.name for q in res.job_queues(conn)}
            ces = {ce.name: ce for ce in res.compute_environments(conn)}
            rows = list(
                conn.execute(
                    text(
                        "SELECT a.id, a.number, a.compute_environment, a.started_at, "
                        "a.stopped_at, a.exit_code, a.reason, a.usage, j.id, j.name, "
                        "j.queue_id, j.definition_id, j.share_identifier, j.vcpus, "
                        "j.memory_mib, j.parent_seq, j.tags FROM attempts a "
                        "JOIN jobs j ON j.seq = a.job_seq WHERE a.stopped_at >= :since "
                        "AND a.stopped_at < :until AND a.started_at IS NOT NULL "
                        "ORDER BY a.stopped_at"
                    ),
                    {"since": since, "until": until},
                )
            )
            parent_seqs = {r[15] for r in rows if r[15] is not None}
            parents: dict[int, Any] = {}
            seqs = list(parent_seqs)
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                marks = ", ".join(f":p{k}" for k in range(len(chunk)))
                for seq, tags, share in conn.execute(
                    text(f"SELECT seq, tags, share_identifier FROM jobs WHERE seq IN ({marks})"),
                    {f"p{k}": s for k, s in enumerate(chunk)},
                ):
                    parents[seq] = (_json(tags), share)
            defs = res.job_definitions_by_id(conn, {r[11] for r in rows})
            for qid in {r[10] for r in rows} - set(queues):
                q = res.job_queue_by_id(conn, qid)
                queues[qid] = q.name if q is not None else f"#{qid}"
        rates: dict[str, Rate] = {}
        for r in rows:
            (aid, number, ce, started, stopped, code, reason, usage) = r[:8]
            (job_id, name, qid, did, share, vcpus, mem, parent, tags) = r[8:]
            if ce not in rates:
                spec = ces[ce].compute_resources if ce in ces else None
                rates[ce] = self.pricing.rate(ce, (spec or {}).get("instance_types"))
            rate = rates[ce]
            tags = _json(tags) or {}
            if parent is not None and parent in parents:
                tags, share = parents[parent][0] or {}, parents[parent][1] or share
            usage = _json(usage) or {}
            wall = max(0.0, (stopped - started) / 1000)
            cpu = usage.get("cgroup_cpu_seconds", usage.get("cpu_seconds"))
            peak = usage.get(
                "cgroup_peak_memory_mib",
                usage.get("tree_peak_memory_mib", usage.get("max_rss_mib")),
            )
            measured = (
                "cgroup"
                if "cgroup_cpu_seconds" in usage or "cgroup_peak_memory_mib" in usage
                else ("rusage" if usage else "none")
            )
            hours = wall / 3600
            gib = mem / 1024
            cost = (vcpus * rate.vcpu_hour + gib * rate.gib_hour) * hours
            waste = 0.0
            if cpu is not None and peak is not None and wall > 0:
                used_v = min(vcpus, cpu / wall)
                used_g = min(gib, peak / 1024)
                waste = max(0.0, cost - (used_v * rate.vcpu_hour + used_g * rate.gib_hour) * hours)
            jd = defs.get(did)
            yield AttemptUsage(
                attempt_id=aid,
                job_id=job_id,
                job_name=name,
                attempt=number,
                queue=queues.get(qid, f"#{qid}"),
                job_definition=jd.ref if jd is not None else f"#{did}",
                job_definition_label=jd.label if jd is not None else f"#{did}",
                share_identifier=share,
                compute_environment=ce,
                tags=tags,
                started_at=started,
                stopped_at=stopped,
                exit_code=code,
                oom_killed=bool(reason and reason.startswith("OutOfMemoryError")),
                vcpus=float(vcpus),
                memory_mib=int(mem),
                wall_seconds=wall,
                cpu_seconds=None if cpu is None else float(cpu),
                peak_memory_mib=None if peak is None else float(peak),
                measured_by=measured,
                cost=cost,
                waste=waste,
                vcpu_hour=rate.vcpu_hour,
                gib_hour=rate.gib_hour,
                price_source=rate.source,
            )

    # ---- summaries -----------------------------------------------------------------------

    def summary(self, group_by: str, since: int, until: int) -> dict[str, Any]:
        """Totals per group: ``queue``, ``job_definition``, ``share_identifier``, ``day``,
        ``compute_environment``, ``job`` or ``tag:<key>``."""
        key = _grouping(group_by)
        groups: dict[str, Group] = {}
        total = Group("total", "total")
        prices: dict[str, dict[str, Any]] = {}
        for a in self.attempts(since, until):
            k = key(a)
            g = groups.get(k)
            if g is None:
                label = a.job_definition_label if group_by == "job_definition" else k
                g = groups[k] = Group(k, label)
            g.add(a)
            total.add(a)
            if a.compute_environment not in prices:
                prices[a.compute_environment] = {
                    "compute_environment": a.compute_environment,
                    "vcpu_hour": a.vcpu_hour,
                    "gib_hour": a.gib_hour,
                    "source": a.price_source,
                }
        ordered = sorted(groups.values(), key=lambda g: (-g.cost, g.key))
        if group_by == "day":
            ordered = sorted(groups.values(), key=lambda g: g.key)
        return {
            "group_by": group_by,
            "since": since,
            "until": until,
            "currency": self.ctx.settings.currency,
            "groups": [g.as_dict() for g in ordered],
            "total": total.as_dict(),
            # the prices the costs were computed with, per compute environment of the period
            "prices": [prices[ce] for ce in sorted(prices)],
        }

    def hints(self, since: int, until: int, min_attempts: int = MIN_ATTEMPTS) -> list[Hint]:
        """Job definitions whose requests are far from what their attempts use."""
        by_def: dict[tuple[str, float, int], list[AttemptUsage]] = defaultdict(list)
        for a in self.attempts(since, until):
            if a.wall_seconds >= MIN_WALL:
                by_def[(a.job_definition, a.vcpus, a.memory_mib)].append(a)
        period = _period(until - since)
        hints: list[Hint] = []
        for (jd, vcpus, mem), group in sorted(by_def.items()):
            named = _Named(jd, group[0].job_definition_label)
            hints += self._cpu_hint(named, vcpus, group, min_attempts, period)
            hints += self._memory_hint(named, mem, group, min_attempts, period)
        return sorted(hints, key=lambda h: (-h.saving, h.job_definition, h.resource))

    def _cpu_hint(
        self, jd: _Named, vcpus: float, group: list[AttemptUsage], least: int, period: str
    ) -> list[Hint]:
        use = [a.cpu_average for a in group if a.cpu_average is not None]
        if len(use) < least:
            return []
        p95, top = percentile(use, 0.95), max(use)
        hours = sum(a.wall_seconds for a in group if a.cpu_average is not None) / 3600
        price = sum(a.vcpu_hour for a in group) / len(group)
        n = len(use)
        if p95 < vcpus / 2:
            suggested = _round_vcpus(p95 * HEADROOM)
            if suggested >= vcpus:
                return []
            saving = (vcpus - suggested) * price * hours
            return [
                Hint(
                    jd.ref,
                    jd.label,
                    "vcpus",
                    "over-request",
                    vcpus,
                    p95,
                    top,
                    suggested,
                    n,
                    saving,
                    f"{jd.subject} requests {_fmt_vcpus(vcpus)}; p95 use {p95:.2f} "
                    f"(max {top:.2f}) over {n} attempts in {period}. Request "
                    f"{_fmt_vcpus(suggested)}{jd.flag('--vcpus', f'{suggested:g}')}: "
                    f"{self._money(saving)} less reserved over the same period, at "
                    f"{self._price(price)} per vCPU-hour.",
                )
            ]
        if p95 > vcpus * 1.1:
            suggested = _round_vcpus(p95)
            return [
                Hint(
                    jd.ref,
                    jd.label,
                    "vcpus",
                    "under-request",
                    vcpus,
                    p95,
                    top,
                    suggested,
                    n,
                    0.0,
                    f"{jd.subject} requests {_fmt_vcpus(vcpus)} but uses more: p95 "
                    f"{p95:.2f} (max {top:.2f}) over {n} attempts in {period}. vCPUs are "
                    f"accounted, not enforced, so it takes CPU from other jobs; request "
                    f"{_fmt_vcpus(suggested)}{jd.flag('--vcpus', f'{suggested:g}')}.",
                )
            ]
        return []

    def _memory_hint(
        self, jd: _Named, mem: int, group: list[AttemptUsage], least: int, period: str
    ) -> list[Hint]:
        measured = [a for a in group if a.peak_memory_mib is not None]
        if len(measured) < least:
            return []
        peaks = [a.peak_memory_mib or 0.0 for a in measured]
        p95, top = percentile(peaks, 0.95), max(peaks)
        ooms = sum(1 for a in measured if a.oom_killed)
        hours = sum(a.wall_seconds for a in measured) / 3600
        price = sum(a.gib_hour for a in measured) / len(measured)
        n = len(measured)
        if ooms or top > mem * 0.9:
            suggested = _round_mib(max(top, mem) * (1.5 if ooms else HEADROOM))
            why = (
                f"{ooms} of {n} attempts were killed for running out of memory"
                if ooms
                else f"peak use reached {top:.0f} MiB ({top / mem:.0%} of the request)"
            )
            return [
                Hint(
                    jd.ref,
                    jd.label,
                    "memory",
                    "under-request",
                    mem,
                    p95,
                    top,
                    suggested,
                    n,
                    0.0,
                    f"{jd.subject} requests {mem} MiB; {why} in {period}. Request "
                    f"{suggested} MiB{jd.flag('--memory', str(suggested))}.",
                )
            ]
        if p95 < mem / 2:
            suggested = _round_mib(top * HEADROOM)
            if suggested >= mem:
                return []
            saving = (mem - suggested) / 1024 * price * hours
            return [
                Hint(
                    jd.ref,
                    jd.label,
                    "memory",
                    "over-request",
                    mem,
                    p95,
                    top,
                    suggested,
                    n,
                    saving,
                    f"{jd.subject} requests {mem} MiB; p95 peak {p95:.0f} MiB (max "
                    f"{top:.0f}) over {n} attempts in {period}. Request {suggested} MiB"
                    f"{jd.flag('--memory', str(suggested))}: {self._money(saving)} less "
                    f"reserved over the same period, at {self._price(price)} per GiB-hour.",
                )
            ]
        return []

    def _symbol(self) -> str:
        cur = self.ctx.settings.currency
        return "$" if cur == "USD" else f"{cur} "

    def _price(self, amount: float) -> str:
        """A price as configured (``$0.024``): never rounded to cents."""
        return f"{self._symbol()}{amount:g}"

    def _money(self, amount: float) -> str:
        sym = self._symbol()
        if amount == 0:
            return f"{sym}0"
        return f"{sym}{amount:.2f}" if amount >= 0.01 else f"{sym}{small_amount(amount)}"


def small_amount(v: float) -> str:
    """A positive amount below one cent with two significant digits, never in exponent form."""
    import math

    digits = max(2, 1 - math.floor(math.log10(abs(v))))
    return f"{v:.{digits}f}"


def _period(ms: int) -> str:
    """``the last 7 days``, ``the last 12 hours``, ``the last hour``, ``the last 30 minutes``."""
    days, hours, minutes = ms / 86_400_000, round(ms / 3_600_000), round(ms / 60_000)
    if days >= 2:
        return f"the last {days:g} days"
    if hours >= 2:
        return f"the last {hours} hours"
    return "the last hour" if minutes >= 45 else f"the last {max(1, minutes)} minutes"


def _grouping(group_by: str) -> Any:
    if group_by.startswith("tag:") and len(group_by) > 4:
        tag = group_by[4:]
        return lambda a: a.tags.get(tag, "(untagged)")
    if group_by not in GROUPS:
        raise InvalidRequest(f"groupBy {group_by!r} is not one of {', '.join(GROUPS)} or tag:<key>")
    if group_by == "day":
        return lambda a: a.day
    attr = "job_id" if group_by == "job" else group_by
    return lambda a: getattr(a, attr) or "(none)"


def _json(value: Any) -> Any:
    if isinstance(value, str):
        import orjson

        return orjson.loads(value)
    return value
