#!/bin/sh
# Install lighttpd's hand-over CGI as CGI_BIN/wsbridge-handover: the
# wsbridge binary itself under that name (a symlink; it hands over when run
# as wsbridge-handover), or, with HANDOVER set, the C program
# examples/c/wsbridge-handover.c built static (make handover). Either finds
# the socket in $WSBRIDGE_HANDOVER, which lighttpd.conf sets.
set -eu
CGI_BIN=${CGI_BIN:-/usr/lib/cgi-bin}
WSBRIDGE=${WSBRIDGE:-/usr/bin/wsbridge}
HANDOVER=${HANDOVER:-}

mkdir -p "$CGI_BIN"
rm -f "$CGI_BIN/wsbridge-handover"
if [ -n "$HANDOVER" ]; then
	install -m 0755 "$HANDOVER" "$CGI_BIN/wsbridge-handover"
else
	ln -s "$WSBRIDGE" "$CGI_BIN/wsbridge-handover"
fi
