/*
 * wsbridge.h: read and write wsbridge's len32 and mux records on a file
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
 * With `wsbridge --shared --framing=mux PROGRAM`, one program serves
 * every client, and every record, both ways, is one whole message or
 * event of one connection:
 *
 *   12-byte header, big-endian:
 *     byte 0      kind: 1 open (from wsbridge only), 2 text, 3 binary,
 *                 4 close
 *     bytes 1-3   zero
 *     bytes 4-7   connection id; from the program, 0 means every client
 *     bytes 8-11  payload length (0 to 2^30-1)
 *   then the payload: for open, the client's environment as "NAME=value"
 *   entries each ending in a NUL byte (see wsb_mux_getenv); for close, a
 *   2-byte close code and a UTF-8 reason, 125 bytes at most, or nothing.
 *   wsbridge sends close when a client left (code 1006: it dropped); the
 *   program sends close to make wsbridge close a client.
 *
 * The full description of both is the Go package documentation:
 * `go doc github.com/wsbridge/wsbridge/framing`.
 *
 * Use raw file descriptors (0 and 1), not stdio: a FILE* buffers on its own
 * and must not be mixed with these calls on the same descriptor.
 *
 * Every call waits until done: it retries after a signal (EINTR), resumes
 * after a partial read or write, and polls when the descriptor is
 * non-blocking (EAGAIN), so it also fits programs that set O_NONBLOCK.
 */
#ifndef WSBRIDGE_H
#define WSBRIDGE_H

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
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

/*
 * wsb_skip reads and drops n bytes: the rest of a payload the program
 * does not want. Returns 0, or -1 with errno set (EPROTO: the stream
 * ended first).
 */
static inline int wsb_skip(int fd, size_t n)
{
	unsigned char sink[4096];
	while (n > 0) {
		ptrdiff_t r = wsb_read_some(fd, sink, n < sizeof sink ? n : sizeof sink);
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EPROTO;
			return -1;
		}
		n -= (size_t)r;
	}
	return 0;
}

/* Mux record kinds, byte 0 of the header. */
#define WSB_MUX_OPEN 1   /* a client connected; payload: its environment */
#define WSB_MUX_TEXT 2   /* a UTF-8 text message */
#define WSB_MUX_BINARY 3 /* a binary message */
#define WSB_MUX_CLOSE 4  /* a client left, or: close it */

#define WSB_MUX_ALL 0u            /* connection id: every client (from the program) */
#define WSB_MUX_HEADER 12         /* bytes in a mux header */
#define WSB_MUX_MAX 0x3FFFFFFFu   /* largest payload of one record */
#define WSB_MUX_CLOSE_MAX 125     /* largest close payload: code and reason */

/* One mux record's header, decoded. */
struct wsb_mux {
	uint8_t kind;  /* WSB_MUX_OPEN, _TEXT, _BINARY or _CLOSE */
	uint32_t conn; /* the client it is about */
	uint32_t len;  /* payload bytes that follow the header */
};

/* wsb_be32 reads 4 bytes big-endian: right on any host byte order. */
static inline uint32_t wsb_be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* wsb_put32 writes v as 4 bytes big-endian. */
static inline void wsb_put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

/*
 * wsb_mux_read_header reads the next record's header into h. Returns 1, 0
 * when the stream ended cleanly between records (wsbridge stops the
 * program this way), or -1 with errno set: EPROTO when the stream ended
 * inside the header, or the header has its reserved bytes set or a length
 * over WSB_MUX_MAX (a newer framing than this file knows). The caller then
 * reads, or wsb_skip's, all h->len payload bytes before the next header.
 * A kind this file does not know is returned as it is: skip its payload.
 */
static inline int wsb_mux_read_header(int fd, struct wsb_mux *h)
{
	unsigned char b[WSB_MUX_HEADER];
	ptrdiff_t r = wsb_read_full(fd, b, sizeof b);
	if (r <= 0)
		return (int)r;
	if ((b[1] | b[2] | b[3]) != 0 || wsb_be32(b + 8) > WSB_MUX_MAX) {
		errno = EPROTO;
		return -1;
	}
	h->kind = b[0];
	h->conn = wsb_be32(b + 4);
	h->len = wsb_be32(b + 8);
	return 1;
}

