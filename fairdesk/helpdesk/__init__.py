"""Filing fairdesk tickets into the helpdesk a team already uses: one module per kind, one small interface."""

from fairdesk.helpdesk.base import Event, EventKind, Filing, Helpdesk, HelpdeskError, Refused, Unavailable

__all__ = ["Event", "EventKind", "Filing", "Helpdesk", "HelpdeskError", "Refused", "Unavailable"]
