"""Local peers the tests run against (see docs/bluesky.md for the Bluesky network)."""
