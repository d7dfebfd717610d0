"""Operation handlers, one module per group of resources."""
