"""
The base of every choice class in the project: Django's ``TextChoices``, plus ``CHOICES``.

Members are ``str``: ``AttemptOutcome.REDEEMED == "redeemed"``, and the database stores the plain value.
``CHOICES`` is the ``((value, label), ...)`` form that fields, serializers and filters written before the move
to ``TextChoices`` read; it is the same list as ``.choices``.
"""
from django.db import models
from django.utils.functional import classproperty


class TextChoices(models.TextChoices):
    """``models.TextChoices`` that also answers ``CHOICES``."""

    @classproperty
    def CHOICES(cls):  # noqa: N802, N805 (the name older callers use)
        return tuple(cls.choices)
