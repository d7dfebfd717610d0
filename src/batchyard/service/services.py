"""All use cases behind one object, built once per server."""

from __future__ import annotations

from batchyard.service.compute_environments import ComputeEnvironments
from batchyard.service.consumable_resources import ConsumableResources
from batchyard.service.context import Context
from batchyard.service.job_definitions import JobDefinitions
from batchyard.service.job_queues import JobQueues
from batchyard.service.jobs import Jobs
from batchyard.service.scheduling_policies import SchedulingPolicies
from batchyard.service.tags import Tags


class Services:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.compute_environments = ComputeEnvironments(ctx)
        self.job_queues = JobQueues(ctx)
        self.job_definitions = JobDefinitions(ctx)
        self.scheduling_policies = SchedulingPolicies(ctx)
        self.consumable_resources = ConsumableResources(ctx)
        self.tags = Tags(ctx)
        self.jobs = Jobs(ctx)
