"""Each platform SDK is imported in exactly one module, and spaCy only inside nlp/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "fairdesk", "listener", "nlp", "ticketing")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules() -> dict[str, set[str]]:
    return {
        str(path.relative_to(REPO)): _imports(path)
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    }


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
