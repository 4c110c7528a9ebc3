#!/usr/bin/env bash
# Set up screener on a fresh Debian machine: the apt packages GPAW builds against, then a
# virtual environment at .venv holding screener (editable), its test tools and GPAW.
# Safe to rerun: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# GPAW's build and MPI, then the browser the dashboard tests drive (headless, through selenium)
APT_PACKAGES=(libxc-dev libopenblas-dev libfftw3-dev libopenmpi-dev openmpi-bin
              libscalapack-openmpi-dev chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.screener-setup
want=$(cat pyproject.toml deploy/gpaw-siteconfig.py scripts/setup.sh | sha1sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (GPAW compiles: about 2 minutes)"
  .venv/bin/pip install -q --upgrade pip
  # GPAW_CONFIG is read when pip builds gpaw (the [dft] extra) against the packages above
  GPAW_CONFIG="$PWD/deploy/gpaw-siteconfig.py" .venv/bin/pip install -q -e ".[dev,dft]"
  echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/python -c 'import gpaw, screener; print("screener", screener.__version__, "gpaw", gpaw.__version__)'))"
