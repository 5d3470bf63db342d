"""Each package's __all__ lists exactly what it exports, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["config", "listener", "ticketing", "ticketing.web", "nlp", "helpdesk"]


@pytest.mark.parametrize("package", [f"fairdesk.{name}" for name in PACKAGES])
def test_all_is_honest(package: str) -> None:
    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert exported, f"{package} exports nothing"
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"
    public = {n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, type(importlib))}
    assert public - exported == set(), f"{package} has public names not in __all__"
