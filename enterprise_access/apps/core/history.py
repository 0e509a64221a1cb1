"""
Who changed a record that keeps history (django-simple-history), also when the change happens outside a request.

In a request, simple_history takes the signed-in user from ``HistoryRequestMiddleware`` (or an admin's
``_history_user``). Outside one (a management command, a background task, the shell) it has no one and the history
says "Changed by None". Two fallbacks fill that gap, in this order, and only when no user was found:

- ``acting_as(user, reason=...)``: every history row written inside the block names ``user`` (and the reason, as
  the row's change reason when it has none): ``with acting_as(staff): force_redemption(...)``;
- the record's own ``modified_by`` field, when it has one: whoever the code says last changed it.

A row written with no user at all stays so, and the admin says "nobody signed in" rather than "None".
"""
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record

_acting: ContextVar = ContextVar("history_acting_as", default=None)


@contextmanager
def acting_as(user=None, *, reason: str = ""):
    """Attribute history rows written in this block, outside a request, to ``user`` and ``reason``."""
    token = _acting.set((user if getattr(user, "pk", None) else None, reason))
    try:
        yield
    finally:
        _acting.reset(token)


@receiver(pre_create_historical_record, dispatch_uid="core-history-who")
def name_who_changed_it(sender, instance, history_instance, **kwargs):
    user, reason = _acting.get() or (None, "")
    if history_instance.history_user_id is None:
        if user is not None:
            history_instance.history_user = user
        elif getattr(instance, "modified_by_id", None):
            history_instance.history_user_id = instance.modified_by_id
    if reason and not history_instance.history_change_reason:
        limit = history_instance._meta.get_field("history_change_reason").max_length
        history_instance.history_change_reason = reason[:limit] if limit else reason
