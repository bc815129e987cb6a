#!/usr/bin/env bash
# Lists the largest directories directly under each path in $PATHS (same filesystem only).
# Inputs (environment): PATHS (separated by commas), TOP (how many to list).
set -u
top="${TOP:-10}"
for path in $(printf '%s' "${PATHS:-}" | tr ',\n' '  '); do
  [ -d "$path" ] || continue
  echo "== $path"
  timeout 60 du -x -k --max-depth=1 -- "$path" 2>/dev/null | sort -rn | head -n "$((top + 1))" \
    | awk '{ printf "%10.1f MiB  %s\n", $1 / 1024, $2 }'
  echo
done
