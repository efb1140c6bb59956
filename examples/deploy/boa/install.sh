#!/bin/sh
# Install boa's hand-over CGI as CGI_BIN/nph-ws: the wsbridge binary itself
# under that name (a symlink; it hands over when run as nph-*), or, with
# HANDOVER set, the C program examples/c/wsbridge-handover.c built static
# (make handover), for a board short of space for a second Go binary.
set -eu
CGI_BIN=${CGI_BIN:-/usr/lib/cgi-bin}
WSBRIDGE=${WSBRIDGE:-/usr/bin/wsbridge}
HANDOVER=${HANDOVER:-}

mkdir -p "$CGI_BIN"
if [ -n "$HANDOVER" ]; then
	install -m 0755 "$HANDOVER" "$CGI_BIN/nph-ws"
else
	ln -sf "$WSBRIDGE" "$CGI_BIN/nph-ws"
fi
