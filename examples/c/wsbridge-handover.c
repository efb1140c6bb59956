/*
 * wsbridge-handover: the CGI a web server runs for a WebSocket upgrade, to
 * hand the client's connection to the wsbridge daemon (hand-over protocol
 * v1) and leave. The web server keeps its port; wsbridge answers 101 and
 * runs the session as if the client had connected to it directly.
 *
 *   make handover    # cc -O2 -std=c99 -static -o wsbridge-handover wsbridge-handover.c
 *   wsbridge --handover=/run/wsbridge.sock ./echo
 *
 * boa: install it as cgi-bin/nph-ws (the nph- prefix makes boa give the CGI
 * the client's socket as fd 1), with `CGIEnv WSBRIDGE_HANDOVER /run/...`.
 * lighttpd: an ordinary CGI with cgi.upgrade = "enable"; fds 0 and 1 are
 * then the pipes lighttpd relays. examples/deploy/ has both recipes.
 *
 * The socket: argv[1], else $WSBRIDGE_HANDOVER, else the compiled-in
 * default (-DWSBRIDGE_HANDOVER='"/path"'). An argv[1] is ignored when the
 * query string holds no '=': a CGI server then passes the query's words as
 * arguments (RFC 3875 4.4), and a client must not choose the socket.
 *
 * Exit 0 once the daemon answered OK (it owns the connection now); 1 when
 * it refused (reason on stderr) or was not there (503 to the client).
 */
#define _DEFAULT_SOURCE /* CMSG_SPACE, CMSG_LEN */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef WSBRIDGE_HANDOVER
#define WSBRIDGE_HANDOVER "/run/wsbridge.sock"
#endif
/* How long the daemon has to answer before the client gets a 503. */
#ifndef WSBRIDGE_HANDOVER_TIMEOUT_MS
#define WSBRIDGE_HANDOVER_TIMEOUT_MS 5000
#endif

#define MAGIC "WSBRIDGE-HANDOVER/1"
#define MAX_MESSAGE (64 * 1024)

extern char **environ;

static const char *const cgi_vars[] = {
	"REQUEST_METHOD", "SERVER_PROTOCOL", "REQUEST_URI", "SCRIPT_NAME",
	"PATH_INFO", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_PORT",
	"SERVER_ADDR", "SERVER_PORT", "SERVER_NAME", "HTTPS",
	"CONTENT_LENGTH", "CONTENT_TYPE",
};

/* sent reports whether NAME=VALUE is one of the variables the protocol
 * carries: the named CGI ones and every HTTP_* header. */
static int sent(const char *kv)
{
	size_t i, n;
	const char *eq = strchr(kv, '=');

	if (eq == NULL || eq == kv)
		return 0;
	n = (size_t)(eq - kv);
	if (n > 5 && strncmp(kv, "HTTP_", 5) == 0)
		return 1;
	for (i = 0; i < sizeof cgi_vars / sizeof cgi_vars[0]; i++)
		if (strlen(cgi_vars[i]) == n && strncmp(kv, cgi_vars[i], n) == 0)
			return 1;
	return 0;
}

/* build fills buf with the message; -1 when it would exceed MAX_MESSAGE,
 * which is never sent cut short. */
static long build(char *buf)
{
	size_t len = sizeof MAGIC; /* with its NUL */
	char **e;

	memcpy(buf, MAGIC, sizeof MAGIC);
	for (e = environ; *e != NULL; e++) {
		size_t n;

		if (!sent(*e))
			continue;
		n = strlen(*e) + 1;
		if (n > MAX_MESSAGE - len)
			return -1;
		memcpy(buf + len, *e, n);
		len += n;
	}
	return (long)len;
}

/* write_all writes to fd 1, waiting out EAGAIN: boa's socket may still be
 * non-blocking for all we know. */
static void write_all(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, s, n);

		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = 1, .events = POLLOUT };

			if (poll(&p, 1, WSBRIDGE_HANDOVER_TIMEOUT_MS) <= 0)
				return;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* answer sends the client a short text response of our own: a full
 * HTTP/1.0 response on a socket (nph-), the CGI Status form on a pipe. */
