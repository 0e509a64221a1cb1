"""
The layers of docs/decisions/0009: each app imports only the apps below it, and no app imports the development
tooling. Tests are exempt (they may use devtools and any layer).
"""
import re
from pathlib import Path

import pytest
from django.conf import settings

APPS = Path(settings.BASE_DIR) / "enterprise_access" / "apps"
# What each app may import from the project besides itself and enterprise_access.settings.
MAY_IMPORT = {
    "core": set(),
    "api_client": {"core"},
    "content_assignments": {"core"},
    "subsidy_access_policy": {"core", "api_client", "content_assignments"},
    "api": {"core", "api_client", "content_assignments", "subsidy_access_policy"},
}
IMPORT = re.compile(r"^\s*(?:from|import)\s+enterprise_access\.([\w.]+)", re.MULTILINE)


def project_imports(app):
    """(file, imported module below ``enterprise_access.``) for every non-test module of ``app``."""
    for path in sorted((APPS / app).rglob("*.py")):
        if "tests" in path.relative_to(APPS / app).parts:
            continue
        for module in IMPORT.findall(path.read_text()):
            yield path.relative_to(APPS).as_posix(), module


def test_every_app_is_placed_in_a_layer():
    apps = {path.name for path in APPS.iterdir() if (path / "__init__.py").exists()}
    assert apps == set(MAY_IMPORT)


@pytest.mark.parametrize("app", list(MAY_IMPORT))
def test_app_imports_only_the_layers_below_it(app):
    allowed = {f"apps.{name}" for name in MAY_IMPORT[app] | {app}}
    upward = [f"{path}: enterprise_access.{module}" for path, module in project_imports(app)
              if module.split(".")[0] != "settings" and ".".join(module.split(".")[:2]) not in allowed]
    assert upward == []
