"""``/api/docs/`` works offline: Swagger UI comes from our own static files (drf-spectacular-sidecar), no CDN."""
import re
from urllib.parse import urljoin, urlparse

import pytest
import requests

pytestmark = pytest.mark.django_db

ASSET = re.compile(r'(?:src|href)="([^"]+)"')
SCHEMA_URL = re.compile(r'url:\s*"([^"]+)"')


def test_docs_page_names_no_other_host(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = ASSET.findall(html) + SCHEMA_URL.findall(html)
    assert urls, "the page loads Swagger UI's files and the schema"
    assert [url for url in urls if urlparse(url).netloc or urlparse(url).scheme] == []
    assert not re.search(r"https?://", html.replace("http://www.w3.org/", ""))


def test_docs_assets_and_schema_answer_200(live_server):
    page = requests.get(f"{live_server.url}/api/docs/", timeout=10)
    assert page.status_code == 200
    urls = ASSET.findall(page.text) + SCHEMA_URL.findall(page.text)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)
    for url in urls:
        asset = requests.get(urljoin(page.url, url), timeout=10)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url
