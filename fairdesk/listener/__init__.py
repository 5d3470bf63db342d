"""Listening to platforms: the adapter contract, the adapters and the poll job."""

from fairdesk.listener.base import (
    Adapter,
    AdapterError,
    AuthFailed,
    Batch,
    ChecksDeletions,
    FoundBy,
    Mention,
    MentionKind,
    PermanentError,
    RateLimited,
    Reply,
    TransientError,
)

__all__ = [
    "Adapter",
    "AdapterError",
    "AuthFailed",
    "Batch",
    "ChecksDeletions",
    "FoundBy",
    "Mention",
    "MentionKind",
    "PermanentError",
    "RateLimited",
    "Reply",
    "TransientError",
]
