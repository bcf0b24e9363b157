#!/usr/bin/env bash
# The README's test command runs this: every `test/**/*.test.ts` under uvu in one process, then one
# closing line "N passed, N failed, N skipped". Narrow with a pattern: `npm test -- journal`.
# It builds dist/ first: the CLI and daemon tests run the compiled executables users run.
set -uo pipefail
cd "$(dirname "$0")/.."
pattern="${1:-}"
if ! npm run --silent build; then
  echo "0 passed, 1 failed, 0 skipped"
  echo "the build (npm run build) failed" >&2
  exit 1
fi
out=$(mktemp)
node --import tsx node_modules/uvu/bin.js test "${pattern:+.*${pattern}.*}\.test\.ts$" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$out")
total=$(awk '/Total:/{print $2}' <<<"$plain" | tail -n1)
passed=$(awk '/Passed:/{print $2}' <<<"$plain" | tail -n1)
skipped=$(awk '/Skipped:/{print $2}' <<<"$plain" | tail -n1)
rm -f "$out"
total=${total:-0}; passed=${passed:-0}; skipped=${skipped:-0}
failed=$((total - passed))
if [ "$rc" -ne 0 ] && [ "$failed" -le 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$total" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
exit "$rc"
