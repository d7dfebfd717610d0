"""Test support: real PostgreSQL clusters, real server processes, strict response checks."""
