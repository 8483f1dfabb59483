from django.dispatch import Signal

#: Sent after the publish transaction committed: kind, key, version, schema_name.
definition_published = Signal()
