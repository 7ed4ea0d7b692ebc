#!/usr/bin/env bash
# Lint nasco: ruff (pycodestyle, pyflakes, import order; configured in pyproject.toml) and
# import-linter (the layers contract in setup.cfg: a lower layer never imports a higher one).
#
#   bash scripts/lint.sh            # from any directory; exits non-zero if either fails
#
# Environment:
#   NASCO_VENV  the virtual environment with ruff and import-linter (default: <repo>/.venv,
#               made by scripts/setup.sh from requirements/cpu.lock)
#
# import-linter reads the package from the files on disk, and nasco.predictors lives in
# predictors/ (pyproject's package-dir), outside nasco/. The check therefore runs on a copy
# of the sources laid out as installed (nasco/ with predictors/ as nasco/predictors), in a
# temporary folder.
set -uo pipefail

repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NASCO_VENV:-$repo/.venv}"
say() { printf 'lint.sh: %s\n' "$*"; }

for tool in ruff lint-imports; do
    if [[ ! -x "$venv/bin/$tool" ]]; then
        say "ERROR: $venv/bin/$tool not found; run scripts/setup.sh (it installs requirements/cpu.lock)" >&2
        exit 2
    fi
done

status=0

say "ruff check"
"$venv/bin/ruff" check --no-cache "$repo" || status=1

say "lint-imports (layers contract in setup.cfg)"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/src"
cp -R "$repo/nasco" "$tree/src/nasco"
cp -R "$repo/predictors" "$tree/src/nasco/predictors"
find "$tree/src" -name __pycache__ -type d -prune -exec rm -rf {} +
# lint-imports puts its working directory first on sys.path, so the copy is what it reads.
(cd "$tree/src" && "$venv/bin/lint-imports" --no-cache "$repo/setup.cfg") || status=1

if [[ $status -eq 0 ]]; then
    say "all checks passed"
else
    say "FAILED" >&2
fi
exit $status
