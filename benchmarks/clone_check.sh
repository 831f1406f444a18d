#!/usr/bin/env bash
# The README's test command in a fresh clone named "pykeen-mkgformer" inside a folder whose path has a space:
# the tests must not depend on where the checkout lies or what it is called (issue 23).
#
#   benchmarks/clone_check.sh                        # fresh venv, the README's install, the whole suite
#   benchmarks/clone_check.sh --venv .venv           # copy this venv instead of installing (offline, faster)
#   benchmarks/clone_check.sh --venv .venv tests/cli/test_pykeen_cli.py tests/cli/test_demo.py   # only these tests
#   CLONE_CHECK_NO_WRITE=1 benchmarks/clone_check.sh ...   # do not record the outcome in RESULTS.md
#   CLONE_CHECK_KEEP=1 benchmarks/clone_check.sh ...       # keep the clone's venv (removed by default)
#
# The clone is made from this checkout's HEAD (commit first). The outcome (pytest's summary line, the time,
# the load average) is written to benchmarks/RESULTS.md, section "Tests from a clone named pykeen-mkgformer".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv=""
if [[ "${1:-}" == "--venv" ]]; then
    venv="$(cd "$2" && pwd)"
    shift 2
fi
tests=("$@")
[[ ${#tests[@]} -eq 0 ]] && tests=(tests)

root="$(mktemp -d)/a dir"
clone="$root/pykeen-mkgformer"
mkdir -p "$root"
git clone --quiet "$here" "$clone"
cd "$clone"
echo "clone: $clone (commit $(git rev-parse --short HEAD))"

start=$(date +%s)
if [[ -z "$venv" ]]; then
    # the README's command
    python3 -m venv .venv && .venv/bin/pip install --quiet torch==2.13.0 -e ".[tests]"
    how="fresh venv, the README's install (\`pip install torch==2.13.0 -e \".[tests]\"\`)"
else
    cp -a "$venv" .venv
    # console scripts name their interpreter: point them at the copy (pip's /bin/sh form, the path has a space)
    .venv/bin/python - "$venv" "$clone/.venv" <<'EOF'
import sys
from pathlib import Path

old, new = sys.argv[1], sys.argv[2]
for script in Path(new, "bin").iterdir():
    if script.is_symlink() or not script.is_file():
        continue
    try:
        lines = script.read_text().splitlines(keepends=True)
    except (UnicodeDecodeError, OSError):
        continue
    if lines and lines[0].startswith(f"#!{old}/bin/python"):
        interpreter = lines[0][2:].strip().replace(old, new, 1)
        script.write_text(f"#!/bin/sh\n'''exec' \"{interpreter}\" \"$0\" \"$@\"\n' '''\n" + "".join(lines[1:]))
EOF
    .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
    how="copy of $venv, the clone installed in it (\`pip install --no-deps -e .\`)"
fi
install=$(( $(date +%s) - start ))
located="$(.venv/bin/python -c 'import pykeen_mkgformer; print(pykeen_mkgformer.__file__)')"
[[ "$located" == "$clone"/* ]] || { echo "the venv imports $located, not the clone's package" >&2; exit 2; }

data="${PYKEEN_MKGFORMER_DATA:-$here/../shared/data}"
[[ -d "$data" ]] && export PYKEEN_MKGFORMER_DATA="$(cd "$data" && pwd)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
start=$(date +%s)
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "${tests[@]}" 2>&1 | tee "$root/pytest.log"
status=${PIPESTATUS[0]}
set -e
seconds=$(( $(date +%s) - start ))
summary="$(grep -E '^(=+ )?[0-9]+ (passed|failed)|(passed|failed|error).* in [0-9.]+s' "$root/pytest.log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "clone_check: exit $status, $summary, install ${install} s, tests ${seconds} s, load $load"

if [[ -z "${CLONE_CHECK_NO_WRITE:-}" ]]; then
    cd "$here"
    COMMIT="$(git -C "$clone" rev-parse --short HEAD)" CLONE="$clone" HOW="$how" TESTS="${tests[*]}" STATUS="$status" SUMMARY="$summary" INSTALL="$install" SECONDS_="$seconds" LOAD="$load" \
    "$clone/.venv/bin/python" - <<'EOF'
import os
import sys

sys.path.insert(0, "benchmarks")
from _results import write_section

e = os.environ
body = (
    "| clone | commit | install | tests | pytest | exit | install (s) | tests (s) | load average (1/5/15 min) at the end |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
    f"| `{e['CLONE']}` | {e['COMMIT']} | {e['HOW']} | `{e['TESTS']}` | {e['SUMMARY']} | {e['STATUS']} | {e['INSTALL']} | {e['SECONDS_']} | {e['LOAD']} |\n"
)
write_section("Tests from a clone named pykeen-mkgformer", body,
              command="benchmarks/clone_check.sh " + (f"--venv VENV {e['TESTS']}" if "copy" in e["HOW"] else e["TESTS"]))
EOF
fi
[[ -z "${CLONE_CHECK_KEEP:-}" ]] && rm -rf "$clone/.venv"   # 2 GB; CLONE_CHECK_KEEP=1 keeps it
exit "$status"
