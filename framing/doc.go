// Package framing turns the byte streams of a child's stdio into WebSocket
// messages and back. A Decoder cuts what the child writes on stdout into
// message pieces; an Encoder says what to write around each piece of a
// message on its way to the child's stdin. The codecs are pure: they do no
// I/O, never allocate on their hot paths, and hand out pieces that borrow
// the caller's buffer. UTF8 is the incremental validator the bridge also
// uses on incoming text messages. ParseCGIResponse splits the output of a
// CGI program, run once per message, into its optional header block and
// the reply.
//
// Four framings are offered, by name (see New): line, raw, len32 and mux.
//
// # line (the default)
//
// Compatible with websocketd. Each line the child writes becomes one
// message, without its "\n" or "\r\n"; a last line with no newline is
// still delivered when stdout closes (websocketd drops it). A line that is
// valid UTF-8 is a text message; one that is not is sent as a binary
// message, bytes unchanged, because a browser closes the connection (1007)
// on a text message with invalid UTF-8. A line longer than the bridge's
// buffer is streamed as a fragmented message whose kind the first fragment
// decides: binary if that fragment is not valid UTF-8, else text, with
// each invalid sequence in later fragments replaced by U+FFFD. The other
// way, each message is written to stdin followed by "\n"; nothing is
// escaped, so a message that contains "\n" reaches the child as several
// lines.
//
// # raw
//
// websocketd's --binary. Whatever one read from stdout returns becomes one
// binary message, so message boundaries fall wherever the pipe split the
// data; messages to the child are written as they are, with no separator.
// For children that speak a byte stream, not messages.
//
// # len32
//
// Messages travel both ways as records: a 4-byte big-endian header, then
// the payload. Message boundaries and kinds survive exactly, and payloads
// may hold any bytes, newlines included.
//
//	byte     0          1          2          3          4 ...
//	     +----------+----------+----------+----------+-----------------+
//	     | TMLLLLLL | LLLLLLLL | LLLLLLLL | LLLLLLLL | L payload bytes |
//	     +----------+----------+----------+----------+-----------------+
//
//	T  bit 31 of the header, 0x80 of byte 0: the message is text (UTF-8);
//	   clear: binary
//	M  bit 30, 0x40 of byte 0: the message continues in the next record
//	L  bits 0-29: this record's payload length, most significant first
//
// A record carries 0 to 1073741823 (2^30-1, MaxRecord) payload bytes. A
// message is one record, or several when it is sent in pieces: every
// record but the last has bit 30 set, and all records of a message have
// the same bit 31; a message has no length limit. There is no padding and
// no trailer: the next header follows the payload at once. Examples, in
// hex:
//
//	80 00 00 02  68 69           text "hi"
//	00 00 00 03  01 02 03        binary 01 02 03
//	80 00 00 00                  an empty text message
//	00 00 01 00  (256 bytes)     binary, 256 bytes
//	C0 00 00 03  68 65 6C        text "hello" in two records: "hel" (T, M)
//	80 00 00 02  6C 6F           then "lo" (T, last)
//
// The child may always write whole messages as single records. It must
// accept split ones: the bridge forwards WebSocket fragments and long
// frames as they arrive, in records of its buffer's size or less, without
// assembling them. A text code point may be split between records.
//
// The bridge streams long records from the child the same way, so neither
// side needs to hold a whole message. It checks text as it streams; a
// record that continues a message with the other text bit, text that is
// not valid UTF-8, or stdout closing inside a record or after a record
// with bit 30 set, is an error: the decoder reports it (ErrKindChange,
// ErrInvalidUTF8, ErrTruncated) and the bridge ends the session, logging
// the reason and closing the WebSocket with status 1011. There is no
// resynchronisation: past a bad record, the rest of stdout is not read as
// records. Any 32-bit value is a well-formed header on its own.
//
// In C, with stdio (stdout into a pipe is block-buffered: flush after each
// message, or the bridge sees nothing):
//
//	#include <stdint.h>
//	#include <stdio.h>
//	#include <stdlib.h>
//
//	/* write_msg writes one whole message as one record; n < 1<<30. */
//	int write_msg(FILE *f, const void *data, uint32_t n, int text)
//	{
//		uint32_t v = n | (text ? 0x80000000u : 0);
//		unsigned char h[4] = { v >> 24, v >> 16, v >> 8, v };
//		if (fwrite(h, 1, 4, f) != 4 || fwrite(data, 1, n, f) != n)
//			return -1;
//		return fflush(f);
//	}
//
//	/* read_msg reads one message, joining its records, into a buffer
//	   from malloc with a NUL after the data. It returns the length, or
//	   -1 at end of input or on error. A real program caps the length. */
//	long read_msg(FILE *f, unsigned char **out, int *text)
//	{
//		unsigned char h[4], *buf = NULL, *p;
//		size_t len = 0, n;
//		uint32_t v;
//		do {
//			if (fread(h, 1, 4, f) != 4)
//				goto fail;
//			v = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
//			    (uint32_t)h[2] << 8 | h[3];
//			*text = v >> 31;
//			n = v & 0x3FFFFFFF;
//			if ((p = realloc(buf, len + n + 1)) == NULL)
//				goto fail;
//			buf = p;
//			if (fread(buf + len, 1, n, f) != n)
//				goto fail;
//			len += n;
//		} while (v & 0x40000000);
//		buf[len] = 0;
//		*out = buf;
//		return (long)len;
//	fail:
//		free(buf);
//		return -1;
//	}
//
// # mux
//
// For a shared child: one long-running program that serves every client
// of an endpoint. Every record, both ways, is one whole message or event
// of one connection, with a fixed 12-byte header, all numbers big-endian:
//
//	byte   0        1 - 3       4 - 7          8 - 11          12 ...
//	     +------+----------+---------------+---------------+-----------------+
//	     | kind | 00 00 00 | connection id | payload len L | L payload bytes |
//	     +------+----------+---------------+---------------+-----------------+
//
//	kind  1 open (bridge to child only), 2 text, 3 binary, 4 close
//	      bytes 1-3 are reserved and must be zero
//	id    which client; 0 from the child means every connected client
//	L     0 to 1073741823 (2^30-1, MaxRecord)
//
// There is no padding and no trailer, and no record continues another:
// the bridge assembles a fragmented WebSocket message before it writes its
// record, and each record the child writes becomes one WebSocket message.
// The bridge assigns the ids: they start at 1, are never reused while the
// child runs, and the bridge never uses 0. Examples, in hex:
//
//	01 00 00 00  00 00 00 01  00 00 00 16  52 45 4D ... 31 00
//	    open: client 1 connected; payload "REMOTE_ADDR=127.0.0.1" and a NUL
//	02 00 00 00  00 00 00 01  00 00 00 02  68 69
//	    text "hi" from client 1 (from the bridge) or to it (from the child)
//	03 00 00 00  00 00 00 02  00 00 00 03  01 02 03
//	    binary 01 02 03, client 2
//	02 00 00 00  00 00 00 00  00 00 00 05  68 65 6C 6C 6F
//	    from the child: text "hello" to every client
//	04 00 00 00  00 00 00 01  00 00 00 05  03 E8 62 79 65
//	    close, code 1000 (03 E8), reason "bye": client 1 left, or close it
//	04 00 00 00  00 00 00 02  00 00 00 02  03 EE
//	    from the bridge: client 2 dropped without a close frame (1006)
//	04 00 00 00  00 00 00 00  00 00 00 00
//	    from the child: close every client, code 1000
//
// What each kind means:
//
//   - open, bridge to child: a client connected. It comes before any other
//     record for that id. The payload is the client's CGI-style
//     environment, the variables a child started per client would get
//     (REMOTE_ADDR, QUERY_STRING, HTTP_* and so on), as "NAME=value"
//     entries each ending in a NUL byte, like /proc/PID/environ. The child
//     may check it and close the client at once. An open record from the
//     child is an error.
//   - text, both ways: one message of UTF-8 text. From the bridge, a
//     client's message; from the child, a message the bridge sends to that
//     client, or to every connected client for id 0.
//   - binary, both ways: one message of any bytes, likewise.
//   - close, both ways: the payload is a WebSocket close frame's payload:
//     empty, or a 2-byte code then an optional UTF-8 reason, 125 bytes at
//     most. From the bridge: the client left with that code, 1006 if it
//     dropped without a close frame; no record for that id follows. From
//     the child: close that client (id 0: every client) with that code and
//     reason, 1000 when the payload is empty. The child may write records
//     for an id after the bridge closed it (the two closes can cross):
//     they are not an error.
//
// The child's records are checked. An unknown kind, an open record,
// reserved bits set, L over MaxRecord, a close payload of 1 byte or more
// than 125, a close code not valid on the wire (RFC 6455 section 7.4:
// valid are 1000-1003, 1007-1014 and 3000-4999), text or a close reason
// that is not valid UTF-8, or stdout closing inside a record, is an error
// (ErrMuxRecord, ErrInvalidUTF8, ErrTruncated): there is no
// resynchronisation, and the bridge ends the shared session, logging the
// reason and closing every client with status 1011.
//
// In C, with stdio (flush after each record, or the bridge sees nothing;
// examples/c/wsbridge.h in the repository does the same with raw file
// descriptors):
//
//	#include <stdint.h>
//	#include <stdio.h>
//
//	enum { OPEN = 1, TEXT = 2, BINARY = 3, CLOSE = 4 };
//
//	static uint32_t be32(const unsigned char *b)
//	{
//		return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
//		       (uint32_t)b[2] << 8 | b[3];
//	}
//
//	/* read_rec reads the next record into buf, which holds cap bytes.
//	   It returns the payload length, or -1 at end of input or on
//	   error (a longer payload too, here). */
//	long read_rec(FILE *f, int *kind, uint32_t *conn, unsigned char *buf, uint32_t cap)
//	{
//		unsigned char h[12];
//		uint32_t n;
//		if (fread(h, 1, 12, f) != 12)
//			return -1;
//		*kind = h[0];
//		*conn = be32(h + 4);
//		n = be32(h + 8);
//		if (n > cap || fread(buf, 1, n, f) != n)
//			return -1;
//		return (long)n;
//	}
//
//	/* write_rec writes one whole message for client conn, or for every
//	   client when conn is 0. */
//	int write_rec(FILE *f, int kind, uint32_t conn, const void *data, uint32_t n)
//	{
//		unsigned char h[12] = { kind, 0, 0, 0,
//			conn >> 24, conn >> 16, conn >> 8, conn,
//			n >> 24, n >> 16, n >> 8, n };
//		if (fwrite(h, 1, 12, f) != 12 || fwrite(data, 1, n, f) != n)
//			return -1;
//		return fflush(f);
//	}
//
//	/* An echo: every message goes back to its sender, the environment
//	   of an open record is ignored, a client's close needs no answer. */
//	int main(void)
//	{
//		static unsigned char buf[1 << 20];
//		uint32_t conn;
//		int kind;
//		long n;
//		while ((n = read_rec(stdin, &kind, &conn, buf, sizeof buf)) >= 0)
//			if ((kind == TEXT || kind == BINARY) &&
//			    write_rec(stdout, kind, conn, buf, (uint32_t)n) < 0)
//				return 1;
//		return 0;
//	}
package framing
