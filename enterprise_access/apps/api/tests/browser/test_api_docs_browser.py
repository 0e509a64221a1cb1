"""``/api/docs/`` in a real browser with every other host unreachable: Swagger UI still draws the API."""
from urllib.parse import urlparse

import pytest
from django.conf import settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_docs_render_with_no_internet(page, live_server):
    own_host = urlparse(live_server.url).netloc
    refused = []

    def only_our_host(route):
        if urlparse(route.request.url).netloc == own_host:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_our_host)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")

    assert refused == []
    assert "enterprise-access" in page.inner_text(".swagger-ui .info .title")
    paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    assert any("/redemption-attempts/summary/" in path for path in paths)
    screenshots = settings.VAR_DIR / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshots / "api-docs-offline.png"))
