"""Declarative stacks: a YAML file of AWS Batch resources, applied idempotently.

``schema`` (the published JSON Schema, from botocore's model) → ``loader`` (YAML with line
numbers, checked against the schema) → ``plan`` (the server's state read through the API,
compared with the file) → ``apply`` (the changes made, in dependency order).
"""
