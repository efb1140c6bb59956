#!/bin/sh
# cross/sizes.sh: the size table of the binaries cross/build.sh wrote.
#
#   cross/sizes.sh DIR [FILE]
#
# One row per DIR/TARGET/ that holds a wsbridge, with the sizes of wsbridge
# and wsbridge-minimal (the wsbridge_minimal build tag), in bytes and MiB.
# With FILE, the table replaces the lines between "<!-- cross sizes -->"
# and "<!-- /cross sizes -->" in FILE; without, it goes to stdout.

set -eu

[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
dir=$1
file=${2:-}

size() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo -; fi; }

rows=
for d in "$dir"/*/; do
	t=$(basename "$d")
	[ -f "$d/wsbridge" ] || continue
	rows="$rows$t $(size "$d/wsbridge") $(size "$d/wsbridge-minimal")
"
done
[ -n "$rows" ] || { echo "cross/sizes.sh: no $dir/*/wsbridge: run make cross first" >&2; exit 1; }

table=$(printf '%s' "$rows" | awk '
function cell(n) { return n == "-" ? "| — | — " : sprintf("| %d | %.2f ", n, n / 1048576) }
BEGIN {
	print "| target | wsbridge bytes | MiB | minimal bytes | MiB |"
	print "| --- | ---: | ---: | ---: | ---: |"
}
NF == 3 { print "| " $1 " " cell($2) cell($3) "|" }')

if [ -z "$file" ]; then
	printf '%s\n' "$table"
	exit 0
fi
printf '%s\n' "$table" | sh "$(dirname "$0")/mdblock.sh" "cross sizes" "$file"
