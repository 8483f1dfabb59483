"""Signals of the plugin lifecycle, sent when the transaction commits, in the tenant's schema:
a plugin's own receivers (entry point `signal_receivers`) can prepare or tidy its state there.

Both have sender = models.Plugin and keyword arguments `plugin` and `tenant`.
"""

from django.dispatch import Signal

plugin_enabled = Signal()
plugin_disabled = Signal()
