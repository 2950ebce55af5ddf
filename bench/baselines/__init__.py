"""Baseline servers the gateway is compared with (same clients, same load)."""
