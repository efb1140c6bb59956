/*
 * wsbridge_len32.h: read and write wsbridge's len32 records on a file
 * descriptor. Header-only: copy this file next to your program and
 * #include it. C99 and POSIX; no allocation, no global state.
 *
 * With `wsbridge --framing=len32 PROGRAM`, every WebSocket message, both
 * ways, travels on the program's stdin/stdout as one or more records:
 *
 *   4-byte header, big-endian:
 *     bit 31      1: text message, 0: binary
 *     bit 30      1: the message continues in the next record
 *     bits 0-29   length of this record's payload (0 to 2^30-1)
 *   then the payload.
 *
 * Use raw file descriptors (0 and 1), not stdio: a FILE* buffers on its own
 * and must not be mixed with these calls on the same descriptor.
 *
 * Every call waits until done: it retries after a signal (EINTR), resumes
 * after a partial read or write, and polls when the descriptor is
 * non-blocking (EAGAIN), so it also fits programs that set O_NONBLOCK.
 */
#ifndef WSBRIDGE_LEN32_H
#define WSBRIDGE_LEN32_H

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#define WSB_LEN32_TEXT 0x80000000u /* header bit: text message */
#define WSB_LEN32_MORE 0x40000000u /* header bit: message continues */
#define WSB_LEN32_MAX 0x3FFFFFFFu  /* largest payload of one record */

/* One record's header, decoded. */
struct wsb_len32 {
	uint32_t len; /* payload bytes that follow the header */
	int text;     /* nonzero: text (UTF-8) message; zero: binary */
	int more;     /* nonzero: the message continues in the next record */
};

/* wsb_wait blocks until fd is ready for events; used after EAGAIN. */
static inline int wsb_wait(int fd, short events)
{
	struct pollfd p;
	p.fd = fd;
	p.events = events;
	p.revents = 0;
	while (poll(&p, 1, -1) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/*
 * wsb_read_some reads at least 1 and at most n bytes into buf, as soon as
 * any are there. Returns the count, 0 at end of stream, or -1 with errno
 * set by read(2). Use it to pass a long payload on as it arrives.
 */
static inline ptrdiff_t wsb_read_some(int fd, void *buf, size_t n)
{
	for (;;) {
		ssize_t r = read(fd, buf, n);
		if (r >= 0)
			return (ptrdiff_t)r;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wsb_wait(fd, POLLIN) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
}

/*
 * wsb_read_full reads exactly n bytes into buf. Returns n on success, 0 if
 * the stream ended before the first byte, or -1 with errno set: EPROTO if
 * it ended part way, anything read(2) sets otherwise.
 */
static inline ptrdiff_t wsb_read_full(int fd, void *buf, size_t n)
{
	unsigned char *p = (unsigned char *)buf;
	size_t got = 0;
	while (got < n) {
		ptrdiff_t r = wsb_read_some(fd, p + got, n - got);
		if (r < 0)
			return -1;
		if (r == 0) {
			if (got == 0)
				return 0;
			errno = EPROTO;
			return -1;
		}
		got += (size_t)r;
	}
	return (ptrdiff_t)n;
}

/*
 * wsb_write_full writes all n bytes of buf. Returns 0, or -1 with errno
 * set by write(2) (EPIPE once the reader is gone, if SIGPIPE is ignored).
 */
static inline int wsb_write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = (const unsigned char *)buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w >= 0) {
			p += w;
			n -= (size_t)w;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wsb_wait(fd, POLLOUT) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/*
 * wsb_len32_read_header reads the next record's header into h. Returns 1,
 * 0 when the stream ended cleanly between records (the client is gone), or
 * -1 with errno set (EPROTO: the stream ended inside the header). The
 * caller then reads h->len payload bytes, all of them, before the next
 * header; they may be read in pieces of any size with wsb_read_full.
 */
static inline int wsb_len32_read_header(int fd, struct wsb_len32 *h)
{
	unsigned char b[4];
	uint32_t v;
	ptrdiff_t r = wsb_read_full(fd, b, sizeof b);
	if (r <= 0)
		return (int)r;
	/* Explicit shifts: right on any host byte order, no ntohl needed. */
	v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
	h->len = v & WSB_LEN32_MAX;
	h->text = (v & WSB_LEN32_TEXT) != 0;
	h->more = (v & WSB_LEN32_MORE) != 0;
	return 1;
}

/*
 * wsb_len32_write_header writes the header of a record of h->len payload
 * bytes; the caller then writes exactly that many bytes. Returns 0, or -1
 * with errno set (EINVAL: h->len over WSB_LEN32_MAX; split the message
 * into records with more set on all but the last).
 */
static inline int wsb_len32_write_header(int fd, const struct wsb_len32 *h)
{
	unsigned char b[4];
	uint32_t v;
	if (h->len > WSB_LEN32_MAX) {
		errno = EINVAL;
		return -1;
	}
	v = h->len | (h->text ? WSB_LEN32_TEXT : 0) | (h->more ? WSB_LEN32_MORE : 0);
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
	return wsb_write_full(fd, b, sizeof b);
}

/*
 * wsb_len32_write writes a whole message of n bytes (n up to
 * WSB_LEN32_MAX) as one record: text nonzero for a text message. Returns 0
 * or -1 with errno set. Each call is one complete message.
 */
static inline int wsb_len32_write(int fd, int text, const void *buf, size_t n)
{
	struct wsb_len32 h;
	if (n > WSB_LEN32_MAX) {
		errno = EINVAL;
		return -1;
	}
	h.len = (uint32_t)n;
	h.text = text;
	h.more = 0;
	if (wsb_len32_write_header(fd, &h) < 0)
		return -1;
	return wsb_write_full(fd, buf, n);
}

#endif /* WSBRIDGE_LEN32_H */
