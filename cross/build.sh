#!/bin/sh
# cross/build.sh: static, stripped, version-stamped Linux binaries of one
# Go package for the boards wsbridge runs on. POSIX sh; see cross/README.md.
#
#   cross/build.sh [-o DIR] [--pkg PKG] [--name NAME] [--tags TAGS]
#                  [--version V] [TARGET...]
#
# TARGET is os-arch[-variant] as in the output path, e.g. linux-arm-v7,
# linux-mipsle-softfloat; none means every target of `cross/build.sh --list`.
# Each binary goes to DIR/TARGET/NAME (NAME: the package's last element).

set -eu

GO=${GO:-go}
out=bin
pkg=./cmd/wsbridge
name=
tags=
version=

# Every target: os-arch[-variant]. The variant says GOARM (v5, v6, v7) or
# GOMIPS (softfloat: most MIPS SoCs, e.g. MT7621, ar71xx, have no FPU).
all_targets="linux-arm-v5 linux-arm-v6 linux-arm-v7 linux-arm64
linux-mips-softfloat linux-mipsle-softfloat linux-mips64 linux-mips64le
linux-riscv64 linux-386 linux-amd64"

usage() {
	sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	--pkg) pkg=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	--tags) tags=$2; shift 2 ;;
	--version) version=$2; shift 2 ;;
	--list) echo "$all_targets"; exit 0 ;;
	-h|--help) usage ;;
	-*) echo "cross/build.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ -n "$name" ] || name=$(basename "$pkg")
[ -n "$version" ] || version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
[ $# -gt 0 ] || set -- $all_targets

# nethttpomithttp2: net/http without its bundled HTTP/2. wsbridge serves
# plain HTTP/1.1 only (no TLS, no h2c), so HTTP/2 is dead weight: 390 KB
# of a linux-mipsle binary.
tags=nethttpomithttp2${tags:+,$tags}

for t in "$@"; do
	os=${t%%-*}
	rest=${t#*-}
	arch=${rest%%-*}
	variant=
	[ "$rest" = "$arch" ] || variant=${rest#*-}
	goarm= gomips= gomips64=
	case $arch-$variant in
	arm-v5|arm-v6|arm-v7) goarm=${variant#v} ;;
	mips-softfloat|mipsle-softfloat|mips-hardfloat|mipsle-hardfloat) gomips=$variant ;;
	mips64-softfloat|mips64le-softfloat|mips64-hardfloat|mips64le-hardfloat) gomips64=$variant ;;
	*-) ;;
	*) echo "cross/build.sh: unknown target $t (want os-arch[-variant]; see --list)" >&2; exit 2 ;;
	esac
	dst=$out/$t/$name
	mkdir -p "$out/$t"
	echo "cross: $t -> $dst" >&2
	env CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" GOARM="$goarm" GOMIPS="$gomips" GOMIPS64="$gomips64" \
		"$GO" build -trimpath -tags "$tags" -ldflags "-s -w -X main.version=$version" -o "$dst" "$pkg"
done

