"""fairdesk: the command line and the composition root that wires listener, nlp and ticketing together."""

__all__: list[str] = []
