"""Job state change events.

Every status change of a job is a row of ``job_transitions``, written in the same transaction
as the change itself, so that table *is* the outbox: nothing can change a job without leaving
its event behind, and nothing is written twice. Readers follow it by row id.

    outbox.py    reading the table in id order without skipping rows that commit late
    build.py     a row -> an EventBridge "Batch Job State Change" event (DescribeJobs detail)
    stream.py    Server-Sent Events: a stream a client follows with a cursor
    webhooks.py  at-least-once POSTs to the configured webhooks, on the scheduling leader
    api.py       the HTTP endpoints under /batchyard/v1/events and /batchyard/v1/webhooks
"""
