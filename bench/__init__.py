"""agenthub load generator: ``python -m bench --help``."""
