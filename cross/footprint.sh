#!/bin/sh
# cross/footprint.sh: the daemon's resident memory, idle and with N open
# connections, per connection and shared, natively and under qemu-user.
#
#   cross/footprint.sh DIR [FILE]
#
# Runs cross/footprint (go run) against DIR/linux-amd64/wsbridge natively
# and against DIR/linux-arm-v7/wsbridge and DIR/linux-mipsle-softfloat/
# wsbridge under qemu-arm-static and qemu-mipsel-static, where those are
# installed. With FILE, the table replaces the "footprint" block of FILE
# (see cross/mdblock.sh); without, it goes to stdout. N: $N, default 100.

set -eu

[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
dir=$1
file=${2:-}
n=${N:-100}
GO=${GO:-go}
here=$(dirname "$0")

tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
pkg=$here/footprint
case $pkg in /*|./*) ;; *) pkg=./$pkg ;; esac
"$GO" build -o "$tool/footprint" "$pkg"

rows=
row() { # LABEL FLAGS COMMAND...
	label=$1 flags=$2
	shift 2
	rows="$rows$("$tool/footprint" -n "$n" $flags -label "$label" -- "$@")
"
}
for mode in "" -shared; do
	[ -x "$dir/linux-amd64/wsbridge" ] && row "linux-amd64, native" "$mode" "$dir/linux-amd64/wsbridge"
	if command -v qemu-arm-static >/dev/null && [ -x "$dir/linux-arm-v7/wsbridge" ]; then
		row "linux-arm-v7, qemu-arm-static" "$mode" qemu-arm-static "$dir/linux-arm-v7/wsbridge"
	fi
	if command -v qemu-mipsel-static >/dev/null && [ -x "$dir/linux-mipsle-softfloat/wsbridge" ]; then
		row "linux-mipsle-softfloat, qemu-mipsel-static" "$mode" qemu-mipsel-static "$dir/linux-mipsle-softfloat/wsbridge"
	fi
done
[ -n "$rows" ] || { echo "cross/footprint.sh: no $dir/linux-*/wsbridge: run make cross first" >&2; exit 1; }

table=$(printf '| build | mode | idle RSS KiB | connections | RSS KiB | KiB per connection |\n| --- | --- | ---: | ---: | ---: | ---: |\n%s' "$rows")
if [ -z "$file" ]; then
	printf '%s\n' "$table"
else
	printf '%s\n' "$table" | sh "$here/mdblock.sh" footprint "$file"
fi
