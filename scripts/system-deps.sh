#!/usr/bin/env bash
# System libraries the pinned Python packages build against: mysqlclient (the MariaDB/MySQL source
# of the operator's SQL tests) compiles against the MariaDB client library.
set -euo pipefail
if pkg-config --exists mariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing the MariaDB client headers (libmariadb-dev) for mysqlclient..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q libmariadb-dev pkg-config >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q libmariadb-dev pkg-config >/dev/null; }
    exit 0
fi
echo "mysqlclient needs the MariaDB or MySQL client headers: install libmariadb-dev (Debian/Ubuntu)," >&2
echo "mariadb-connector-c-devel (Fedora) or mysql-client (Homebrew), then run make again." >&2
exit 1
