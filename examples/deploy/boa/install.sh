#!/bin/sh
# Install boa's hand-over CGI as CGI_BIN/nph-ws (the nph- prefix makes boa
# give it the client's socket). SOCKET is the daemon's --handover socket;
# boa cannot pass it in the CGI's environment (see boa.conf), so:
# - HANDOVER set: the C program examples/c/wsbridge-handover.c, built
#   static with SOCKET compiled in (make handover WSBRIDGE_HANDOVER=SOCKET);
# - else at the default socket: the wsbridge binary itself under that
#   name, a symlink (it hands over when run as nph-*, to /run/wsbridge.sock);
# - else: a two-line script running wsbridge --handover-send=SOCKET.
set -eu
CGI_BIN=${CGI_BIN:-/usr/lib/cgi-bin}
WSBRIDGE=${WSBRIDGE:-/usr/bin/wsbridge}
HANDOVER=${HANDOVER:-}
SOCKET=${SOCKET:-/run/wsbridge.sock}

mkdir -p "$CGI_BIN"
rm -f "$CGI_BIN/nph-ws"
if [ -n "$HANDOVER" ]; then
	install -m 0755 "$HANDOVER" "$CGI_BIN/nph-ws"
elif [ "$SOCKET" = /run/wsbridge.sock ]; then
	ln -s "$WSBRIDGE" "$CGI_BIN/nph-ws"
else
	printf '#!/bin/sh\nexec %s --handover-send=%s\n' "$WSBRIDGE" "$SOCKET" >"$CGI_BIN/nph-ws"
	chmod 0755 "$CGI_BIN/nph-ws"
fi
