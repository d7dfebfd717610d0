"""The ``ray`` provider, server side: compute environments backed by Ray clusters.

A compute environment with the tags ``batchyard:provider=ray`` and
``batchyard:ray-address=ADDRESS`` runs its jobs on that Ray cluster (``ADDRESS`` is the
cluster's address, or the name of a cluster in the server's ``ray_clusters`` setting). The
server talks to each cluster through a bridge process (:mod:`batchyard.providers.ray.bridge`);
the jobs themselves belong to a detached supervisor actor per compute environment on the
cluster (:mod:`batchyard.providers.ray.remote`), so they outlive the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchyard.domain.clock import now_ms
from batchyard.domain.resources import MANAGED, ComputeEnvironment
from batchyard.providers.base import (
    ActiveAttempt,
    Capacity,
    Check,
    Events,
    Exited,
    LaunchSpec,
    Provider,
    Started,
)
from batchyard.providers.exits import exited
from batchyard.providers.ray import wire

log = logging.getLogger(__name__)

ADDRESS_TAG = "batchyard:ray-address"
DEFAULT_GCS_PORT = 6379
CONNECT_SECONDS = 60.0  # a bridge's start: Python, import ray, ray.init
CALL_SECONDS = 60.0
CONNECT_TRIES = 2
RECHECK_SECONDS = 15.0  # how often a compute environment's capacity is read again
MAIN_ADDRESS = "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"
ZERO = Capacity(0.0, 0, 0)
LOST = (
    "the Ray cluster no longer knows the job's task (the cluster or its batchyard supervisor "
    "was restarted); its exit status is lost"
)


class RayUnavailable(Exception):
    """The Ray cluster (or the bridge to it) cannot be used right now; the message says why."""


def gcs_address(address: str) -> str:
    """The address ``ray.init`` takes for what a user wrote: ``ray://host:10001`` (Ray Client)
    and ``auto`` as they are; ``host:port`` as is; ``host`` → ``host:6379``; a dashboard URL
    ``http://host:8265`` → ``host:6379`` (the head's default GCS port: the dashboard does
    not say which port the GCS uses, so name it explicitly when it is not the default)."""
    address = address.strip()
    if address.startswith("ray://") or address == "auto":
        return address.rstrip("/")
    for scheme in ("http://", "https://"):
        if address.startswith(scheme):
            host = address[len(scheme) :].split("/", 1)[0].rsplit(":", 1)[0]
            return f"{host}:{DEFAULT_GCS_PORT}"
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or host.endswith(":"):  # "host" or a bare IPv6 address
        return f"{address}:{DEFAULT_GCS_PORT}"
    return address


def _endpoint(address: str) -> tuple[str, int] | None:
    if address == "auto":
        return None
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


class _Bridge:
    """One bridge process and the socket pair to it."""

    def __init__(self, address: str, on_event: Callable[[str, dict[str, Any]], None]) -> None:
        self.address = address
        self.on_event = on_event
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.ready: asyncio.Future[dict[str, Any]] | None = None
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.lost: Callable[[_Bridge], None] | None = None

    async def start(self, namespace: str, log_path: Path) -> None:
        ours, theirs = socket.socketpair()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "batchyard.providers.ray.bridge",
                "--address",
                self.address,
                "--namespace",
                namespace,
                "--fd",
                str(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        theirs.close()
        self.reader, self.writer = await asyncio.open_connection(sock=ours, limit=1 << 26)
        self.ready = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._read(), name=f"ray-bridge-{self.address}")
        try:
            hello = await asyncio.wait_for(asyncio.shield(self.ready), CONNECT_SECONDS)
        except TimeoutError:
            await self.close()
            raise RayUnavailable(
                f"no connection within {CONNECT_SECONDS:.0f} s (see {log_path})"
            ) from None
        if hello.get("op") != "ready":
            await self.close()
            raise RayUnavailable(hello.get("error") or f"the bridge failed (see {log_path})")

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                msg = wire.decode(line)
                if "id" in msg and msg.get("op") is None:
                    fut = self.calls.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif msg.get("op") in ("ready", "failed"):
                    if self.ready is not None and not self.ready.done():
                        self.ready.set_result(msg)
                else:
                    self.on_event(self.address, msg)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Ray bridge connection to %s failed", self.address)
        if self.ready is not None and not self.ready.done():
            self.ready.set_result({"op": "failed", "error": "the bridge exited while starting"})
        for fut in self.calls.values():
            if not fut.done():
                fut.set_exception(RayUnavailable("the bridge to the Ray cluster exited"))
        self.calls.clear()
        if not self.closing and self.lost is not None:
            self.lost(self)

    def send(self, msg: dict[str, Any]) -> None:
        if self.writer is None or self.writer.is_closing():
            raise RayUnavailable("the bridge to the Ray cluster is not connected")
        self.writer.write(wire.encode(msg))

    async def call(self, msg: dict[str, Any], timeout: float = CALL_SECONDS) -> dict[str, Any]:
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.calls[self.next_id] = fut
        self.send({**msg, "id": self.next_id})
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self.calls.pop(self.next_id, None)
            raise RayUnavailable(f"the Ray cluster did not answer within {timeout:.0f} s") from None
        if not reply.get("ok"):
            raise RayUnavailable(reply.get("error") or "the request failed")
        return reply

    async def close(self) -> None:
        self.closing = True
        if self.writer is not None:
            self.writer.close()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class RayProvider(Provider):
    name = "ray"

    def __init__(
        self,
        home: Path,
        namespace: str,
        clusters: dict[str, str] | None = None,
        log_limit_bytes: int = 1 << 30,
        recheck_seconds: float | None = RECHECK_SECONDS,
    ) -> None:
        self.home = home
        # nodes join and leave a cluster: its compute environments are checked again this often
        self.recheck_seconds = recheck_seconds
        self.namespace = namespace
        self.clusters = dict(clusters or {})
        self.log_limit_bytes = log_limit_bytes
        self.events: Events | None = None
        self._bridges: dict[str, _Bridge] = {}
        self._starting: dict[str, asyncio.Future[_Bridge]] = {}
        self._where: dict[int, tuple[str, str]] = {}  # attempt -> (address, compute environment)
        self._ce_address: dict[str, str] = {}
        self._nodes: dict[str, list[dict[str, Any]]] = {}  # address -> alive nodes' resources
        self._demand: dict[str, dict[str, int]] = {}  # address -> ce -> vCPUs for the autoscaler
        self._scaling: dict[str, asyncio.Future[None]] = {}  # address -> request under way
        self._scale_again: set[str] = set()  # addresses whose demand changed meanwhile
        self._rechecks: dict[str, asyncio.TimerHandle] = {}  # ce -> wake-up for its recheck
        self._background: set[asyncio.Task[Any]] = set()

    # ---- where a compute environment runs -------------------------------------------------

    def address_of(self, ce: ComputeEnvironment) -> tuple[str | None, str]:
        """The cluster address for ``ce``, or None and why not."""
        tag = ce.tags.get(ADDRESS_TAG)
        if tag is None:
            if "default" in self.clusters:
                tag = "default"
            elif len(self.clusters) == 1:
                tag = next(iter(self.clusters))
            else:
                named = ", ".join(sorted(self.clusters)) or "none are configured"
                return None, (
                    f"tag {ADDRESS_TAG} is missing: set it to the Ray cluster's address "
                    "(host:6379, ray://host:10001, http://host:8265) or to the name of a "
                    f"cluster of the server's ray_clusters setting ({named})"
                )
        return gcs_address(self.clusters.get(tag, tag)), ""

    @staticmethod
    def pool_of(address: str) -> str:
        return f"ray:{address}"

    # ---- bridges ---------------------------------------------------------------------------

    async def _bridge(self, address: str) -> _Bridge:
        bridge = self._bridges.get(address)
        if bridge is not None:
            return bridge
        pending = self._starting.get(address)
        if pending is None:
            pending = asyncio.ensure_future(self._start_bridge(address))
            self._starting[address] = pending
            pending.add_done_callback(lambda _: self._starting.pop(address, None))
        return await asyncio.shield(pending)

    async def _start_bridge(self, address: str) -> _Bridge:
        endpoint = _endpoint(address)
        if endpoint is not None:
            try:
                await asyncio.to_thread(_probe, *endpoint)
            except OSError as e:
                raise RayUnavailable(
                    f"nothing answers at {endpoint[0]}:{endpoint[1]} ({e.strerror or e})"
                ) from None
        digest = hashlib.sha1(address.encode()).hexdigest()[:10]
        for attempt in range(1, CONNECT_TRIES + 1):
            bridge = _Bridge(address, self._on_event)
            try:
                await bridge.start(self.namespace, self.home / f"bridge-{digest}.log")
                bridge.lost = self._bridge_lost  # from now on a lost bridge is replaced
                break
            except RayUnavailable as e:
                if attempt == CONNECT_TRIES:
                    raise
                # Ray Client's proxy in particular fails now and then while it starts a server
                log.warning("connecting to the Ray cluster at %s failed (%s); again", address, e)
                await asyncio.sleep(attempt)
        self._bridges[address] = bridge
        log.info("connected to the Ray cluster at %s (namespace %s)", address, self.namespace)
        return bridge

    def _bridge_lost(self, bridge: _Bridge) -> None:
        """The bridge died: start another and learn what ended meanwhile."""
        if self._bridges.get(bridge.address) is bridge:
            del self._bridges[bridge.address]
        log.warning("the Ray bridge for %s exited; reconnecting", bridge.address)
        mine = [a for a, (addr, _) in self._where.items() if addr == bridge.address]
        self._spawn(self._resync(bridge.address, mine))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- events from the bridges ------------------------------------------------------------

    def _on_event(self, address: str, msg: dict[str, Any]) -> None:
        if self.events is None:
            return
        op, ce = msg.get("op"), msg.get("ce", "")
        if op == "started":
            items = []
            for i in msg["items"]:
                self._where[i["id"]] = (address, ce)
                ref = _ref(address, ce, i.get("node"), i)
                if i.get("placement_group"):
                    log.info(
                        "attempt %s (a node of a multi-node job) runs on Ray node %s in "
                        "placement group %s (%s)",
                        i["id"],
                        i.get("node"),
                        i["placement_group"],
                        i.get("strategy"),
                    )
                items.append(Started(i["id"], i["at"], ref))
            self.events.started(items)
        elif op == "exited":
            for i in msg["items"]:
                self._where[i["id"]] = (address, ce)
            self.events.exited([exited(i) for i in msg["items"]])
        elif op == "restarted":
            self._lost_in(address, {ce}, {ce: msg["state"]})

    def _lost_in(
        self,
        address: str,
        ces: set[str] | None,
        states: dict[str, dict[str, Any]],
        among: set[int] | None = None,
    ) -> None:
        """Attempts we handed to these supervisors that they no longer know are lost."""
        assert self.events is not None
        known = {i["id"] for st in states.values() for i in (*st["running"], *st["exits"])}
        lost = [
            a
            for a, (addr, ce) in self._where.items()
            if addr == address
            and (ces is None or ce in ces)
            and (among is None or a in among)
            and a not in known
        ]
        if lost:
            log.error("%d attempts on the Ray cluster %s are lost", len(lost), address)
            self.events.exited([Exited(a, now_ms(), None, reason=LOST) for a in lost])

    async def _resync(self, address: str, attempts: list[int]) -> None:
        delay = 0.5
        while True:
            try:
                bridge = await self._bridge(address)
                reply = await bridge.call({"op": "state"}, CALL_SECONDS * 2)
                break
            except RayUnavailable as e:
                log.warning("Ray cluster %s unavailable (%s); retry in %.0f s", address, e, delay)
                await asyncio.sleep(delay)  # back-off between reconnections, not a poll
                delay = min(30.0, delay * 2)
        self._lost_in(address, None, reply["states"], among=set(attempts))
        # exits the supervisors still hold (e.g. an acknowledgement lost with the old bridge):
        # reported again, the scheduler settles what it has not and acknowledges them all
        held = [(ce, e) for ce, state in reply["states"].items() for e in state["exits"]]
        for ce, e in held:
            self._where[e["id"]] = (address, ce)
        if held and self.events is not None:
            self.events.exited([exited(e) for _, e in held])

    # ---- the provider interface ---------------------------------------------------------------

    async def start(self, events: Events) -> None:
        self.events = events

    async def check(self, ce: ComputeEnvironment) -> Check:
        address, why = self.address_of(ce)
        if address is None:
            return Check(False, why, ZERO)
        self._recheck_later(ce.name)
        request = None
        cr = ce.compute_resources or {}
        if ce.type == MANAGED:
            want = int(cr.get("desired_vcpus") or cr.get("min_vcpus") or 0)
            self._demand.setdefault(address, {})[ce.name] = want
            request = sum(self._demand[address].values())
        try:
            bridge = await self._bridge(address)
            info = await bridge.call({"op": "check", "ce": ce.name, "request": request})
        except RayUnavailable as e:
            return Check(False, f"the Ray cluster at {address} cannot be used: {e}", ZERO)
        self._ce_address[ce.name] = address
        nodes = info["nodes"]
        self._nodes[address] = nodes
        total = info["total"]
        cluster = Capacity(
            vcpus=float(total.get("CPU", 0)),
            memory_mib=int(total.get("memory", 0)) // 2**20,
            gpus=int(total.get("GPU", 0)),
        )
        declared = ce.max_vcpus
        vcpus = cluster.vcpus if declared is None else min(float(declared), cluster.vcpus)
        cap = Capacity(vcpus=vcpus, memory_mib=cluster.memory_mib, gpus=cluster.gpus)
        if declared is None:
            bound = f"all {cluster.vcpus:g} CPUs of the cluster"
        elif declared > cluster.vcpus:
            bound = f"maxvCpus {declared} capped at the cluster's {cluster.vcpus:g} CPUs"
        else:
            bound = f"maxvCpus {declared}; the cluster has {cluster.vcpus:g} CPUs"
        big = max(nodes, key=lambda n: n["resources"].get("CPU", 0), default=None)
        largest = (
            f"; largest node {big['resources'].get('CPU', 0):g} CPUs, "
            f"{int(big['resources'].get('memory', 0)) // 2**20:,} MiB"
            if big
            else ""
        )
        scale = f"; {request} vCPUs requested from Ray's autoscaler" if request else ""
        reason = (
            f"ComputeEnvironment Healthy: Ray cluster {address} with {len(nodes)} nodes alive "
            f"({cluster.describe()}{largest}); usable capacity {cap.describe()} ({bound}){scale}"
        )
        return Check(True, reason, cap, pool=self.pool_of(address), pool_capacity=cluster)

    def _recheck_later(self, name: str) -> None:
        """Wake the scheduler when ``name``'s recheck is due.

        A workaround: the resource reconciler arms its recheck timer only on passes that get
        past its early return, and the scheduler keeps only the earliest timer, so on an idle
        server a recheck is otherwise not seen before the next resource change or the 60 s
        housekeeping (see docs/ray.md). A wake-up with no news is a cheap pass; remove this
        once the reconciler re-arms its timer on every pass."""
        if not self.recheck_seconds or self.events is None:
            return
        old = self._rechecks.pop(name, None)
        if old is not None:
            old.cancel()
        self._rechecks[name] = asyncio.get_running_loop().call_later(
            self.recheck_seconds + 0.05, self._recheck_due, name
        )

    def _recheck_due(self, name: str) -> None:
        self._rechecks.pop(name, None)
        if self.events is not None:
            self.events.started([])  # no news: only wakes the scheduler's loop

    def claim_ref(self, compute_environment: str) -> dict[str, Any]:
        """Where a claimed attempt will run, for a reconcile that comes before it starts."""
        address = self._ce_address.get(compute_environment)
        return _ref(address, compute_environment, None) if address else {}

    async def scale(self, ce: ComputeEnvironment, vcpus: int) -> None:
        """The scheduler's desiredvCpus for ``ce`` (its queues' demand, clamped to
        minvCpus..maxvCpus): the cluster's compute environments' sum goes to Ray's
        autoscaler. Returns at once; the request is passed on in the background (the
        scheduler's pass must not wait for a cluster), and changes that come meanwhile are
        sent together once it is through."""
        address = self._ce_address.get(ce.name)
        if address is None:
            return  # not checked yet: its check passes desiredvCpus on
        self._demand.setdefault(address, {})[ce.name] = int(vcpus)
        self._request_resources(address)

    def _request_resources(self, address: str) -> None:
        self._scale_again.add(address)
        if address not in self._scaling:
            self._scaling[address] = asyncio.ensure_future(self._send_requests(address))

    async def _send_requests(self, address: str) -> None:
        try:
            while address in self._scale_again:
                self._scale_again.discard(address)
                total = sum(self._demand.get(address, {}).values())
                try:
                    bridge = await self._bridge(address)
                    await bridge.call({"op": "scale", "request": total})
                except RayUnavailable as e:
                    log.warning(
                        "cannot ask the autoscaler of the Ray cluster %s for %d vCPUs: %s",
                        address,
                        total,
                        e,
                    )
                    return  # the next change or check asks again
        finally:
            self._scaling.pop(address, None)

    async def forget(self, ce: ComputeEnvironment) -> None:
        """``ce`` was deleted: its supervisor actor leaves the cluster (in the background: a
        cluster that does not answer must not hold up the server), and its demand no longer
        counts for the autoscaler."""
        timer = self._rechecks.pop(ce.name, None)
        if timer is not None:
            timer.cancel()
        address = self._ce_address.pop(ce.name, None) or self.address_of(ce)[0]
        if address is None:
            return
        if self._demand.get(address, {}).pop(ce.name, None) is not None:
            self._request_resources(address)
        self._spawn(self._forget(address, ce.name))

    async def _forget(self, address: str, name: str) -> None:
        try:
            bridge = await self._bridge(address)
            reply = await bridge.call({"op": "forget", "ce": name})
        except RayUnavailable as e:
            log.warning(
                "cannot remove the supervisor of deleted compute environment %s from the Ray "
                "cluster %s: %s",
                name,
                address,
                e,
            )
            return
        if reply.get("removed"):
            log.info("removed the supervisor of deleted compute environment %s", name)
        elif reply.get("why"):
            log.warning("kept the supervisor of compute environment %s: %s", name, reply["why"])

    async def launch(self, specs: list[LaunchSpec]) -> None:
        assert self.events is not None
        by_ce: dict[str, list[LaunchSpec]] = {}
        for s in specs:
            by_ce.setdefault(s.compute_environment, []).append(s)
        for ce, group in by_ce.items():
            address = self._ce_address.get(ce)
            if address is None:
                self._fail(
                    group,
                    f"compute environment {ce} has not been checked by the ray "
                    "provider of this server",
                )
                continue
            runnable, refused = [], []
            for s in group:
                # a gang's nodes are checked all together by the supervisor, on fresh nodes
                fits = s.gang is not None or self._fits_a_node(address, s)
                (runnable if fits else refused).append(s)
            if refused:
                self._fail(
                    refused,
                    "CannotStartContainerError: no node of the Ray cluster "
                    f"{address} is big enough for the job's resource requirements ("
                    f"{{}}); Ray would keep its task waiting forever",
                    detail=True,
                )
            if not runnable:
                continue
            items = [
                {
                    "id": s.attempt_id,
                    "job": s.job_id,
                    "attempt": s.attempt,
                    "argv": s.argv,
                    "env": s.env,
                    "log": s.log_path,
                    "log_limit": self.log_limit_bytes,
                    "vcpus": s.vcpus,
                    "memory_mib": s.memory_mib,
                    "gpus": s.gpus,
                    **_gang(s),
                }
                for s in runnable
            ]
            for s in runnable:
                self._where[s.attempt_id] = (address, ce)
            try:
                bridge = await self._bridge(address)
                await bridge.call({"op": "launch", "ce": ce, "items": items})
            except RayUnavailable as e:
                for s in runnable:
                    self._where.pop(s.attempt_id, None)
                self._fail(
                    runnable, f"the job could not be handed to the Ray cluster at {address}: {e}"
                )

    def _fits_a_node(self, address: str, s: LaunchSpec) -> bool:
        nodes = self._nodes.get(address)
        if not nodes:
            return True  # nothing known: let Ray decide
        for n in nodes:
            r = n["resources"]
            if (
                r.get("CPU", 0) >= s.vcpus
                and r.get("memory", 0) >= s.memory_mib * 2**20
                and r.get("GPU", 0) >= s.gpus
            ):
                return True
        return False

    def _fail(self, specs: list[LaunchSpec], reason: str, detail: bool = False) -> None:
        assert self.events is not None
        self.events.exited(
            [
                Exited(
                    s.attempt_id,
                    now_ms(),
                    None,
                    reason=reason.format(f"{s.vcpus:g} vCPUs, {s.memory_mib} MiB, {s.gpus} GPUs")
                    if detail
                    else reason,
                )
                for s in specs
            ]
        )

    async def terminate(self, attempt_ids: list[int], grace_seconds: float) -> None:
        for (address, ce), ids in self._group(attempt_ids).items():
            try:
                bridge = await self._bridge(address)
                await bridge.call({"op": "terminate", "ce": ce, "ids": ids, "grace": grace_seconds})
            except RayUnavailable as e:
                log.error("cannot terminate %s on the Ray cluster %s: %s", ids, address, e)

    def acknowledge(self, attempt_ids: list[int]) -> None:
        for (address, ce), ids in self._group(attempt_ids).items():
            for a in ids:
                self._where.pop(a, None)
            bridge = self._bridges.get(address)
            if bridge is not None:
                with contextlib.suppress(RayUnavailable):
                    bridge.send({"op": "ack", "ce": ce, "ids": ids})

    def _group(self, attempt_ids: list[int]) -> dict[tuple[str, str], list[int]]:
        groups: dict[tuple[str, str], list[int]] = {}
        for a in attempt_ids:
            where = self._where.get(a)
            if where is not None:
                groups.setdefault(where, []).append(a)
        return groups

    async def reconcile(self, active: list[ActiveAttempt]) -> None:
        """Ask the supervisors of each cluster the store's attempts ran on what became of
        them. A cluster that cannot be reached now is asked again in the background (with
        back-off) until it answers; its attempts stay as they are meanwhile."""
        by_address: dict[str, list[ActiveAttempt]] = {}
        for a in active:
            address = _address_of_ref(a.ref) or self._ce_address.get(a.compute_environment)
            if address is None:
                log.error("attempt %s has no Ray address in its record; it is lost", a.attempt_id)
                assert self.events is not None
                self.events.exited([Exited(a.attempt_id, now_ms(), None, reason=LOST)])
                continue
            by_address.setdefault(address, []).append(a)
        for address, items in by_address.items():
            try:
                await self._reconcile(address, items)
            except RayUnavailable as e:
                log.error("cannot reconcile with the Ray cluster %s yet: %s", address, e)
                self._spawn(self._reconcile_later(address, items))

    async def _reconcile_later(self, address: str, items: list[ActiveAttempt]) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)  # back-off between reconnections, not a poll
            try:
                await self._reconcile(address, items)
                return
            except RayUnavailable as e:
                log.warning("Ray cluster %s still unavailable: %s", address, e)
                delay = min(30.0, delay * 2)

    async def _reconcile(self, address: str, items: list[ActiveAttempt]) -> None:
        assert self.events is not None
        bridge = await self._bridge(address)
        ces = sorted({a.compute_environment or (a.ref or {}).get("ce") for a in items} - {None, ""})
        reply = await bridge.call({"op": "state", "ces": ces}, CALL_SECONDS * 2)
        # Where these compute environments run, before their checks say so: a multi-node
        # job's nodes that wait for their main node are launched on the first pass.
        for ce in [*ces, *reply["states"]]:
            self._ce_address.setdefault(ce, address)
        running: dict[int, tuple[str, dict[str, Any]]] = {}
        exits: dict[int, tuple[str, dict[str, Any]]] = {}
        for ce, state in reply["states"].items():
            for r in state["running"]:
                running[r["id"]] = (ce, r)
            for e in state["exits"]:
                exits[e["id"]] = (ce, e)
        started, ended = [], []
        for a in items:
            if a.attempt_id in exits:
                continue  # reported below
            if a.attempt_id in running:
                ce, r = running[a.attempt_id]
                self._where[a.attempt_id] = (address, ce)
                if a.status == "STARTING" and r["begun"]:
                    # (with the address: a main node's others find it by that)
                    started.append(Started(a.attempt_id, r["at"], _ref(address, ce, r["node"], r)))
                continue
            if a.status == "STARTING":  # claimed, never handed to Ray: it may simply run again
                ended.append(Exited(a.attempt_id, now_ms(), None, never_started=True))
            else:
                ended.append(Exited(a.attempt_id, now_ms(), None, reason=LOST))
        known = {a.attempt_id for a in items}
        strays: dict[str, list[int]] = {}
        for aid, (ce, _) in running.items():
            if aid not in known:  # runs for a job the store no longer has active: stop it
                strays.setdefault(ce, []).append(aid)
        for ce, ids in strays.items():
            log.warning("stopping %d stray attempts on %s (%s)", len(ids), address, ce)
            await bridge.call({"op": "terminate", "ce": ce, "ids": ids, "grace": 0})
        for aid, (ce, _) in exits.items():
            self._where[aid] = (address, ce)
        if started:
            self.events.started(started)
        ended += [exited(e) for _, e in exits.values()]
        if ended:
            self.events.exited(ended)

    async def close(self) -> None:
        for timer in self._rechecks.values():
            timer.cancel()
        self._rechecks.clear()
        for task in [*self._background, *self._scaling.values()]:
            task.cancel()
        for bridge in list(self._bridges.values()):
            await bridge.close()
        self._bridges.clear()


def _ref(
    address: str, ce: str, node: str | None, info: dict[str, Any] | None = None
) -> dict[str, Any]:
    ref = {"address": address, "ce": ce, "node": node}
    # the node's address (a multi-node job's nodes find their main node by it), and for such
    # a node its placement group and strategy
    for key, value in (info or {}).items():
        if key in ("ip", "placement_group", "strategy") and value:
            ref[key] = value
    return ref


def _gang(s: LaunchSpec) -> dict[str, Any]:
    """What the supervisor needs of a multi-node job's node: which gang (the job and its
    attempt), which bundle, every node's needs (the main node reserves them all)."""
    if s.gang is None:
        return {}
    main = s.env.get("AWS_BATCH_JOB_MAIN_NODE_INDEX")
    return {
        "gang": s.gang,
        "node_index": s.node_index,
        "gang_needs": [list(n) for n in s.gang_needs or ()],
        "main": str(s.node_index) == main if main is not None else MAIN_ADDRESS not in s.env,
    }


def _address_of_ref(ref: dict[str, Any] | None) -> str | None:
    ref = ref or {}
    if ref.get("address"):
        return ref["address"]
    pool = ref.get("pool") or ""
    return pool[len("ray:") :] if pool.startswith("ray:") else None


def _probe(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=5):
        pass
