#!/bin/sh
# Renders an HTML incident report (vigil incident --out x.html, or the one
# make demo writes to .vigil-demo/incident.html) in headless Chromium and
# saves a full-page screenshot, to check how a browser shows it offline.
#
#   scripts/report-screenshot.sh .vigil-demo/incident.html report.png
#
# Needs Debian's chromium (apt-get install chromium).
set -eu
if [ $# -ne 2 ]; then
	echo "usage: $0 REPORT.html OUT.png" >&2
	exit 2
fi
report=$(realpath "$1")
out=$(realpath -m "$2")
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
	echo "$0: no chromium; install it with: apt-get install chromium" >&2
	exit 1
fi
# A tall window shows the whole report; --no-sandbox because CI runs as root.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rm -f "$out"
if ! "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
	--window-size=1280,4000 --screenshot="$out" "file://$report" >"$log" 2>&1 || ! test -s "$out"; then
	echo "$0: chromium made no screenshot:" >&2
	cat "$log" >&2
	exit 1
fi
echo "wrote $out"