/*
 * wsb_writev_full writes all the bytes of iov[0..cnt), resuming after
 * partial writes; it updates iov as it goes. Returns 0, or -1 with errno
 * set by writev(2).
 */
static inline int wsb_writev_full(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t w = writev(fd, iov, cnt);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (wsb_wait(fd, POLLOUT) < 0)
					return -1;
			} else if (errno != EINTR) {
				return -1;
			}
			continue;
		}
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (unsigned char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/*
 * wsb_mux_write writes one record: a whole message of kind WSB_MUX_TEXT or
 * WSB_MUX_BINARY (or a close payload, WSB_MUX_CLOSE) of n bytes for client
 * conn, or for every client when conn is WSB_MUX_ALL. Header and payload
 * go out in one writev, so a record is never interleaved with another
 * writer's. Returns 0, or -1 with errno set (EINVAL: a kind other than
 * those three, WSB_MUX_OPEN included, or n over WSB_MUX_MAX).
 */
static inline int wsb_mux_write(int fd, int kind, uint32_t conn, const void *p, uint32_t n)
{
	unsigned char h[WSB_MUX_HEADER];
	struct iovec iov[2];
	if (kind < WSB_MUX_TEXT || kind > WSB_MUX_CLOSE || n > WSB_MUX_MAX) {
		errno = EINVAL;
		return -1;
	}
	h[0] = (unsigned char)kind;
	h[1] = h[2] = h[3] = 0;
	wsb_put32(h + 4, conn);
	wsb_put32(h + 8, n);
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof h;
	iov[1].iov_base = (void *)p; /* writev does not write through it */
	iov[1].iov_len = n;
	return wsb_writev_full(fd, iov, n > 0 ? 2 : 1);
}

/*
 * wsb_mux_close tells wsbridge to close client conn (every client for
 * WSB_MUX_ALL) with code and reason (NULL: none). Code 0 sends no code:
 * wsbridge closes with 1000. Use 1000 (normal), 1001, 1003 (cannot accept
 * that kind of data), 1008 (policy), 1011, or your own 4000-4999; codes
 * that are not valid on the wire (1005, 1006, 1015, below 1000, ...) make
 * wsbridge end the whole session. A reason over 123 bytes is cut there, at
 * a UTF-8 code point boundary. Returns 0, or -1 with errno set.
 */
static inline int wsb_mux_close(int fd, uint32_t conn, uint16_t code, const char *reason)
{
	unsigned char p[WSB_MUX_CLOSE_MAX];
	size_t n = reason != NULL ? strlen(reason) : 0;
	if (code == 0)
		return wsb_mux_write(fd, WSB_MUX_CLOSE, conn, p, 0);
	if (n > WSB_MUX_CLOSE_MAX - 2) {
		n = WSB_MUX_CLOSE_MAX - 2;
		while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
			n--; /* reason[n] continues a code point: drop all of it */
	}
	p[0] = (unsigned char)(code >> 8);
	p[1] = (unsigned char)code;
	if (n > 0)
		memcpy(p + 2, reason, n);
	return wsb_mux_write(fd, WSB_MUX_CLOSE, conn, p, (uint32_t)(2 + n));
}

/*
 * wsb_mux_close_code returns the code of a close payload p of n bytes as
 * wsbridge sends it when a client left: 1006 when it dropped without a
 * close frame, 1005 when its close frame had no code (n < 2).
 */
static inline unsigned wsb_mux_close_code(const unsigned char *p, uint32_t n)
{
	return n < 2 ? 1005u : (unsigned)p[0] << 8 | p[1];
}

/*
 * wsb_mux_getenv looks up name in the environment block of an open record,
 * env, of len bytes: "NAME=value" entries, each ending in a NUL byte.
 * Returns the value, NUL-terminated inside env, or NULL when the block
 * has no such variable (or it is cut short, without its NUL). The result
 * points into env: it is valid as long as env is.
 */
static inline const char *wsb_mux_getenv(const char *env, uint32_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *end = env + len;
	while (env < end) {
		const char *nul = (const char *)memchr(env, '\0', (size_t)(end - env));
		if (nul == NULL)
			return NULL; /* a last entry cut short */
		if ((size_t)(nul - env) > nl && memcmp(env, name, nl) == 0 && env[nl] == '=')
			return env + nl + 1;
		env = nul + 1;
	}
	return NULL;
}

#endif /* WSBRIDGE_H */
