#!/usr/bin/env bash
# Developers only, and only until the first release: rebuild the single initial Alembic
# revision from the models. After a release, add a new revision instead
# (storage.migrate.make_revision) and never edit a published one.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>/tmp/examdesk-regen.lock
flock 9
tmp=$(mktemp -d)
rm -f storage/migrations/versions/0001_initial_schema.py
.venv/bin/python - "$tmp/gen.sqlite3" <<'PY'
import asyncio, sys
from storage.db import Database
from storage import migrate

async def main() -> None:
    db = Database(f"sqlite+aiosqlite:///{sys.argv[1]}")
    await migrate.make_revision(db.engine, "initial schema")
    await db.dispose()

asyncio.run(main())
PY
f=$(ls storage/migrations/versions/*_initial_schema.py)
rev=$(basename "$f" | cut -d_ -f1)
mv "$f" storage/migrations/versions/0001_initial_schema.py
sed -i "s/$rev/0001/g; s/storage\.models\.UTCDateTime(timezone=True)/sa.DateTime(timezone=True)/g; /^import storage/d; s/astext_type=Text()/astext_type=sa.Text()/g; s/^Create Date: .*/Create Date: 2026-11-26/" storage/migrations/versions/0001_initial_schema.py
rm -rf "$tmp"
echo "storage/migrations/versions/0001_initial_schema.py rebuilt from the models"
