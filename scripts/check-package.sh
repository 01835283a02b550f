#!/usr/bin/env bash
# The distributions users install: `python -m build` makes an sdist and a pure-Python wheel
# (py3-none-any), `twine check` passes, the wheel holds the package and py.typed and nothing else
# (no tests, benchmarks, examples, native code), and the wheel installed alone in a clean venv imports
# and registers with `airflow providers list`.
#
# Usage: scripts/check-package.sh   (uses .venv for build and twine; OUT=dir keeps the dist files)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
say() { echo "check-package: $*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}

work=$(mktemp -d -t enso-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
dist=${OUT:-$work/dist}
rm -rf "$dist"

.venv/bin/python -m build --outdir "$dist" . >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2
    fail "python -m build"
}
shopt -s nullglob
wheels=("$dist"/*.whl)
sdists=("$dist"/*.tar.gz)
((${#wheels[@]} == 1)) || fail "expected one wheel, got: ${wheels[*]:-none}"
((${#sdists[@]} == 1)) || fail "expected one sdist, got: ${sdists[*]:-none}"
wheel=${wheels[0]}
[[ "$wheel" == *-py3-none-any.whl ]] || fail "the wheel is not pure Python: $(basename "$wheel")"
say "built $(basename "${sdists[0]}") and $(basename "$wheel")"

.venv/bin/twine check --strict "$dist"/* || fail "twine check"

# Every file of the wheel is the package (its modules and py.typed) or the wheel's metadata.
.venv/bin/python - "$wheel" <<'EOF' || fail "wheel contents"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
allowed_suffixes = (".py", ".pyi", "py.typed")
stray = [
    n for n in names
    if not (n.startswith("enso_provider/") and n.endswith(allowed_suffixes))
    and not n.split("/", 1)[0].endswith(".dist-info")
]
missing = [n for n in ("enso_provider/__init__.py", "enso_provider/py.typed") if n not in names]
if stray or missing:
    sys.exit(f"stray files: {stray}; missing: {missing}")
print(f"check-package: the wheel holds {len(names)} files: enso_provider, py.typed, metadata", file=sys.stderr)
EOF

# The wheel alone, in a clean venv (its dependencies pinned to the development set for a repeatable
# resolve), with an Airflow home of its own, run from outside the checkout.
"$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet -c "$REPO/constraints.txt" "$wheel" ||
    fail "installing the wheel alone"
export AIRFLOW_HOME=$work/airflow-home
export AIRFLOW__CORE__LOAD_EXAMPLES=False
cd "$work"
"$work/venv/bin/python" - <<'EOF' || fail "importing the installed wheel"
import importlib, sysconfig
import enso_provider
assert enso_provider.__file__.startswith(sysconfig.get_paths()["purelib"]), enso_provider.__file__
for module in ("hooks.enso", "operators.batch_events", "operators.replay", "decorators.enso_events",
               "testing", "version_compat"):
    importlib.import_module(f"enso_provider.{module}")
EOF
"$work/venv/bin/python" -m airflow providers list --output json >"$work/providers.json" 2>"$work/providers.err" ||
    { cat "$work/providers.err" >&2; fail "airflow providers list"; }
grep -q '"package_name": "airflow-provider-enso"' "$work/providers.json" ||
    { cat "$work/providers.json" "$work/providers.err" >&2; fail "airflow providers list does not list airflow-provider-enso"; }
say "the installed wheel imports and is listed by airflow providers list: passed"
