"""The tables. Times are epoch milliseconds (AWS's unit); documents are JSON in snake_case.

Each resource keeps the columns the service filters, orders or joins on, and one ``spec``
document for the rest of what the user declared, returned as given. Jobs are designed for
large arrays: an array parent is one row, and its children get rows only when something
happens to them individually (dispatch, cancel), so a 10,000-child submit writes one row.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Doc = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a BIGINT identity.
# Tables with deletes use SQLite's AUTOINCREMENT so an id is never reused.
Id = BigInteger().with_variant(Integer(), "sqlite")

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

compute_environments = Table(
    "compute_environments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("uuid", String(36), nullable=False),
    Column("type", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text),
    Column("provider", String(32), nullable=False),
    Column("spec", Doc, nullable=False),
    Column("tags", Doc, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

scheduling_policies = Table(
    "scheduling_policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("spec", Doc, nullable=False),
    Column("tags", Doc, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

# Deleted queues stay as tombstones (status DELETED) so that finished jobs keep naming theirs.
job_queues = Table(
    "job_queues",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text),
    Column("priority", Integer, nullable=False),
    Column("scheduling_policy_id", BigInteger),
    Column("spec", Doc, nullable=False),
    Column("tags", Doc, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(
        "uq_job_queues_live_name",
        "name",
        unique=True,
        sqlite_where=text("status != 'DELETED'"),
        postgresql_where=text("status != 'DELETED'"),
    ),
    sqlite_autoincrement=True,
)

job_queue_compute_environments = Table(
    "job_queue_compute_environments",
    metadata,
    Column("queue_id", BigInteger, primary_key=True),
    Column("compute_environment_id", BigInteger, primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_jqce_compute_environment", "compute_environment_id"),
)

job_definitions = Table(
    "job_definitions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("type", String(16), nullable=False),
    Column("spec", Doc, nullable=False),
    Column("tags", Doc, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("name", "revision"),
    Index("ix_job_definitions_status_name", "status", "name"),
    sqlite_autoincrement=True,
)

consumable_resources = Table(
    "consumable_resources",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("resource_type", String(32), nullable=False),
    Column("total_quantity", BigInteger, nullable=False),
    Column("in_use_quantity", BigInteger, nullable=False, server_default="0"),
    Column("tags", Doc, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

# Idempotency tokens (UpdateConsumableResource clientToken, SubmitJob client tokens):
# a repeated request with the same token in the same scope returns the stored result.
idempotency_tokens = Table(
    "idempotency_tokens",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("token", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("result", Doc, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# One row per job, per array child and per MNP node. An array's children are created in bulk
# (one statement) when the scheduler takes the parent in, never one transaction each.
jobs = Table(
    "jobs",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("name", String(128), nullable=False),
    Column("queue_id", BigInteger, nullable=False),
    Column("definition_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("stopped_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    # array parent: array_size; array child: parent_seq + array_index; MNP node: node_index
    Column("parent_seq", BigInteger),
    Column("array_size", Integer),
    Column("array_index", Integer),
    Column("num_nodes", Integer),  # a multi-node parallel job's parent
    Column("node_index", Integer),
    # dispatch order inside a queue: rank (minus the scheduling priority where a scheduling
    # policy applies, else 0), then submission (the root job's seq), then index
    Column("rank", Integer, nullable=False, server_default="0"),
    Column("root_seq", BigInteger, nullable=False),
    Column("pos", Integer, nullable=False, server_default="0"),
    Column("scheduling_priority", Integer),
    Column("share_identifier", String(255)),
    # resolved requests, kept as columns so the scheduler never parses documents
    Column("vcpus", Float, nullable=False),
    Column("memory_mib", BigInteger, nullable=False),
    Column("gpus", Integer, nullable=False, server_default="0"),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("is_cancelled", Boolean, nullable=False, server_default=text("false")),
    Column("is_terminated", Boolean, nullable=False, server_default=text("false")),
    # array parent: the number of children in each status, kept with every child transition
    Column("array_counts", Doc),
    Column("tags", Doc, nullable=False),
    # everything else the job was submitted with (parameters, resolved container, dependsOn...)
    Column("spec", Doc, nullable=False),
    Index("ix_jobs_dispatch", "queue_id", "status", "rank", "root_seq", "pos"),
    Index("ix_jobs_queue_status_seq", "queue_id", "status", "seq"),
    Index("ix_jobs_parent_index", "parent_seq", "array_index"),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_stopped_at", "stopped_at"),
    sqlite_autoincrement=True,
)

job_dependencies = Table(
    "job_dependencies",
    metadata,
    Column("job_seq", BigInteger, primary_key=True),
    Column("depends_on_seq", BigInteger, primary_key=True),
    Column("type", String(16)),  # None, N_TO_N or SEQUENTIAL
    Index("ix_job_dependencies_depends_on", "depends_on_seq"),
)

job_transitions = Table(
    "job_transitions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_seq", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("reason", Text),
    Index("ix_job_transitions_job", "job_seq", "id"),
    sqlite_autoincrement=True,
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_seq", BigInteger, nullable=False),
    Column("number", Integer, nullable=False),
    Column("compute_environment", String(128), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", BigInteger),
    Column("stopped_at", BigInteger),
    Column("exit_code", Integer),
    Column("reason", Text),
    Column("status_reason", Text),
    Column("log_stream", String(512), nullable=False),
    # where the provider runs it (agent, pid, start time...), to reconcile after a restart
    Column("provider_ref", Doc),
    # what the attempt really used (cpu seconds, peak memory...), filled at completion
    Column("usage", Doc),
    UniqueConstraint("job_seq", "number"),
    Index("ix_attempts_log_stream", "log_stream"),
    Index("ix_attempts_status", "status"),
    sqlite_autoincrement=True,
)

# Webhook delivery (events/webhooks.py): one row per configured webhook, holding the id of the
# last job_transitions row it has dealt with (delivered, filtered out or dead-lettered) and the
# failures of the event at its head, so a restart neither drops nor repeats more than one event.
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("cursor", BigInteger, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger),
    Column("last_error", Text),
    Column("delivered", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),
)

# Events a webhook refused too often: kept with the last error, for a person to look at.
webhook_dead_letters = Table(
    "webhook_dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("webhook", String(128), nullable=False),
    Column("transition_id", BigInteger, nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("event", Doc, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_webhook_dead_letters_webhook", "webhook", "id"),
    sqlite_autoincrement=True,
)

# Security (docs/security.md). Users own access keys; policies attach to a user, a group or
# one access key. A user's groups are a list on the user (a group exists while something
# names it). Secrets (access keys' and the secret store's) are Fernet tokens under the master
# key, which lives in a file, never in the database.
auth_users = Table(
    "auth_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("groups", Doc, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

auth_keys = Table(
    "auth_keys",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("user_name", String(64), nullable=False),
    Column("secret", Text, nullable=False),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    Index("ix_auth_keys_user_name", "user_name"),
)

auth_policies = Table(
    "auth_policies",
    metadata,
    Column("owner_kind", String(8), primary_key=True),  # user, group or key
    Column("owner", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(512), primary_key=True),
    Column("value", Text, nullable=False),
    Column("description", Text),
    Column("version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Every mutating API call (and every refused signature): who, what, on what, from where, and
# how it ended. Queried by `batchyard audit`; kept audit_retention_days.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("principal", String(128), nullable=False),
    Column("access_key_id", String(128)),
    Column("action", String(128), nullable=False),
    Column("resources", Doc, nullable=False),
    Column("source", String(64)),
    Column("outcome", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("message", Text),
    Column("request_id", String(64)),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_principal", "principal", "id"),
    sqlite_autoincrement=True,
)
