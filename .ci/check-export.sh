#!/usr/bin/env bash
# Fail when tradekit/ is not what `nbdev-export` makes of nbs/, or a notebook is not `nbdev-clean`.
set -euo pipefail
BIN=${BIN:-.venv/bin}
snapshot() {
  find tradekit nbs \( -name '*.py' -o -name '*.ipynb' \) -not -path '*/.ipynb_checkpoints/*' -print0 \
    | sort -z | xargs -0 md5sum
}
before=$(snapshot)
"$BIN/nbdev-export"
"$BIN/nbdev-clean"
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") | grep '^>' | awk '{print "  changed: " $3}' >&2 || true
  echo "error: tradekit/ was out of date with nbs/ (or a notebook was not clean): run nbdev-export and" \
    "nbdev-clean (done now), review and commit both" >&2
  exit 1
fi
echo "check-export: tradekit/ matches nbs/"
