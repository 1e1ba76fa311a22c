"""Per end-user window counters behind :class:`meterline.ports.Counters`.

Two implementations of one contract: :class:`MemoryCounters` for a single process (the
default when no Redis URL is configured) and :class:`RedisCounters` for many replicas,
where the check-and-increment must be atomic on a shared server. Both decide with the
rule of :mod:`meterline.domain.limits`, so switching adapters never changes who is let in.
"""

from meterline.adapters.counters.memory import MemoryCounters
from meterline.adapters.counters.redis import RedisCounters

__all__ = ["MemoryCounters", "RedisCounters"]
