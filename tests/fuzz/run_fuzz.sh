#!/usr/bin/env bash
# Runs every fuzz target of a KELPIE_FUZZ build for FUZZ_SECONDS (default 60) each, starting from
# its seed corpus in tests/fuzz/corpus/<target>/ (new inputs go to a scratch copy, so the
# committed corpus stays small). Prints libFuzzer's own "Done N runs" line per target; exits
# non-zero on the first crash, leaving the reproducer in $FUZZ_ARTIFACTS (default
# <build>/fuzz-artifacts).
#   usage: run_fuzz.sh BUILD_DIR [TARGET...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_fuzz.sh BUILD_DIR [TARGET...]}
shift
seconds=${FUZZ_SECONDS:-60}
artifacts=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(inode login_keys scsi_cdb sheep_request iscsi_pdu)
fi
mkdir -p "$artifacts"
status=0
for t in "${targets[@]}"; do
  bin="$build/bin/fuzz_$t"
  work=$(mktemp -d "/tmp/kelpie-fuzz-$t-XXXXXX")
  cp -r "$here/corpus/$t/." "$work/" 2>/dev/null || true
  log="$artifacts/$t.log"
  "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=70000 \
    -artifact_prefix="$artifacts/$t-" -print_final_stats=1 "$work" >"$log" 2>&1
  rc=$?
  done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1)
  rm -rf "$work"
  if [ $rc -ne 0 ] || [ -z "$done_line" ]; then
    echo "fuzz $t: FAILED (exit $rc); log: $log"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
    status=1
    break
  fi
  echo "fuzz $t: $done_line"
done
exit $status
