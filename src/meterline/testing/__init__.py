"""Support for tests and demos: real server processes on loopback (no mocks)."""
