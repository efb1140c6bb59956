/*
 * len32-echo: echo every WebSocket message back, text as text and binary as
 * binary, using wsbridge's len32 framing (see wsbridge.h).
 *
 *   cc -O2 -o len32-echo len32-echo.c
 *   wsbridge --framing=len32 ./len32-echo
 *
 * Unlike line framing, len32 carries any bytes, newlines and NULs
 * included, and keeps text and binary messages apart.
 *
 * It greets with one text message, then copies each record back with the
 * same kind and continuation bit as it arrives, so a record of any size
 * (up to 2^30-1 bytes) passes through a 64 KiB buffer. With -v it
 * describes each record on stderr, which wsbridge writes to its log.
 * Exits 0 when stdin ends between records (the client left), 1 when it ends
 * inside one or on an I/O error.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "wsbridge.h"

static unsigned char buf[64 * 1024];

int main(int argc, char **argv)
{
	static const char hello[] = "len32-echo ready: every message comes back as it went";
	int verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	struct wsb_len32 h;
	int r;

	if (wsb_len32_write(1, 1, hello, sizeof hello - 1) < 0) {
		perror("len32-echo: write");
		return 1;
	}
	while ((r = wsb_len32_read_header(0, &h)) == 1) {
		uint32_t left = h.len;
		if (verbose)
			fprintf(stderr, "len32-echo: %s record, %lu bytes, %s\n",
			        h.text ? "text" : "binary", (unsigned long)h.len,
			        h.more ? "more follows" : "final");
		/* Same header back: same length, kind and continuation bit. */
		if (wsb_len32_write_header(1, &h) < 0) {
			perror("len32-echo: write");
			return 1;
		}
		/* Pass the payload on as it arrives, not once it is all here. */
		while (left > 0) {
			ptrdiff_t n = wsb_read_some(0, buf, left < sizeof buf ? left : sizeof buf);
			if (n < 0) {
				perror("len32-echo: read");
				return 1;
			}
			if (n == 0) {
				fprintf(stderr, "len32-echo: stdin ended inside a record (%lu of %lu payload bytes missing)\n",
				        (unsigned long)left, (unsigned long)h.len);
				return 1;
			}
			if (wsb_write_full(1, buf, (size_t)n) < 0) {
				perror("len32-echo: write");
				return 1;
			}
			left -= (uint32_t)n;
		}
	}
	if (r < 0) {
		if (errno == EPROTO)
			fprintf(stderr, "len32-echo: stdin ended inside a record header\n");
		else
			perror("len32-echo: read");
		return 1;
	}
	return 0;
}
