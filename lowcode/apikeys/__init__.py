"""Per-tenant API keys (AU-2): hashed at rest, shown once, scoped, expiring, revocable."""
