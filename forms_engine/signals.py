"""Signals of the forms engine: the workflows app subscribes to `form_submitted`."""

from django.dispatch import Signal

#: Sent when the transaction of a (non-draft) submission commits, with keyword arguments
#: `form` (services.Form), `submission` (FormSubmission, or None for a bound form without a
#: draft), `record` (the bound form's saved record, else None) and `user` (None: a visitor).
#: The sender is the FormSubmission model.
form_submitted = Signal()
