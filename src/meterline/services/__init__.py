"""Async orchestration of the domain and the ports. No HTTP, no SQL."""
