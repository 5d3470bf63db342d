"""Each platform SDK is imported in exactly one module, and spaCy only inside nlp/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fairdesk"
LAYERS = ("config", "listener", "nlp", "ticketing", "helpdesk")
# The flow reads one way: listener -> nlp -> ticketing -> helpdesk; the rest of the fairdesk package (the jobs and
# the composition root, called "fairdesk" here) ties them together. A layer may import the ones before it, never one
# after it.
LATER = {
    "config": {"listener", "nlp", "ticketing", "helpdesk", "fairdesk"},
    "listener": {"nlp", "ticketing", "helpdesk", "fairdesk"},
    "nlp": {"listener", "ticketing", "helpdesk", "fairdesk"},
    "ticketing": {"nlp", "helpdesk", "fairdesk"},
    "helpdesk": {"fairdesk"},
}


def _unit(module: str) -> str:
    """`fairdesk.listener.x` -> `listener`; `fairdesk.app` -> `fairdesk`; `tweepy.client` -> `tweepy`."""
    parts = module.split(".")
    if parts[0] != "fairdesk":
        return parts[0]
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "fairdesk"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {_unit(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(_unit(node.module))
            if node.module == "fairdesk":
                found |= {_unit(f"fairdesk.{alias.name}") for alias in node.names}
    return found


def _modules() -> dict[str, set[str]]:
    """Each module of the package, keyed by its path inside it (`listener/x.py`), with the units it imports."""
    return {str(path.relative_to(PACKAGE)): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize(
    ("sdk", "allowed"),
    [("tweepy", {"listener/x.py"}), ("atproto", {"listener/bluesky.py"}), ("atproto_client", {"listener/bluesky.py"})],
)
def test_each_platform_sdk_is_imported_in_one_module(sdk: str, allowed: set[str]) -> None:
    users = {module for module, imported in _modules().items() if sdk in imported}
    assert users <= allowed


def test_spacy_is_imported_only_inside_nlp() -> None:
    users = {module for module, imported in _modules().items() if {"spacy", "thinc"} & imported}
    assert users and all(module.startswith("nlp/") for module in users)


def test_ticketing_never_imports_nlp_or_a_platform_sdk() -> None:
    for module, imported in _modules().items():
        if module.startswith("ticketing/"):
            assert not imported & {"nlp", "spacy", "tweepy", "atproto"}, module


@pytest.mark.parametrize("layer", sorted(LATER))
def test_no_layer_imports_a_later_one(layer: str) -> None:
    wrong = {
        module: sorted(imported & LATER[layer])
        for module, imported in _modules().items()
        if module.startswith(f"{layer}/") and imported & LATER[layer]
    }
    assert wrong == {}


def test_helpdesk_clients_are_reached_only_through_their_own_modules() -> None:
    users = {module for module, imported in _modules().items() if "standardwebhooks" in imported}
    assert users == {"helpdesk/webhook.py"}


def test_the_web_routers_do_not_import_the_app_that_includes_them() -> None:
    for path in sorted((PACKAGE / "ticketing" / "web").glob("*.py")):
        if path.name in ("app.py", "__init__.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "fairdesk.ticketing.web.app" not in modules and "fairdesk.ticketing.web" not in modules, path.name
