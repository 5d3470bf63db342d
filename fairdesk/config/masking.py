"""Secrets hidden wherever configuration is shown or logged: SecretStr fields, and passwords or keys inside URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry credentials in URLs people paste into configs (webhook keys, signed links, DSNs).
SECRET_PARAMS = ("password", "passwd", "pass", "secret", "token", "key", "sig", "signature", "auth", "apikey")


def mask_url(url: str) -> str:
    """The URL with any password in it (``user:PASSWORD@host``) and secret-looking query values replaced by ***."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK  # not parseable as a URL, yet shaped like one: show nothing of it
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(any(s in k.lower() for s in SECRET_PARAMS) for k, _ in pairs)
    if password is None and not secret_query:
        return url  # nothing to hide; rebuilding would also change sqlite:////abs/path
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if secret_query:
        query = urlencode([(k, MASK if any(s in k.lower() for s in SECRET_PARAMS) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_values(data: Any) -> Any:
    """Walk dumped settings (dicts, lists, strings) and mask every URL in them."""
    if isinstance(data, dict):
        return {key: mask_values(value) for key, value in data.items()}
    if isinstance(data, list):
        return [mask_values(value) for value in data]
    if isinstance(data, str):
        return mask_url(data)
    return data
