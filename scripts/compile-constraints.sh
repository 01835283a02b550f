#!/usr/bin/env bash
# Resolve the pin set of each compatibility cell once (run by hand, commit the result), as Airflow's
# own constraints files are: that Airflow release, constraints/compat.in, and every dependency as it
# was on the day after the release, so a later fastapi, cadwyn or pydantic cannot break an old cell.
#
# Needs uv (`pip install uv`): `uv pip compile --exclude-newer` resolves as of a date.
# Usage: scripts/compile-constraints.sh [MINOR ...]   (default: every cell of scripts/compat-cells)
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
command -v "$UV" >/dev/null || { echo "compile-constraints: uv not found (pip install uv, or set UV=)" >&2; exit 2; }

# shellcheck source=scripts/compat-cells
source scripts/compat-cells
wanted=("$@")
for cell in "${CELLS[@]}"; do
    read -r minor airflow python date <<<"$cell"
    if ((${#wanted[@]})) && [[ ! " ${wanted[*]} " == *" $minor "* ]]; then continue; fi
    out=constraints/airflow-$minor.txt
    echo "compile-constraints: apache-airflow==$airflow on Python $python, as of $date -> $out"
    {
        echo "# Pin set of the Airflow $minor compatibility cell (Python $python): apache-airflow==$airflow"
        echo "# and constraints/compat.in, resolved as of $date by scripts/compile-constraints.sh."
        "$UV" pip compile --quiet --no-header --no-annotate --python-version "$python" \
            --exclude-newer "$date" constraints/compat.in <(echo "apache-airflow==$airflow")
    } >"$out.tmp"
    mv "$out.tmp" "$out"
done
