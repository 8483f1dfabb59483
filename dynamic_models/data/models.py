"""Runtime model classes name this module; they live in per-tenant registries (see runtime.py)."""
