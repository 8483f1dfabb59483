"""Signals of the forms engine: the workflows app subscribes to `form_submitted`."""

from django.dispatch import Signal

#: Sent when the transaction of a (non-draft) submission commits, with keyword arguments
#: `form` (services.Form), `submission` (the FormSubmission; None for a form generated from an
#: entity, which keeps none), `record` (a bound form's saved record, else None) and `user`
#: (None: a visitor of a public form).
#: The sender is the FormSubmission model.
form_submitted = Signal()
