"""
Route writes that must commit on their own through a second connection to the same database.

Two kinds of rows must never be rolled back with the caller's transaction, nor stay invisible to other
processes until the caller commits:

- redemption-attempt audit rows (an audit log that a rollback could erase is no audit log);
- spend reservations, whose transaction locks the policy's row: it must commit on its own and never hold that
  lock for the length of a caller's transaction (see subsidy_access_policy/reservations.py);
- the Django database cache's rows on the embedded default, so that cached values are shared at once.

``INDEPENDENT_DB_ALIAS`` is configured in every settings module as a copy of ``default`` (same database,
separate connection, autocommit). Migrations run only through ``default``.
"""
from enterprise_access.apps.core.databases import INDEPENDENT_DB_ALIAS  # noqa: F401 (re-exported)

# app_label.model_name (lower case) of the models whose rows live on the independent connection.
INDEPENDENT_MODELS = {
    "subsidy_access_policy.redemptionattempt",
    "subsidy_access_policy.spendreservation",
    "django_cache.cacheentry",  # the fake model DatabaseCache routes through
}


def _label(model):
    return f"{model._meta.app_label}.{model._meta.model_name}"


class IndependentWritesRouter:
    def db_for_read(self, model, **hints):
        return INDEPENDENT_DB_ALIAS if _label(model) in INDEPENDENT_MODELS else None

    def db_for_write(self, model, **hints):
        return INDEPENDENT_DB_ALIAS if _label(model) in INDEPENDENT_MODELS else None

    def allow_relation(self, obj1, obj2, **hints):
        # Both aliases are the same database.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The independent alias is the same database as default: migrate (and create the cache table) once.
        return db != INDEPENDENT_DB_ALIAS
