"""ticket clock (filed_at, first_response_at) and thread posts by 'customer'

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 16:40:00
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.add_column(sa.Column("filed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("first_response_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # Tickets filed before this revision: the first ledger fetch of their post is when fairdesk filed them (a web
    # ticket's created_at is its filing time already); the first agent response, an agent's first status change.
    op.execute(
        """
        UPDATE ticket SET filed_at = COALESCE(
            (SELECT MIN(l.fetched_at) FROM ledgerentry l WHERE l.ticket_id = ticket.id AND l.post_id = ticket.post_id),
            created_at)
        """
    )
    op.execute(
        """
        UPDATE ticket SET first_response_at = (
            SELECT MIN(e.created_at) FROM ticketentry e JOIN agent a ON a.name = e.actor
            WHERE e.ticket_id = ticket.id AND e.kind = 'status')
        """
    )
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.alter_column("filed_at", existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)
        batch_op.create_index(batch_op.f("ix_ticket_filed_at"), ["filed_at"], unique=False)
    # Thread posts were logged with the author's handle as actor, which showed it past blind triage.
    op.execute("UPDATE ticketentry SET actor = 'customer' WHERE kind = 'post'")


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_filed_at"))
        batch_op.drop_column("first_response_at")
        batch_op.drop_column("filed_at")
