package main

// The per-message CGI script that tests of the binary still run; the CGI
// mode's own tests are bridge's (bridge/cgi_test.go).

// cgiScript is a per-message CGI script in POSIX sh: it answers with the
// CGI variables it got and the message, after a header block. "sleep N
// TAG" answers after N seconds, "fail" exits 3, "binary" answers with a
// binary content type, "status" with its own Status, "bad-header" with a
// broken block, "quiet" with a header and no body. It counts the scripts
// of the run that overlap in $STATE (one file each while it runs).
const cgiScript = `#!/bin/sh
msg=$(dd bs=1 count="$CONTENT_LENGTH" 2>/dev/null)
state=${0%/*}/state
mkdir -p "$state"
: > "$state/$$"
running=$(ls "$state" | wc -l)
case $msg in
sleep*) set -- $msg; sleep "$2" ;;
fail) echo "failing as asked" >&2; exit 3 ;;
binary) printf 'Content-Type: application/octet-stream\r\n\r\n'; printf '\001\002\003'; rm -f "$state/$$"; exit 0 ;;
status) printf 'Status: 404 Not Found\nContent-Type: text/plain\n\nno such thing'; rm -f "$state/$$"; exit 0 ;;
bad-header) printf 'Content-Type: text/plain\nthis is not a header\n\nbody'; rm -f "$state/$$"; exit 0 ;;
quiet) printf 'Content-Type: text/plain\n\n'; rm -f "$state/$$"; exit 0 ;;
esac
rm -f "$state/$$"
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
printf '%s|%s|%s|%s|%s|%s' "$REQUEST_METHOD" "$CONTENT_LENGTH" "$CONTENT_TYPE" "$QUERY_STRING" "$msg" "$running"
`
