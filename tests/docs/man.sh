#!/usr/bin/env bash
# man.sh PAGE WORD...: the built man page PAGE renders with man(1) without a warning, and its text
# contains every WORD (a section heading or an option, say).
set -euo pipefail
page=$1
shift
command -v man >/dev/null || { echo "SKIP: man not found (package man-db)"; exit 77; }
[[ -f $page ]] || { echo "FAIL: $page was not built"; exit 1; }
err=$(mktemp)
trap 'rm -f "$err"' EXIT
text=$(MANWIDTH=80 MAN_KEEP_FORMATTING=0 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>"$err" | col -b)
if [[ -s $err ]]; then
        echo "FAIL: man -l $page warns:"
        cat "$err"
        exit 1
fi
lines=$(wc -l <<<"$text")
((lines > 20)) || { echo "FAIL: man -l $page rendered only $lines lines:"; printf '%s\n' "$text"; exit 1; }
for word; do
        [[ $text == *"$word"* ]] || { echo "FAIL: man -l $page does not mention '$word'"; exit 1; }
        echo "ok: $page mentions '$word'"
done
echo "ok: man -l $page renders $lines lines without a warning"
