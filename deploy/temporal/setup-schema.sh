#!/bin/sh
# One-shot (temporalio/admin-tools): create or upgrade Temporal's two databases
# on temporal-db. Safe to run on every `docker compose up`: setup-schema at
# 0.0 and update-schema only apply what is missing, so the same script also
# upgrades the schema after the server image is bumped.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
DB_PORT="${DB_PORT:-5432}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
        -u "$POSTGRES_USER" "$@"
}

for db in temporal temporal_visibility; do
    case "$db" in
        temporal) schema_dir="$SCHEMA_ROOT/temporal/versioned" ;;
        *) schema_dir="$SCHEMA_ROOT/visibility/versioned" ;;
    esac
    # `create` fails when the database already exists (every start after the
    # first); a real connection problem makes setup-schema fail just below.
    sql_tool --db "$db" create || echo "database $db already exists"
    sql_tool --db "$db" setup-schema -v 0.0
    sql_tool --db "$db" update-schema -d "$schema_dir"
done
echo "temporal schemas are up to date"
