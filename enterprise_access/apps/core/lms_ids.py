"""
What a valid LMS user id is: the primary key of the LMS ``auth_user`` table, a signed 32-bit integer column that
counts up from 1. Anything else (zero, a negative number, a value past the column, a boolean, a float, a string)
names no learner, so it is refused wherever one arrives: a JWT's ``user_id`` claim, an API field, a form.
"""
from django.core.validators import MaxValueValidator, MinValueValidator

LMS_USER_ID_MIN = 1
LMS_USER_ID_MAX = 2**31 - 1

LMS_USER_ID_RANGE_MESSAGE = (
    f"An LMS user id is a whole number from {LMS_USER_ID_MIN} to {LMS_USER_ID_MAX} (the learner's id in the "
    "LMS); enter the id shown for the learner there."
)

LMS_USER_ID_VALIDATORS = [
    MinValueValidator(LMS_USER_ID_MIN, message=LMS_USER_ID_RANGE_MESSAGE),
    MaxValueValidator(LMS_USER_ID_MAX, message=LMS_USER_ID_RANGE_MESSAGE),
]


def is_lms_user_id(value) -> bool:
    """True only for an ``int`` (never a ``bool``) within the LMS id range."""
    return isinstance(value, int) and not isinstance(value, bool) and LMS_USER_ID_MIN <= value <= LMS_USER_ID_MAX
