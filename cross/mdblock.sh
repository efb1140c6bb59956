#!/bin/sh
# cross/mdblock.sh: replace the lines between "<!-- NAME -->" and
# "<!-- /NAME -->" in FILE with standard input; everything else stays.
#
#   cross/mdblock.sh NAME FILE <TEXT

set -eu

[ $# -eq 2 ] || { sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
name=$1
file=$2
grep -qxF "<!-- $name -->" "$file" && grep -qxF "<!-- /$name -->" "$file" || {
	echo "cross/mdblock.sh: $file has no <!-- $name --> ... <!-- /$name --> block" >&2
	exit 1
}
tmp=$file.tmp.$$
awk -v first="<!-- $name -->" -v last="<!-- /$name -->" '
FNR == NR { block = block $0 "\n"; next }
$0 == first { print; printf "%s", block; skip = 1; next }
$0 == last { skip = 0 }
!skip { print }' - "$file" >"$tmp"
mv "$tmp" "$file"
echo "cross: $name written to $file" >&2
