"""Fixtures of the reliability suite (defined in reliability_support, a unique module name,
so test modules can import its helpers without clashing with other conftest modules)."""

from reliability_support import app, backend, fake, private_redis, urls

__all__ = ["app", "backend", "fake", "private_redis", "urls"]
