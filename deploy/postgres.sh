#!/bin/sh
# PostgreSQL of the scale-out stack, run as the postgres user. The first start makes the cluster on the
# volume: user and database `mlflow`, password POSTGRES_PASSWORD (later changes of it are not applied:
# see docs/scaling.md); every start runs the server in the foreground.
set -eu
PGDATA=/var/lib/postgresql/data
export PGDATA
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is empty: set it in .env}"
    secret=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$secret"
    initdb --username=mlflow --pwfile="$secret" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$secret"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "CREATE DATABASE mlflow;" | postgres --single -D "$PGDATA" postgres >/dev/null
    echo "postgres.sh: created the cluster and the database mlflow"
fi
exec postgres -c listen_addresses='*' -c unix_socket_directories=/tmp
