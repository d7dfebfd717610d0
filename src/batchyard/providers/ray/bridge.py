"""The Ray bridge: a small process the server starts per Ray cluster, holding that cluster's
Ray driver connection.

Why a process of its own and not ``ray.init`` inside the server: Ray's driver API allows one
cluster per process; its core worker brings threads, signal handlers and a process exit of its
own when the cluster's head stays unreachable (which must not take the API server down); and
Ray calls block. The bridge keeps all of that out of the server, which talks to it over a
socket pair (:mod:`batchyard.providers.ray.wire`). The bridge owns nothing that matters: the
supervisors on the cluster hold the jobs' state, so a bridge that dies is simply started again.

It also writes the jobs' output: the supervisors' long polls bring ``<epoch-ms> <line>``
records with their byte offsets, which the bridge writes at those offsets into the attempts'
log files (on the server's disk) before it confirms them — a repeated delivery rewrites the
same bytes, and an attempt's exit is reported only after all its output is on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from typing import Any

from batchyard.providers.ray import wire

log = logging.getLogger("batchyard.ray.bridge")
POLL_WAIT = 30.0


class Bridge:
    def __init__(self, address: str, namespace: str, writer: asyncio.StreamWriter) -> None:
        self.address = address
        self.namespace = namespace
        self.writer = writer
        self.actors: dict[str, Any] = {}  # ce -> supervisor handle
        self.pollers: dict[str, asyncio.Task[None]] = {}
        self.remote: Any = None
        self.supervisor_class: Any = None
        self.requested: int | None = None  # the vCPUs last asked of the autoscaler

    # ---- Ray --------------------------------------------------------------------------

    def connect(self) -> None:
        """Blocking: ``ray.init`` (run in a thread)."""
        import ray.cloudpickle

        import ray
        from batchyard.providers import logframe
        from batchyard.providers.ray import remote

        # ship remote.py, and the output framing it uses, to the cluster by value: its nodes
        # need Ray, not batchyard
        ray.cloudpickle.register_pickle_by_value(logframe)
        ray.cloudpickle.register_pickle_by_value(remote)
        self.remote = remote
        ray.init(
            address=self.address,
            namespace=self.namespace,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        self.supervisor_class = ray.remote(remote.Supervisor)

    async def supervisor(self, ce: str) -> Any:
        handle = self.actors.get(ce)
        if handle is None:
            handle = await asyncio.to_thread(self._get_or_create, ce)
            await handle.hello.remote()
            self.actors[ce] = handle
        if ce not in self.pollers or self.pollers[ce].done():
            self.pollers[ce] = asyncio.create_task(self._poll(ce), name=f"poll-{ce}")
        return handle

    def _get_or_create(self, ce: str) -> Any:
        import ray

        options: dict[str, Any] = {
            "name": self.remote.ACTOR_PREFIX + ce,
            "namespace": self.namespace,
            "lifetime": "detached",
            "get_if_exists": True,
            "max_restarts": -1,
            "max_concurrency": 100_000,
            "num_cpus": 0,
        }
        head = "node:__internal_head__"
        if head in ray.cluster_resources():
            options["resources"] = {head: 0.001}  # its fate is the cluster's, nothing more
        return self.supervisor_class.options(**options).remote(ce)

    def _resources(self) -> dict[str, Any]:
        import ray

        nodes = [
            {"id": n["NodeID"], "resources": n.get("Resources") or {}}
            for n in ray.nodes()
            if n.get("Alive")
        ]
        return {
            "total": ray.cluster_resources(),
            "available": ray.available_resources(),
            "nodes": nodes,
        }

    def _request_resources(self, vcpus: int) -> None:
        from ray.autoscaler.sdk import request_resources

        request_resources(num_cpus=vcpus)

    def _named(self) -> list[str]:
        import ray

        prefix = self.remote.ACTOR_PREFIX
        return [n[len(prefix) :] for n in ray.util.list_named_actors() if n.startswith(prefix)]

    # ---- requests ---------------------------------------------------------------------------

    async def handle(self, msg: dict[str, Any]) -> None:
        try:
            result = await getattr(self, "op_" + msg["op"])(msg)
            reply = {"id": msg.get("id"), "ok": True, **(result or {})}
        except Exception as e:
            log.exception("request %s failed", msg.get("op"))
            reply = {"id": msg.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}"}
        if msg.get("id") is not None:
            self.send(reply)

    async def op_check(self, msg: dict[str, Any]) -> dict[str, Any]:
        await self.supervisor(msg["ce"])
        # (checks come every recheck_seconds: the request is passed on when it changed)
        if msg.get("request") is not None and int(msg["request"]) != self.requested:
            try:
                await self.op_scale(msg)
            except Exception as e:  # a cluster without an autoscaler may refuse: not fatal
                log.warning("request_resources failed: %s", e)
        return await asyncio.to_thread(self._resources)

    async def op_scale(self, msg: dict[str, Any]) -> None:
        await asyncio.to_thread(self._request_resources, int(msg["request"]))
        self.requested = int(msg["request"])

    async def op_forget(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A deleted compute environment's supervisor leaves the cluster, unless it still
        runs attempts. Its poll stops first: a poll would create the supervisor again."""
        import ray

        ce = msg["ce"]
        poller = self.pollers.pop(ce, None)
        if poller is not None:
            poller.cancel()
        handle = self.actors.pop(ce, None)
        if handle is None:
            handle = await asyncio.to_thread(self._existing, ce)
            if handle is None:
                return {"removed": False}
        state = await handle.state.remote()
        if state["running"]:
            await self.supervisor(ce)  # keep it, and its poll
            return {"removed": False, "why": f"{len(state['running'])} attempts still run"}
        await asyncio.to_thread(ray.kill, handle, no_restart=True)
        return {"removed": True}

    def _existing(self, ce: str) -> Any:
        import ray

        try:
            return ray.get_actor(self.remote.ACTOR_PREFIX + ce, namespace=self.namespace)
        except ValueError:
            return None

    async def op_launch(self, msg: dict[str, Any]) -> dict[str, Any]:
        sup = await self.supervisor(msg["ce"])
        return {"launched": await sup.launch.remote(msg["items"])}

    async def op_terminate(self, msg: dict[str, Any]) -> None:
        sup = await self.supervisor(msg["ce"])
        await sup.terminate.remote(msg["ids"], msg["grace"])

    async def op_ack(self, msg: dict[str, Any]) -> None:
        sup = await self.supervisor(msg["ce"])
        sup.ack.remote(msg["ids"])

    async def op_state(self, msg: dict[str, Any]) -> dict[str, Any]:
        names = set(await asyncio.to_thread(self._named)) | set(msg.get("ces") or [])
        states = {}
        for ce in sorted(names):
            sup = await self.supervisor(ce)
            states[ce] = await sup.state.remote()
        return {"states": states}

    # ---- the long poll --------------------------------------------------------------------

    async def _poll(self, ce: str) -> None:
        """Receive a supervisor's news as it happens: output (written here), starts, exits."""
        import ray

        cursor, incarnation, failures, greet = 0, None, 0, True
        while True:
            sup = self.actors.get(ce)
            try:
                if sup is None:
                    sup = await self.supervisor(ce)
                if greet:  # (again): is it the supervisor we knew, or a new, empty one?
                    hello = await sup.hello.remote()
                    greet = False
                    if incarnation is not None and hello["incarnation"] != incarnation:
                        cursor = 0
                        self.send({"op": "restarted", "ce": ce, "state": await sup.state.remote()})
                    incarnation = hello["incarnation"]
                batch = await sup.poll.remote(cursor, POLL_WAIT)
            except (ray.exceptions.RayError, ValueError) as e:
                # the supervisor crashed (Ray restarts it, empty: max_restarts=-1) or the
                # cluster is unreachable for a while
                failures += 1
                greet = True
                log.warning("supervisor of %s unavailable (%s); retrying", ce, type(e).__name__)
                self.actors.pop(ce, None)
                await asyncio.sleep(min(5.0, 0.2 * failures))  # back-off, not a poll
                continue
            failures = 0
            if batch["incarnation"] != incarnation:  # restarted between hello and poll
                greet = True
                continue
            started, exited, output = [], [], []
            for kind, payload in batch["events"]:
                if kind == "output":
                    output.append(payload)
                elif kind == "started":
                    started.append(payload)
                elif kind == "exited":
                    exited.append(payload)
            if output:
                await asyncio.to_thread(_write_output, output)
            if started:
                self.send({"op": "started", "ce": ce, "items": started})
            if exited:
                self.send({"op": "exited", "ce": ce, "items": exited})
            cursor = batch["cursor"]

    def send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(wire.encode(message))


