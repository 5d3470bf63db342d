"""fairdesk's web pages: the customer's link page, web intake, the agents' queue and /healthz."""

from fairdesk.ticketing.web.app import create_app
from fairdesk.ticketing.web.pages import TicketNotFound, WebContext

__all__ = ["TicketNotFound", "WebContext", "create_app"]
