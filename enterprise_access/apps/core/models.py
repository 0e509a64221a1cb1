"""The service's user model."""
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """
    A person known to this service: staff who use Django admin, or a learner/admin/operator seen in a JWT.

    .. pii: username, email, first and last name, as copied from the LMS JWT or typed by staff.
    .. pii_types: username, email_address, name
    .. pii_retirement: local_api
    """

    lms_user_id = models.IntegerField(
        null=True,
        blank=True,
        db_index=True,
        help_text="The user's id in the LMS, from the JWT's user_id claim. Empty for admin-only accounts.",
    )

    class Meta:
        db_table = "core_user"

    def __str__(self):
        # How admin shows a person everywhere (created_by, modified_by, history, acting_user): name and email.
        return f"{self.username} <{self.email}>" if self.email else self.username
