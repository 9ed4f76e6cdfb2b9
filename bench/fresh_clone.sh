#!/usr/bin/env bash
# A newcomer's first steps, measured: clone the repository, make a fresh virtual environment, run the
# README's two commands in order (read from its first bash block, as .ci/run does), with bubblewrap or
# as on a machine without it.
#
#   bash bench/fresh_clone.sh [--without-bubblewrap] [--tier fast|full] [--keep] [REPO]
#
# --without-bubblewrap  runs everything in a private mount namespace where /usr/bin/bwrap is /dev/null
#                       (not executable: `shutil.which("bwrap")` finds nothing), as on a fresh Linux or
#                       macOS. Needs root (unshare). Nothing outside the namespace changes.
# --tier fast           the second command with `-m "not slow"` appended (the fast tier); default full,
#                       the README's command exactly.
# REPO                  what to clone (default: this checkout; its committed HEAD, not the working tree).
#
# Prints each command's time and exit code, the pytest summary line, and where the venv and the clone
# are (removed at the end unless --keep). Exit code: 0 when both commands passed.
set -euo pipefail

without=0 tier=full keep=0 repo=""
while [ $# -gt 0 ]; do
  case "$1" in
    --without-bubblewrap) without=1 ;;
    --tier) tier=$2; shift ;;
    --keep) keep=1 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) repo=$1 ;;
  esac
  shift
done
repo=${repo:-$(cd "$(dirname "$0")/.." && pwd)}

if [ "$without" = 1 ] && [ -z "${FRESH_CLONE_HIDDEN:-}" ]; then
  # re-run this script inside a mount namespace that hides bubblewrap
  exec unshare --mount --propagation private env FRESH_CLONE_HIDDEN=1 bash -c \
    'mount --bind /dev/null "$(command -v bwrap)" && exec bash "$0" "$@"' "$0" --without-bubblewrap \
    --tier "$tier" $([ "$keep" = 1 ] && echo --keep) "$repo"
fi

work=$(mktemp -d /tmp/fresh-clone.XXXXXX)
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/harness"
cd "$work/harness"
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
python - <<'EOF'
import shutil, sys
print(f"python {sys.version.split()[0]} at {sys.executable}; bubblewrap: {shutil.which('bwrap') or 'NOT FOUND'}")
EOF
echo "commit $(git rev-parse --short HEAD), clone $work/harness"

mapfile -t commands < <(awk '/^```bash$/ { inside = 1; next } /^```$/ { if (inside) exit } inside' README.md)
[ "${#commands[@]}" -eq 2 ] || { echo "README.md's first bash block should hold 2 commands"; exit 1; }
second=${commands[1]%%#*}
[ "$tier" = fast ] && second="$second -m \"not slow\""

status=0
for i in 0 1; do
  command=${commands[$i]%%#*}
  [ "$i" = 1 ] && command=$second
  echo "=== README command $((i + 1)): $command"
  started=$SECONDS
  set +e
  eval "$command" > "$work/command-$((i + 1)).log" 2>&1
  rc=$?
  set -e
  echo "exit $rc after $((SECONDS - started)) s (log: $work/command-$((i + 1)).log)"
  tail -n "$([ "$rc" = 0 ] && echo 3 || echo 30)" "$work/command-$((i + 1)).log"
  # a failing test's name survives the clone's removal (pytest's summary lists it after the skips)
  [ "$rc" = 0 ] || grep -E "^(FAILED|ERROR) " "$work/command-$((i + 1)).log" || true
  [ "$rc" = 0 ] || status=1
done
exit "$status"
