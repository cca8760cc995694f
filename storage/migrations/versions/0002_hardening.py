"""hardening: inbox owner, set-aside updates, outbox claim tokens and message ids, superseded
tickets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.Integer(), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "set_aside_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_set_aside_updates")),
    )
    op.create_table(
        "superseded_tickets",
        sa.Column("ticket_number", sa.String(length=48), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_superseded_tickets_registration_id_registrations"),
        ),
        sa.PrimaryKeyConstraint("ticket_number", name=op.f("pk_superseded_tickets")),
    )


def downgrade() -> None:
    op.drop_table("superseded_tickets")
    op.drop_table("set_aside_updates")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("message_id")
        batch_op.drop_column("claim_token")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("owner")
