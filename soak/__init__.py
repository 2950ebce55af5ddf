"""The chaos and soak suite (``make soak``; ``make soak-quick`` in CI): see ``soak/README.md``."""
