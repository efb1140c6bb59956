#!/bin/sh
# The daemon beside lighttpd: no port of its own (lighttpd has it), only
# the hand-over socket, which lighttpd's CGIs (running as its
# server.username, www-data) may use. Arguments: more flags, then the
# program and its arguments.
exec "${WSBRIDGE:-/usr/bin/wsbridge}" --handover=/run/wsbridge.sock --handover-owner=www-data "$@"
