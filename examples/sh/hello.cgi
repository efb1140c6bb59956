#!/bin/sh
# hello.cgi: an old-style CGI script, the kind that sits in the cgi-bin
# directory of boa or thttpd, answering each WebSocket message:
#
#   wsbridge --cgi-per-message examples/sh/hello.cgi
#
# wsbridge runs it once per message, the way a web server runs a CGI
# script for a POST request: the message on stdin, its length in
# CONTENT_LENGTH, REQUEST_METHOD, REMOTE_ADDR and the other CGI variables
# in the environment. What it prints after its header block and the blank
# line that ends it is the reply. POSIX sh: dash, bash and BusyBox ash.
#
# Two messages show how the bridge copes with a bad script: "fail" exits
# 3 with a line on stderr and no reply, "slow" answers after 5 seconds.

# Read exactly CONTENT_LENGTH bytes, as CGI says: stdin need not end there.
# dd, not head -c, which POSIX lacks. $(...) drops trailing newlines.
case ${CONTENT_LENGTH-} in
'' | *[!0-9]*) msg=$(cat) ;;
*) msg=$(dd bs=1 count="$CONTENT_LENGTH" 2>/dev/null) ;;
esac

case $msg in
fail)
	echo "hello.cgi: failing on purpose, as asked" >&2
	exit 3
	;;
slow)
	sleep 5
	;;
esac

# The header block: one field, then a blank line. CRLF, as a web server
# expects; wsbridge takes "\n" too.
printf 'Content-type: text/plain\r\n\r\n'
printf 'hello from hello.cgi\n'
printf 'method: %s\n' "${REQUEST_METHOD-none}"
printf 'from: %s\n' "${REMOTE_ADDR-unknown}"
printf 'you sent: %s\n' "$msg"
printf 'upper-cased: %s\n' "$(printf '%s' "$msg" | LC_ALL=C tr a-z A-Z)"
