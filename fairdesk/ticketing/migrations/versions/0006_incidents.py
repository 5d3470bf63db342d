"""incidents: near-duplicate complaints linked to one incident (ticket.incident_id, ticket.incident_reason)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:05:00
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reporters", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("first_reported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_reported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_last_reported_at"), ["last_reported_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_priority"), ["priority"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_status"), ["status"], unique=False)

    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("incident_reason", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_incident_id"), ["incident_id"], unique=False)
        batch_op.create_foreign_key("fk_ticket_incident_id_incident", "incident", ["incident_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ticket_incident_id_incident", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ticket_incident_id"))
        batch_op.drop_column("incident_reason")
        batch_op.drop_column("incident_id")

    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_status"))
        batch_op.drop_index(batch_op.f("ix_incident_priority"))
        batch_op.drop_index(batch_op.f("ix_incident_last_reported_at"))
        batch_op.drop_index(batch_op.f("ix_incident_category"))

    op.drop_table("incident")
