"""
DjangoQL search of the attempt list, kept to what the table's indexes answer.

The attempt table grows by one row per redemption run, so a search must never scan it: the query language offers
only indexed columns, no relations (no joins), and on text columns only the comparisons an index serves (equality,
lists, and a prefix). Anything else is refused with a message that says what to write instead.
"""
from django.db.models import Q
from djangoql.exceptions import DjangoQLSchemaError
from djangoql.schema import DateTimeField, DjangoQLSchema, IntField, StrField

from .. import constants as c
from ..models import RedemptionAttempt

# Each is the leading column of an index of RedemptionAttempt (see its Meta.indexes and db_index fields).
INDEXED_FIELDS = (
    "started_at", "outcome", "reason", "source", "lms_user_id", "content_key", "policy_uuid",
    "enterprise_customer_uuid", "transaction_uuid", "subsidy_request_uuid", "error_code", "request_id", "uuid",
)
EXACT_OPERATORS = ("=", "!=", "in", "not in")


class IndexedStrField(StrField):
    """A text or uuid column searched by its index: =, !=, in, not in, and ``startswith`` where it is allowed."""

    operators = EXACT_OPERATORS

    def get_lookup(self, path, operator, value):
        if operator not in self.operators:
            allowed = ", ".join(self.operators)
            raise DjangoQLSchemaError(
                f'"{self.name}" can be compared with {allowed} only: "{operator}" would read the whole table. '
                f'Write e.g. {self.name} = "..."'
            )
        if operator in ("startswith", "not startswith"):
            # Case-sensitive prefix (LIKE 'x%'), which the column's index serves; istartswith would not.
            q = Q(**{f"{self.name}__startswith": value})
            return ~q if operator == "not startswith" else q
        return super().get_lookup(path, operator, value)


class PrefixStrField(IndexedStrField):
    operators = EXACT_OPERATORS + ("startswith", "not startswith")


class CodeField(IndexedStrField):
    """A column of codes (outcome, reason, source): suggests the stored codes, which is what one writes."""

    def __init__(self, codes, **kwargs):
        super().__init__(**kwargs)
        self.codes = tuple(codes)

    def _field_choices(self):
        return [(code, code) for code in self.codes]

    def get_options(self, search):
        return [code for code in self.codes if search.lower() in code]


class AttemptQLSchema(DjangoQLSchema):
    include = (RedemptionAttempt,)

    def get_fields(self, model):
        return [self.field(model, name) for name in INDEXED_FIELDS]

    @staticmethod
    def field(model, name):
        nullable = model._meta.get_field(name).null
        if name == "started_at":
            return DateTimeField(model=model, name=name)
        if name == "lms_user_id":
            return IntField(model=model, name=name)
        if name == "outcome":
            return CodeField(c.AttemptOutcome.values, model=model, name=name, suggest_options=True)
        if name == "reason":
            return CodeField(c.ALL_REASONS, model=model, name=name, suggest_options=True)
        if name == "source":
            return CodeField(c.AttemptSource.values, model=model, name=name, suggest_options=True)
        if name == "content_key":
            return PrefixStrField(model=model, name=name, nullable=nullable)
        return IndexedStrField(model=model, name=name, nullable=nullable)
