"""Fixtures shared by the whole suite."""
import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def _clear_caches():
    """Every test starts with empty caches: cached upstream reads must not leak between tests."""
    for cache in caches.all():
        cache.clear()
    yield
    for cache in caches.all():
        cache.clear()
