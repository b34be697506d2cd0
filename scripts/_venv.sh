# Sourced by the scripts in this folder: make sure .venv exists and holds the project.
# Set SECURECHAT_EXTRA=test before sourcing to install the test extra too.
# (An environment variable, not "$1": a sourced file sees its caller's arguments.)
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
_extra="${SECURECHAT_EXTRA:-}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "securechat: creating virtualenv in $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
fi
# A test install also satisfies a plain one.
_stamp="$VENV/.installed-${_extra:-plain}"
[ -z "$_extra" ] && [ -f "$VENV/.installed-test" ] && [ "$VENV/.installed-test" -nt "$ROOT/pyproject.toml" ] && _stamp="$VENV/.installed-test"
if [ ! -f "$_stamp" ] || [ "$ROOT/pyproject.toml" -nt "$_stamp" ]; then
    echo "securechat: installing the project into $VENV${_extra:+ (with the $_extra extra)}" >&2
    _spec="$ROOT"
    [ -n "$_extra" ] && _spec="$ROOT[$_extra]"
    # pip's build chatter goes to a log; it is shown only when the install fails.
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$_spec" \
            > "$VENV/pip-install.log" 2>&1; then
        cat "$VENV/pip-install.log" >&2
        echo "securechat: installing into $VENV failed (log above)" >&2
        exit 1
    fi
    touch "$_stamp"
fi
export PATH="$VENV/bin:$PATH"
