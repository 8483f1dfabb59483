"""Signals of record writes, sent when the transaction commits (workflows start on them).

Both are sent by dynamic_models.records.save with sender = the record's runtime model and
keyword arguments `record`, `user` (who wrote it) and `changed` (the keys of the fields written).
"""

from django.dispatch import Signal

record_created = Signal()
record_updated = Signal()

#: `lowcode seed_demo` loaded the demo data: `results` (dynamic_models.seed.SeedResult, one per tenant).
#: Apps add their own demo state (workflows start a few processes).
demo_seeded = Signal()
