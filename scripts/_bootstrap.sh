# Sourced by scripts/demo and scripts/test: makes .venv and installs the
# requirements file named by REQUIREMENTS (requirements.txt for the demo,
# requirements-dev.txt for the tests), with the files it includes.
# Needs only Python 3.11+ with venv (Debian/Ubuntu: apt-get install python3-venv).

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "This project needs Python 3.11 or newer as '$PYTHON' (set PYTHON=... to choose)." >&2
  exit 1
fi

# Installs Debian/Ubuntu packages that are missing, as root or with sudo.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "Please install: ${missing[*]} (apt-get install ${missing[*]})." >&2
      exit 1
    fi
  fi
  echo "Installing ${missing[*]} with apt-get..." >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Without pip when this Python has a pip of its own to install into .venv:
# seeding pip (ensurepip) is the slowest step of making a venv; uv puts pip
# into .venv later, so `.venv/bin/pip` works as usual.
if [ ! -x .venv/bin/python ]; then
  venv_options=()
  "$PYTHON" -m pip --version >/dev/null 2>&1 && venv_options=(--without-pip)
  if ! "$PYTHON" -m venv "${venv_options[@]}" .venv 2>/dev/null; then
    rm -rf .venv
    command -v apt-get >/dev/null && apt_install python3-venv
    "$PYTHON" -m venv .venv
  fi
fi

# pip install into .venv, with its own pip or else this Python's.
pip_into_venv() {
  if .venv/bin/python -m pip --version >/dev/null 2>&1; then
    .venv/bin/python -m pip install --disable-pip-version-check "$@"
  else
    "$PYTHON" -m pip --python .venv/bin/python install --disable-pip-version-check "$@"
  fi
}

# uv installs the requirements: it resolves and unpacks in parallel, which
# makes the demo's first start several times faster than pip does
# (bench/first_start.py; docs/benchmarks.md). It is the uv on PATH if there
# is one, else uv from PyPI installed into .venv by pip. From uv's cache
# alone first (no index round trips), then from the index. Where no uv wheel
# exists, or with SELECTOR_INSTALLER=pip, pip does it all.
install_requirements() {
  local uv=""
  if [ "${SELECTOR_INSTALLER:-uv}" = uv ]; then
    if command -v uv >/dev/null; then
      uv=$(command -v uv)
    else
      [ -x .venv/bin/uv ] || pip_into_venv --quiet "uv>=0.5,<1" \
        || echo "No uv; installing with pip." >&2
      [ -x .venv/bin/uv ] && uv=.venv/bin/uv
    fi
  fi
  if [ -n "$uv" ]; then
    local args=(pip install --quiet --python .venv/bin/python pip -r "$1")
    "$uv" "${args[@]}" --offline 2>/dev/null || "$uv" "${args[@]}"
  else
    pip_into_venv --quiet -r "$1"
  fi
}

# Install again only when one of the files changed (each file's stamp holds
# the checksums of it and of every file it includes with -r).
REQUIREMENTS=${REQUIREMENTS:-requirements.txt}
requirement_files() {
  echo "$1"
  local included
  for included in $(sed -n 's/^-r[[:space:]]*//p' "$1"); do
    requirement_files "$included"
  done
}
stamp=".venv/.installed-$REQUIREMENTS.sha256"
if ! sha256sum --check --status "$stamp" 2>/dev/null; then
  echo "Installing $REQUIREMENTS into .venv/..." >&2
  install_requirements "$REQUIREMENTS"
  # shellcheck disable=SC2046
  sha256sum $(requirement_files "$REQUIREMENTS") > "$stamp"
fi
