"""Job output: one stream per attempt, written by providers, read through one API."""
