"""fairdesk's web pages: the customer's link page, web intake, the agents' queue and /healthz."""

from ticketing.web.app import TicketNotFound, WebContext, create_app

__all__ = ["TicketNotFound", "WebContext", "create_app"]
