"""The admin browser tests' Chromium (Debian's, driven by Playwright), shared with the API's browser tests."""
from enterprise_access.apps.subsidy_access_policy.tests.browser.conftest import chromium_browser, page  # noqa: F401
