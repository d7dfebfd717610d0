"""Shared pieces of the benchmark suite: fresh servers, a throwaway PostgreSQL, a lean HTTP
client for the AWS Batch wire format, statistics, machine facts and the report."""
