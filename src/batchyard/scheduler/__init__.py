"""The leader loop: resource statuses, then dependencies, ordering, placement and dispatch."""
