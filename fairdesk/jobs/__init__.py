"""The jobs that tie the layers together (listener -> nlp -> ticketing -> helpdesk), and the boundary they run in."""

from fairdesk.jobs.board import FAILING_AFTER, JobBoard, JobState, WakeableLoop

__all__ = ["FAILING_AFTER", "JobBoard", "JobState", "WakeableLoop"]
