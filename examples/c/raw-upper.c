/*
 * raw-upper: copy stdin to stdout with ASCII letters upper-cased, for
 * wsbridge's raw framing, where stdin and stdout are byte streams: what a
 * client sends arrives as it is, and each read of stdout becomes one
 * binary message.
 *
 *   cc -O2 -o raw-upper raw-upper.c
 *   wsbridge --framing=raw ./raw-upper
 *
 * It uses read(2) and write(2), not stdio: a FILE* would hold the answer
 * in its buffer until it filled, and the client would wait. Bytes that are
 * not ASCII letters (UTF-8 included) pass unchanged. Exits 0 at end of
 * input (the client left), 1 on an I/O error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static unsigned char buf[64 * 1024];

/* write_all writes n bytes of p, resuming after partial writes. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(void)
{
	for (;;) {
		ssize_t n = read(0, buf, sizeof buf), i;
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("raw-upper: read");
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] >= 'a' && buf[i] <= 'z')
				buf[i] = (unsigned char)(buf[i] - 'a' + 'A');
		}
		if (write_all(1, buf, (size_t)n) < 0) {
			perror("raw-upper: write");
			return 1;
		}
	}
}
