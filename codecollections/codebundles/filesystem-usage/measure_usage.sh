#!/usr/bin/env bash
# Measures the filesystem holding each path in $PATHS and prints one tab-separated line per path:
#   path  verdict  used_percent  inodes_used_percent  mount  size_kb  available_kb  detail
# verdict is ok, warning, critical or missing (the path does not exist).
# Inputs (environment): PATHS (separated by commas), WARNING_PERCENT, CRITICAL_PERCENT.
set -u
warn="${WARNING_PERCENT:-80}"
crit="${CRITICAL_PERCENT:-90}"

for path in $(printf '%s' "${PATHS:-}" | tr ',\n' '  '); do
  [ -z "$path" ] && continue
  if [ ! -e "$path" ]; then
    printf '%s\tmissing\t\t\t\t\t\t%s\n' "$path" "the path does not exist on this host"
    continue
  fi
  blocks=$(df -P -k -- "$path" 2>&1 | awk 'NR == 2 { print $2 "\t" $4 "\t" $5 "\t" $6 }')
  if [ -z "$blocks" ]; then
    printf '%s\tmissing\t\t\t\t\t\t%s\n' "$path" "df could not read the filesystem of this path"
    continue
  fi
  size_kb=$(printf '%s' "$blocks" | cut -f1)
  avail_kb=$(printf '%s' "$blocks" | cut -f2)
  used=$(printf '%s' "$blocks" | cut -f3 | tr -d '%')
  mount=$(printf '%s' "$blocks" | cut -f4)
  inodes=$(df -P -i -- "$path" 2>/dev/null | awk 'NR == 2 { print $5 }' | tr -d '%')
  case "$inodes" in ''|-) inodes=0 ;; esac
  worst=$used
  [ "$inodes" -gt "$worst" ] && worst=$inodes
  if [ "$worst" -ge "$crit" ]; then
    verdict=critical
  elif [ "$worst" -ge "$warn" ]; then
    verdict=warning
  else
    verdict=ok
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$path" "$verdict" "$used" "$inodes" "$mount" "$size_kb" "$avail_kb"
done
