"""certificates, re-mark requests, look-up throttle (issue 10)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lookup_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_lookup_throttle")),
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("level_code", sa.String(length=32), nullable=False),
        sa.Column("direction_code", sa.String(length=32), nullable=True),
        sa.Column("number", sa.String(length=48), nullable=False),
        sa.Column("number_key", sa.String(length=48), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("verify_code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_certificates_candidate_id_candidates"),
        ),
        sa.ForeignKeyConstraint(
            ["direction_code"],
            ["directions.code"],
            name=op.f("fk_certificates_direction_code_directions"),
        ),
        sa.ForeignKeyConstraint(
            ["level_code"], ["levels.code"], name=op.f("fk_certificates_level_code_levels")
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_certificates_registration_id_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("number_key", name=op.f("uq_certificates_number_key")),
        sa.UniqueConstraint("registration_id", name=op.f("uq_certificates_registration_id")),
        sa.UniqueConstraint("verify_code", name=op.f("uq_certificates_verify_code")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificates_candidate_id"), ["candidate_id"], unique=False
        )

    op.create_table(
        "remark_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fee_minor", sa.Integer(), nullable=True),
        sa.Column("fee_confirmed_by", sa.String(length=64), nullable=True),
        sa.Column("fee_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("old_mark", sa.String(length=16), nullable=False),
        sa.Column("old_score_tenths", sa.Integer(), nullable=True),
        sa.Column("new_score_tenths", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_remark_requests_registration_id_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remark_requests")),
        sa.UniqueConstraint(
            "registration_id", "component", name=op.f("uq_remark_requests_registration_id")
        ),
    )
    with op.batch_alter_table("remark_requests", schema=None) as batch_op:
        batch_op.create_index("ix_remark_requests_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("remark_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_remark_requests_status")

    op.drop_table("remark_requests")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_candidate_id"))

    op.drop_table("certificates")
    op.drop_table("lookup_throttle")
