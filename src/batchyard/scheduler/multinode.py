"""Multi-node parallel jobs in the job pass (AWS Batch's rules).

A multi-node job is placed as a gang: all its nodes fit in one compute environment, or none
starts. The main node is launched first; once it runs, the other nodes are launched with its
address in ``AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS``. Each node ends SUCCEEDED or FAILED
by its own exit code; when the main node ends, the other nodes are stopped, and the job takes
the main node's outcome — retried as a whole (all nodes start over) when the retry strategy
says so. The capacity of nodes waiting for the main node is held for them meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from batchyard.domain.jobs import TERMINAL, Job, JobStatus
from batchyard.providers.base import Exited, LaunchSpec, Started
from batchyard.scheduler import plan as planner
from batchyard.store import jobs as repo

if TYPE_CHECKING:
    from batchyard.scheduler.jobs import JobScheduler, Running

S = JobStatus
STOPPED_REASON = "Stopped: the main node of the multi-node job finished"
NEVER_REASON = "The main node finished before this node started"


@dataclass(slots=True)
class Held:
    """Capacity held for a node that waits for its main node to run."""

    node_seq: int
    parent_seq: int
    environment: str
    provider: str
    pool: str
    need: planner.Amount
    number: int


class MultiNode:
    """Mixed into :class:`JobScheduler`; ``self`` is the scheduler."""

    held: dict[int, Held]
    main_ended: dict[int, tuple[Exited, Running]]

    def _gang_need(self: JobScheduler, conn: Connection, parent_seq: int) -> planner.Amount:
        total = planner.Amount(0.0, 0, 0)
        for node in repo.nodes_of(conn, parent_seq):
            total = planner.Amount(
                total.vcpus + node.vcpus, total.memory_mib + node.memory_mib, total.gpus + node.gpus
            )
        return total

    def _claim_multinode(
        self: JobScheduler, conn: Connection, parent: Job, ce: Any, pool: str, number: int, now: int
    ) -> list[tuple[Running, LaunchSpec]]:
        """The parent is STARTING: launch its main node, hold room for the others."""
        nodes = repo.nodes_of(conn, parent.seq)
        main_index = (parent.spec.get("node_properties") or {}).get("main_node", 0)
        changes = []
        for node in nodes:
            if node.status == S.PENDING:
                changes.append(
                    repo.Change(
                        node.seq,
                        node.id,
                        S.PENDING,
                        S.RUNNABLE,
                        "Waiting for the main node to start",
                        node=True,
                    )
                )
        main = next(n for n in nodes if n.node_index == main_index)
        changes.append(
            repo.Change(
                main.seq,
                main.id,
                S.RUNNABLE,
                S.STARTING,
                None,
                {"attempt_count": number, "status_reason": None},
                node=True,
            )
        )
        repo.apply_transitions(conn, changes, now)
        for node in nodes:
            if node.seq != main.seq:
                self.held[node.seq] = Held(
                    node.seq,
                    parent.seq,
                    ce.name,
                    ce.provider,
                    pool,
                    planner.Amount(node.vcpus, node.memory_mib, node.gpus),
                    number,
                )
        return [self._claim_node(conn, main, parent, ce.name, ce.provider, pool, number, main=True)]

    def _claim_node(
        self: JobScheduler,
        conn: Connection,
        node: Job,
        parent: Job,
        environment: str,
        provider: str,
        pool: str,
        number: int,
        main: bool,
        main_address: str | None = None,
    ) -> tuple[Running, LaunchSpec]:
        from batchyard.scheduler.jobs import Running

        stream = self.logs.new_stream(self._definition_name(conn, node.definition_id))
        attempt_id = repo.insert_attempt(
            conn,
            node.seq,
            number,
            environment,
            provider,
            stream,
            {"pool": pool, **self.providers[provider].claim_ref(environment)},
        )
        r = Running(
            attempt_id=attempt_id,
            job_seq=node.seq,
            job_id=node.id,
            parent_seq=None,
            number=number,
            environment=environment,
            provider=provider,
            pool=pool,
            need=planner.Amount(node.vcpus, node.memory_mib, node.gpus),
            mnp=parent.seq,
            main=main,
        )
        self.running[attempt_id] = r
        spec = self._launch_spec(conn, node, r, stream)
        env = dict(spec.env)
        props = parent.spec.get("node_properties") or {}
        env.update(
            AWS_BATCH_JOB_NODE_INDEX=str(node.node_index),
            AWS_BATCH_JOB_NUM_NODES=str(props.get("num_nodes", parent.num_nodes)),
            AWS_BATCH_JOB_MAIN_NODE_INDEX=str(props.get("main_node", 0)),
        )
        if not main:
            env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = main_address or "127.0.0.1"
        gang = tuple((n.vcpus, n.memory_mib, n.gpus) for n in repo.nodes_of(conn, parent.seq))
        return r, LaunchSpec(
            **{
                **_fields(spec),
                "env": env,
                "node_index": node.node_index,
                "gang": parent.id,
                "gang_needs": gang,
            }
        )

    def _start_children(
        self: JobScheduler, conn: Connection, main: Running, started: Started, now: int
    ) -> list[tuple[Running, LaunchSpec]]:
        """The main node runs: so does the job, and its other nodes start."""
        assert main.mnp is not None
        parent = repo.jobs_by_seqs(conn, [main.mnp])[main.mnp]
        repo.apply_transitions(
            conn,
            [
                repo.Change(
                    parent.seq, parent.id, S.STARTING, S.RUNNING, None, {"started_at": started.at}
                )
            ],
            now,
        )
        held = [h for h in self.held.values() if h.parent_seq == parent.seq]
        nodes = repo.jobs_by_seqs(conn, [h.node_seq for h in held])
        address = started.ref.get("ip") or "127.0.0.1"
        claims, changes = [], []
        for h in held:
            del self.held[h.node_seq]
            node = nodes[h.node_seq]
            changes.append(
                repo.Change(
                    node.seq,
                    node.id,
                    S.RUNNABLE,
                    S.STARTING,
                    None,
                    {"attempt_count": h.number, "status_reason": None},
                    node=True,
                )
            )
            claims.append(
                self._claim_node(
                    conn,
                    node,
                    parent,
                    h.environment,
                    h.provider,
                    h.pool,
                    h.number,
                    main=False,
                    main_address=address,
                )
            )
        repo.apply_transitions(conn, changes, now)
        return claims

    def _settle_node(
        self: JobScheduler, job: Job, r: Running, e: Exited, src: S
    ) -> tuple[repo.Change, str, str, list[Running]]:
        """A node ended: its own status by its exit code (a node is never retried alone).
        When it is the main node, the others are to be stopped."""
        from batchyard.scheduler.jobs import EXITED_REASON

        ok = e.exit_code == 0
        why = EXITED_REASON if e.exit_code is not None else (e.reason or "the node could not run")
        if not r.main and r.mnp in self.main_ended:
            why = STOPPED_REASON if not ok else why
        change = repo.Change(
            job.seq,
            job.id,
            src,
            S.SUCCEEDED if ok else S.FAILED,
            why,
            {"stopped_at": e.at},
            node=True,
        )
        kills: list[Running] = []
        if r.main:
            assert r.mnp is not None
            self.main_ended[r.mnp] = (e, r)
            for other in self.running.values():
                if other.mnp == r.mnp and other is not r and not other.kill_sent:
                    other.kill_sent = True
                    kills.append(other)
        return change, "SUCCEEDED" if ok else "FAILED", why, kills

    def _node_never_started(
        self: JobScheduler, conn: Connection, node: Job, r: Running
    ) -> list[repo.Change]:
        """A restart came between claiming a node and launching it: claim it again."""
        assert r.mnp is not None
        changes = [
            repo.Change(
                node.seq,
                node.id,
                S.STARTING,
                S.RUNNABLE,
                "Waiting for the main node to start",
                node=True,
            )
        ]
        parent = repo.jobs_by_seqs(conn, [r.mnp]).get(r.mnp)
        if parent is None or parent.status in TERMINAL:
            return changes
        if r.main:  # the whole job goes back to the queue
            for h in [h for h in self.held.values() if h.parent_seq == r.mnp]:
                del self.held[h.node_seq]
            changes.append(
                repo.Change(
                    parent.seq,
                    parent.id,
                    S.STARTING,
                    S.RUNNABLE,
                    "Returned to the queue: the server restarted before the job started",
                    {"attempt_count": max(0, parent.attempt_count - 1)},
                )
            )
        else:  # launched again once the main node is known to run
            self.held[node.seq] = Held(
                node.seq, r.mnp, r.environment, r.provider, r.pool, r.need, r.number
            )
            self._launch_children.append(r.mnp)
        return changes

    def _decide_multinode(self: JobScheduler, conn: Connection, now: int) -> set[int]:
        """Jobs whose main node ended and whose other nodes all stopped take the main node's
        outcome (retried as a whole, or finished). Returns the jobs that finished."""
        finished: set[int] = set()
        busy = {r.mnp for r in self.running.values() if r.mnp is not None}
        for parent_seq in [p for p in self.main_ended if p not in busy]:
            e, main = self.main_ended.pop(parent_seq)
            parent = repo.jobs_by_seqs(conn, [parent_seq]).get(parent_seq)
            if parent is None or parent.status in TERMINAL:
                continue
            src = parent.status
            changes = []
            if src == S.STARTING:
                changes.append(
                    repo.Change(
                        parent.seq,
                        parent.id,
                        S.STARTING,
                        S.RUNNING,
                        None,
                        {"started_at": main.started_at or e.at},
                    )
                )
                src = S.RUNNING
            change, _, _ = self._outcome(parent, main, e, src)
            changes.append(change)
            nodes = repo.nodes_of(conn, parent_seq)
            for h in [h for h in self.held.values() if h.parent_seq == parent_seq]:
                del self.held[h.node_seq]
            for node in nodes:
                if change.dst == S.RUNNABLE and node.status in TERMINAL:
                    changes.append(
                        repo.Change(
                            node.seq,
                            node.id,
                            node.status,
                            S.RUNNABLE,
                            "Retrying with the multi-node job",
                            node=True,
                        )
                    )
                elif change.dst != S.RUNNABLE and node.status in (S.PENDING, S.RUNNABLE):
                    changes.append(
                        repo.Change(
                            node.seq, node.id, node.status, S.FAILED, NEVER_REASON, node=True
                        )
                    )
            for c in repo.apply_transitions(conn, changes, now):
                if c.seq == parent_seq and c.dst in TERMINAL:
                    finished.add(c.seq)
        return finished

    def _rebuild_multinode(self: JobScheduler, conn: Connection) -> list[int]:
        """After a restart: hold room again for nodes waiting for their main node, and note
        jobs whose main node ended while nobody watched. Returns parents whose main node
        already runs (their waiting nodes are launched on the first pass)."""
        launch_now = []
        for parent in repo.active_multinode(conn):
            nodes = repo.nodes_of(conn, parent.seq)
            main_index = (parent.spec.get("node_properties") or {}).get("main_node", 0)
            main = next((n for n in nodes if n.node_index == main_index), None)
            attempts = repo.attempts_of(conn, [n.seq for n in nodes])
            main_attempts = attempts.get(main.seq, []) if main else []
            last = main_attempts[-1] if main_attempts else None
            if last is None:
                continue
            for node in nodes:
                if node.status == S.RUNNABLE and node.seq != main.seq:  # type: ignore[union-attr]
                    self.held[node.seq] = Held(
                        node.seq,
                        parent.seq,
                        last.compute_environment,
                        last.provider,
                        (last.provider_ref or {}).get("pool", last.provider),
                        planner.Amount(node.vcpus, node.memory_mib, node.gpus),
                        last.number,
                    )
            if main is not None and main.status in TERMINAL and last.stopped_at:
                from batchyard.scheduler.jobs import TIMEOUT_REASON, Running

                r = Running(
                    last.id,
                    main.seq,
                    main.id,
                    None,
                    last.number,
                    last.compute_environment,
                    last.provider,
                    "",
                    planner.Amount(0, 0),
                    started_at=last.started_at,
                    mnp=parent.seq,
                    main=True,
                    timed_out=last.status_reason == TIMEOUT_REASON,
                )
                self.main_ended[parent.seq] = (
                    Exited(last.id, last.stopped_at, last.exit_code, last.reason),
                    r,
                )
            elif main is not None and main.status == S.RUNNING:
                launch_now.append(parent.seq)
        return launch_now


def _fields(spec: LaunchSpec) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in LaunchSpec.__dataclass_fields__}
