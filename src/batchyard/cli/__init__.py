"""The ``batchyard`` command: the server, and a client of its AWS-compatible API."""