static void answer(int fd1_is_socket, const char *status, const char *body)
{
	char head[256];
	int n;

	if (fd1_is_socket)
		n = snprintf(head, sizeof head,
			"HTTP/1.0 %s\r\nContent-Type: text/plain\r\n"
			"Content-Length: %zu\r\nConnection: close\r\n\r\n",
			status, strlen(body));
	else
		n = snprintf(head, sizeof head,
			"Status: %s\r\nContent-Type: text/plain\r\n\r\n", status);
	if (n < 0 || (size_t)n >= sizeof head)
		return;
	write_all(head, (size_t)n);
	write_all(body, strlen(body));
}

/* unreachable answers 503 and logs one line: the daemon is not there. */
static int unreachable(int fd1_is_socket, const char *path, const char *why)
{
	char body[sizeof ((struct sockaddr_un *)0)->sun_path + 128];

	snprintf(body, sizeof body, "the wsbridge daemon is not running at %s\n", path);
	answer(fd1_is_socket, "503 Service Unavailable", body);
	fprintf(stderr, "wsbridge-handover: the wsbridge daemon is not running at %s: %s\n", path, why);
	return 1;
}

/* socket_path is where the daemon listens (see the top of the file). */
static const char *socket_path(int argc, char **argv)
{
	const char *q = getenv("QUERY_STRING");
	const char *env = getenv("WSBRIDGE_HANDOVER");

	if (argc > 1 && argv[1][0] != '\0' && (q == NULL || *q == '\0' || strchr(q, '=') != NULL))
		return argv[1];
	if (env != NULL && *env != '\0')
		return env;
	return WSBRIDGE_HANDOVER;
}

int main(int argc, char **argv)
{
	static char msg[MAX_MESSAGE];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} ctl;
	const char *path = socket_path(argc, argv);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	struct iovec iov;
	struct msghdr mh = { 0 };
	struct cmsghdr *c;
	struct pollfd p;
	int fds[2] = { 0, 1 }, nfds, fd1_is_socket, s;
	char reply[512];
	ssize_t n;
	long len;

	/* A client that left must not kill us mid-answer. */
	signal(SIGPIPE, SIG_IGN);

	if (fstat(1, &st) < 0) {
		fprintf(stderr, "wsbridge-handover: fd 1: %s\n", strerror(errno));
		return 1;
	}
	/* boa's nph- CGI: fd 1 is the client's socket, both ways. Otherwise
	 * (lighttpd) stdin and stdout are the two directions. */
	fd1_is_socket = S_ISSOCK(st.st_mode);
	if (fd1_is_socket) {
		fds[0] = 1;
		nfds = 1;
	} else {
		nfds = 2;
	}

	len = build(msg);
	if (len < 0) {
		answer(fd1_is_socket, "400 Bad Request", "request headers too large\n");
		fprintf(stderr, "wsbridge-handover: the request's variables exceed %d bytes\n", MAX_MESSAGE);
		return 1;
	}

	if (strlen(path) >= sizeof addr.sun_path)
		return unreachable(fd1_is_socket, path, "socket path too long");
	memcpy(addr.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return unreachable(fd1_is_socket, path, strerror(errno));
	if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0)
		return unreachable(fd1_is_socket, path, strerror(errno));

	iov.iov_base = msg;
	iov.iov_len = (size_t)len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	memset(&ctl, 0, sizeof ctl);
	mh.msg_control = ctl.buf;
	mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	while ((n = sendmsg(s, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return unreachable(fd1_is_socket, path, strerror(errno));

	p.fd = s;
	p.events = POLLIN;
	while ((n = poll(&p, 1, WSBRIDGE_HANDOVER_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return unreachable(fd1_is_socket, path, n == 0 ? "no answer in time" : strerror(errno));
	while ((n = recv(s, reply, sizeof reply - 1, 0)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return unreachable(fd1_is_socket, path, n < 0 ? strerror(errno) : "closed without an answer");
	reply[n] = '\0';
	if (strcmp(reply, "OK") == 0)
		return 0;
	/* ERR: the daemon has answered the client already. */
	if (strncmp(reply, "ERR ", 4) == 0)
		fprintf(stderr, "wsbridge-handover: the wsbridge daemon at %s refused the connection: %s\n", path, reply + 4);
	else
		fprintf(stderr, "wsbridge-handover: the wsbridge daemon at %s answered %.80s\n", path, reply);
	return 1;
}
