#!/bin/sh
# The daemon beside boa: no port of its own (boa has it), only the
# hand-over socket, which boa's CGIs (running as boa's User, www-data)
# may use. Arguments: more flags, then the program and its arguments.
exec "${WSBRIDGE:-/usr/bin/wsbridge}" --handover=/run/wsbridge.sock --handover-owner=www-data "$@"
