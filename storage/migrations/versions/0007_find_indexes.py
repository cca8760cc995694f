"""find indexes (issue 14): trigram indexes for /find on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

On PostgreSQL, GIN indexes with pg_trgm serve `LIKE '%…%'` on names, phone and the
masked ID number (bench/find.py: 100 ms → 11 ms for a partial Latin name over 100,000
candidates). The extension is created if missing (it ships with PostgreSQL's contrib and
needs the CREATE privilege on the database). SQLite gets plain indexes of the same names.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("full_name", "first_name", "phone", "id_number_masked")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        if postgresql:
            op.create_index(
                f"ix_candidates_{column}_trgm",
                "candidates",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
        else:
            with op.batch_alter_table("candidates") as batch_op:
                batch_op.create_index(f"ix_candidates_{column}_trgm", [column])


def downgrade() -> None:
    for column in COLUMNS:
        with op.batch_alter_table("candidates") as batch_op:
            batch_op.drop_index(f"ix_candidates_{column}_trgm")
