"""staff desk (issue 14): staff roles, support threads, attendance, payment refunds

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_roles",
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("telegram_id", "role", name=op.f("pk_staff_roles")),
    )
    op.create_table(
        "support_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_support_threads_candidate_id_candidates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_threads")),
    )
    with op.batch_alter_table("support_threads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_threads_candidate_id"), ["candidate_id"], unique=False
        )

    op.create_table(
        "attendance",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_in_by", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_attendance_registration_id_registrations"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["exam_sessions.id"],
            name=op.f("fk_attendance_session_id_exam_sessions"),
        ),
        sa.PrimaryKeyConstraint("registration_id", name=op.f("pk_attendance")),
    )
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attendance_session_id"), ["session_id"], unique=False)

    op.create_table(
        "support_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("file_id", sa.String(length=256), nullable=True),
        sa.Column("file_kind", sa.String(length=16), nullable=True),
        sa.Column("staff_chat_message_id", sa.BigInteger(), nullable=True),
        sa.Column("candidate_message_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["support_threads.id"],
            name=op.f("fk_support_messages_thread_id_support_threads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_messages")),
    )
    with op.batch_alter_table("support_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_messages_staff_chat_message_id"),
            ["staff_chat_message_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_support_messages_thread_id"), ["thread_id"], unique=False
        )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("refund_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("refund_reference", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("refund_note", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("refund_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("refund_requested_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("refund_decided_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("refund_decided_by", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_payments_refund_status"), ["refund_status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_refund_status"))
        batch_op.drop_column("refund_decided_by")
        batch_op.drop_column("refund_decided_at")
        batch_op.drop_column("refund_requested_by")
        batch_op.drop_column("refund_requested_at")
        batch_op.drop_column("refund_note")
        batch_op.drop_column("refund_reference")
        batch_op.drop_column("refund_reason")
        batch_op.drop_column("refund_status")

    with op.batch_alter_table("support_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_messages_thread_id"))
        batch_op.drop_index(batch_op.f("ix_support_messages_staff_chat_message_id"))

    op.drop_table("support_messages")
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_session_id"))

    op.drop_table("attendance")
    with op.batch_alter_table("support_threads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_threads_candidate_id"))

    op.drop_table("support_threads")
    op.drop_table("staff_roles")
