"""
The emulator's persistent state, in its own SQLite file (never the service's database).

Seeded objects (customers, learners, catalogs, content, subsidies and each subsidy's initial
deposit) are the baseline; everything else the API creates is cleared by ``reset()``.
"""
from .baseline import BaselineMixin, initial_deposit_key
from .database import Database
from .transactions import LedgerMixin

__all__ = ["Store", "initial_deposit_key"]


class Store(BaselineMixin, LedgerMixin, Database):
    """Thread-safe access to the emulator database at ``path`` (``:memory:`` works too)."""