def _write_output(items: list[dict[str, Any]]) -> None:
    """Write records at their offsets: idempotent, so a repeated delivery is harmless."""
    fds: dict[str, int] = {}
    try:
        for item in items:
            path = item["log"]
            fd = fds.get(path)
            if fd is None:
                try:
                    fd = fds[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
                except OSError as e:
                    log.error("cannot write the log %s: %s", path, e)
                    continue
            os.pwrite(fd, item["data"], item["offset"])
    finally:
        for fd in fds.values():
            os.close(fd)


async def _main(address: str, namespace: str, fd: int) -> int:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 26)
    bridge = Bridge(address, namespace, writer)
    try:
        await asyncio.to_thread(bridge.connect)
    except Exception as e:
        log.error("cannot connect to the Ray cluster at %s: %s", address, e)
        bridge.send({"op": "failed", "error": f"{type(e).__name__}: {e}"})
        await writer.drain()
        return 2
    bridge.send({"op": "ready", "address": address, "version": wire.VERSION})
    tasks: set[asyncio.Task[None]] = set()
    while True:
        line = await reader.readline()
        if not line:
            break  # the server went away; the supervisors keep the jobs
        task = asyncio.create_task(bridge.handle(wire.decode(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for task in [*tasks, *bridge.pollers.values()]:
        task.cancel()
    with contextlib.suppress(Exception):
        import ray

        ray.shutdown()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="batchyard's Ray bridge (started by the server)")
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--fd", required=True, type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    code = asyncio.run(_main(args.address, args.namespace, args.fd))
    sys.stdout.flush()
    os._exit(code)  # Ray's threads must not keep a bridge without a server alive


if __name__ == "__main__":
    main()
