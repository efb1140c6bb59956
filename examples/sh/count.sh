#!/bin/sh
# count.sh: count the lines received and answer each one with its number.
# POSIX sh; runs under dash, bash and BusyBox ash alike.
#
#   wsbridge ./count.sh
#
# Each shell builtin (printf, echo) writes at once, so answers are not held
# back. External filters in a pipeline are another matter: to a pipe they
# buffer their output, so use `grep --line-buffered`, `sed -u` or
# `stdbuf -oL CMD` when an answer must go out line by line.

n=0
echo "count.sh ready: send lines, I count them"

# IFS= keeps leading blanks, -r keeps backslashes; the `|| [ -n ]` test
# still answers a last line that lacks its newline.
while IFS= read -r line || [ -n "$line" ]; do
	n=$((n + 1))
	printf '%d: %s\n' "$n" "$line"
done

# Stdin ended: the client has gone. This goes nowhere behind wsbridge but
# shows the count when the script is run by hand.
echo "bye after $n lines"
