"""Fixtures' building blocks: real Redis and PostgreSQL, real keys, real processes."""
