"""`python -m tests.fakes` runs the fake X API server (same options as `python -m tests.fakes.x_server`)."""

from tests.fakes.x_server import main

main()
