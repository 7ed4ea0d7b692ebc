#!/usr/bin/env bash
# Create (or refresh) the CPU-only development environment for nasco.
#
#   bash scripts/setup.sh            # from any directory
#
# Environment:
#   NASCO_VENV  where the virtual environment lives (default: <repo>/.venv)
#   PYTHON      interpreter used to create it (default: python3; needs >= 3.11)
#
# Steps: create the venv if it is missing; install the fully pinned closure in
# requirements/cpu.lock with --no-deps, so spikingjelly's declared torchvision,
# torchaudio, tensorboard and CUDA torch are never pulled; byte-compile what was new;
# install nasco itself in editable mode, which puts the `nasco` console script in
# <venv>/bin. Safe to rerun: an existing venv is reused and pip skips what is already
# installed at the pinned version.
set -euo pipefail

start=$SECONDS
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NASCO_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
lock="$repo/requirements/cpu.lock"

say() { printf 'setup.sh: %s\n' "$*"; }
die() { printf 'setup.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# pip noise that is not an error: the local mirror's index lacks most projects, and with
# --no-deps pip may still mention spikingjelly's deliberately absent declared deps.
noise="^WARNING: Location '[^']*' is ignored: "
noise+="|^spikingjelly [0-9.]+ requires (torchvision|torchaudio|tensorboard|scienceplots|h5py|SciencePlots), which is not installed\.$"

# Run pip inside the venv, drop the noise lines, keep pip's exit status.
pip_run() {
    local status
    set +e
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip "$@" 2>&1 | grep -Ev "$noise"
    status=${PIPESTATUS[0]}
    set -e
    [[ $status -eq 0 ]] || die "pip $* failed (exit $status)"
}

[[ -f "$lock" ]] || die "missing $lock"

# 1. virtual environment
if [[ -x "$venv/bin/python" ]]; then
    say "reusing venv $venv"
else
    command -v "$python" >/dev/null 2>&1 || die "interpreter '$python' not found (set PYTHON=...)"
    say "creating venv $venv with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$python" -m venv "$venv" || die "'$python -m venv $venv' failed"
fi
"$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$venv uses Python $("$venv/bin/python" -V 2>&1); nasco needs >= 3.11 (remove it and rerun)"

# 2. pinned dependencies (the full closure, so --no-deps). pip byte-compiles serially,
#    which is most of the install time; compileall on all cores afterwards is ~2x faster
#    (and the .pyc files matter: torch/sklearn imports are 2-3x slower without them).
#    A stamp file records a finished compile, so an interrupted run compiles on the next.
say "installing pinned dependencies from requirements/cpu.lock"
stamp="$venv/.nasco-compiled"
compiled=0
[[ -f "$stamp" ]] && compiled=1
rm -f "$stamp"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
pip_run install -q --no-deps --no-compile --report "$report" -r "$lock"
installed="$("$venv/bin/python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["install"]))' "$report")"
if [[ $installed -gt 0 || $compiled -eq 0 ]]; then
    say "byte-compiling site-packages ($installed packages new)"
    # Exit status 1 only means some file did not compile (e.g. torch ships a Python 3.12-only
    # module); pip ignores those too. Anything worse (status > 1) is an error.
    status=0
    "$venv/bin/python" -m compileall -q -j 0 "$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
        >/dev/null 2>&1 || status=$?
    [[ $status -le 1 ]] || die "byte-compiling site-packages failed (exit $status)"
fi
touch "$stamp"

# 3. nasco itself, editable. setuptools and wheel (the build requirements) come from the
#    lock, so no isolated build environment has to be fetched.
say "installing nasco (editable)"
pip_run install -q --no-deps --no-build-isolation -e "$repo"

[[ -x "$venv/bin/nasco" ]] || die "console script $venv/bin/nasco was not installed"
torch_version="$("$venv/bin/python" -c 'import nasco, torch; print(torch.__version__)')" \
    || die "import check (nasco, torch) failed in $venv"

say "done in $((SECONDS - start))s (torch $torch_version, venv $venv)"
