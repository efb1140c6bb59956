#!/bin/sh
# cross/sizes.sh: the size table of the binaries cross/build.sh wrote.
#
#   cross/sizes.sh DIR [FILE]
#
# One row per DIR/TARGET/ that holds a wsbridge, with the sizes of wsbridge
# and wsbridge-minimal (the wsbridge_minimal build tag), in bytes and MiB,
# and xz-compressed as a squashfs image holds them (xz -9e, 256 KiB blocks).
# With FILE, the table replaces the lines between "<!-- cross sizes -->"
# and "<!-- /cross sizes -->" in FILE; without, it goes to stdout.

set -eu

[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
dir=$1
file=${2:-}
command -v xz >/dev/null 2>&1 || {
	echo "cross/sizes.sh: no xz for the compressed column: apt-get install xz-utils" >&2
	exit 1
}

size() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo -; fi; }
# xzsize is roughly what the file costs in an OpenWrt squashfs image: xz
# with the dictionary bounded by squashfs's 256 KiB blocks.
xzsize() { if [ -f "$1" ]; then xz -9e --block-size=256KiB -c "$1" | wc -c | tr -d ' '; else echo -; fi; }

rows=
for d in "$dir"/*/; do
	t=$(basename "$d")
	[ -f "$d/wsbridge" ] || continue
	rows="$rows$t $(size "$d/wsbridge") $(xzsize "$d/wsbridge") $(size "$d/wsbridge-minimal") $(xzsize "$d/wsbridge-minimal")
"
done
[ -n "$rows" ] || { echo "cross/sizes.sh: no $dir/*/wsbridge: run make cross first" >&2; exit 1; }

table=$(printf '%s' "$rows" | awk '
function mib(n) { return n == "-" ? "—" : sprintf("%.2f", n / 1048576) }
function cell(n, x) { return n == "-" ? "| — | — | — " : sprintf("| %d | %s | %s ", n, mib(n), mib(x)) }
BEGIN {
	print "| target | wsbridge bytes | MiB | xz MiB | minimal bytes | MiB | xz MiB |"
	print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
}
NF == 5 { print "| " $1 " " cell($2, $3) cell($4, $5) "|" }')

if [ -z "$file" ]; then
	printf '%s\n' "$table"
	exit 0
fi
printf '%s\n' "$table" | sh "$(dirname "$0")/mdblock.sh" "cross sizes" "$file"
