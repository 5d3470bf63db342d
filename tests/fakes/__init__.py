"""Fakes of the platforms fairdesk talks to, served over real HTTP to the adapters' own SDKs.

Import from the submodules (``from tests.fakes.x_server import FakeXServer``): importing them here would make
``python -m tests.fakes.x_server`` load the module twice.
"""

__all__: list[str] = []
