// Package framing turns the byte streams of a child's stdio into WebSocket
// messages and back. A Decoder cuts what the child writes on stdout into
// message pieces; an Encoder says what to write around each piece of a
// message on its way to the child's stdin. The codecs are pure: they do no
// I/O, never allocate on their hot paths, and hand out pieces that borrow
// the caller's buffer. UTF8 is the incremental validator the bridge also
// uses on incoming text messages.
//
// Three framings are offered, by name (see New): line, raw and len32.
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
package framing
