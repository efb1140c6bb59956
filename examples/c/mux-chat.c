/*
 * mux-chat: a chat room. One process serves every client, using
 * wsbridge's mux framing (see wsbridge.h) to tell them apart:
 *
 *   cc -O2 -o mux-chat mux-chat.c
 *   wsbridge --shared --framing=mux ./mux-chat
 *
 * Connect with ws://HOST:PORT/?nick=NAME to choose a nick (1 to 32
 * letters, digits, '_', '-' or '.'), or without one to be guestN. A client
 * gets "welcome NAME, N online", and everyone "* NAME joined". Each text
 * message goes to everyone as "NAME: text". Two commands: "/who" answers
 * only the sender with who is online, "/quit" has the chat close the
 * client (code 1000, "bye"). Everyone sees "* NAME left" when a client
 * leaves, however it leaves.
 *
 * The chat closes a client itself, before any message, when its nick is
 * taken (4001 "nick taken", case aside) or malformed (4002), and when the
 * room is full (1013, "try again later"); later, for a binary message
 * (1003: text only) or a message over 64 KiB (1009). It logs joins, with
 * the client's REMOTE_ADDR, and leaves on stderr, which wsbridge writes
 * to its log. It exits 0 when stdin ends (wsbridge stops it), 1 on a
 * malformed record or an I/O error.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "wsbridge.h"

#define MAX_CLIENTS 4096
#define MAX_NICK 32
#define MAX_MSG (64 * 1024)

struct client {
	uint32_t conn;
	char nick[MAX_NICK + 1];
};

/* The clients online, in the order they joined. */
static struct client clients[MAX_CLIENTS];
static int nclients;

static char in[MAX_MSG];               /* a record's payload */
static char out[MAX_NICK + 2 + MAX_MSG]; /* a message to send */

static struct client *find_conn(uint32_t conn)
{
	int i;
	for (i = 0; i < nclients; i++) {
		if (clients[i].conn == conn)
			return &clients[i];
	}
	return NULL;
}

/* same_nick compares nicks ignoring ASCII case: "Ann" is "ann". */
static int same_nick(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		int ca = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
		int cb = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;
		if (ca != cb)
			return 0;
	}
	return *a == *b;
}

static int nick_taken(const char *nick)
{
	int i;
	for (i = 0; i < nclients; i++) {
		if (same_nick(clients[i].nick, nick))
			return 1;
	}
	return 0;
}

/*
 * query_nick finds nick=VALUE in a query string and copies VALUE into
 * nick. Returns 1 if found and well-formed, 0 if absent or empty, -1 if
 * malformed.
 */
static int query_nick(const char *q, char *nick)
{
	while (q != NULL && *q != '\0') {
		const char *end = strchr(q, '&');
		size_t n = end != NULL ? (size_t)(end - q) : strlen(q);
		if (n >= 5 && memcmp(q, "nick=", 5) == 0) {
			size_t i;
			if (n == 5)
				return 0;
			if (n - 5 > MAX_NICK)
				return -1;
			for (i = 5; i < n; i++) {
				char c = q[i];
				if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
				    c != '_' && c != '-' && c != '.')
					return -1;
			}
			memcpy(nick, q + 5, n - 5);
			nick[n - 5] = '\0';
			return 1;
		}
		q = end != NULL ? end + 1 : NULL;
	}
	return 0;
}

/* send_text sends a text message to conn, or to everyone for WSB_MUX_ALL. */
static int send_text(uint32_t conn, const char *s, size_t n)
{
	return wsb_mux_write(1, WSB_MUX_TEXT, conn, s, (uint32_t)n);
}

static int send_str(uint32_t conn, const char *s)
{
	return send_text(conn, s, strlen(s));
}

/* leave drops c from the room and tells everyone. */
static int leave(struct client *c, unsigned code)
{
	char line[MAX_NICK + 16];
	fprintf(stderr, "mux-chat: %s (connection %lu) left, code %u\n", c->nick, (unsigned long)c->conn, code);
	snprintf(line, sizeof line, "* %s left", c->nick);
	nclients--;
	memmove(c, c + 1, (size_t)(clients + nclients - c) * sizeof *c);
	return send_str(WSB_MUX_ALL, line);
}

static int on_open(uint32_t conn, const char *env, uint32_t len)
{
	const char *addr = wsb_mux_getenv(env, len, "REMOTE_ADDR");
	char nick[MAX_NICK + 1], line[MAX_NICK + 64];
	struct client *c;

	switch (query_nick(wsb_mux_getenv(env, len, "QUERY_STRING"), nick)) {
	case -1:
		return wsb_mux_close(1, conn, 4002, "bad nick: use 1 to 32 letters, digits, _ - .");
	case 1:
		if (nick_taken(nick))
			return wsb_mux_close(1, conn, 4001, "nick taken");
		break;
	default:
		/* Ids are never reused, but someone may have picked guestN. */
		snprintf(nick, sizeof nick, "guest%lu", (unsigned long)conn);
		while (nick_taken(nick) && strlen(nick) < MAX_NICK)
			strcat(nick, "_");
	}
	if (nclients == MAX_CLIENTS)
		return wsb_mux_close(1, conn, 1013, "the room is full, try again later");

	c = &clients[nclients++];
	c->conn = conn;
	strcpy(c->nick, nick);
	fprintf(stderr, "mux-chat: %s (connection %lu) joined from %s\n", nick, (unsigned long)conn,
	        addr != NULL ? addr : "an unknown address");
	snprintf(line, sizeof line, "welcome %s, %d online", nick, nclients);
	if (send_str(conn, line) < 0)
		return -1;
	snprintf(line, sizeof line, "* %s joined", nick);
	return send_str(WSB_MUX_ALL, line);
}

static int on_text(struct client *c, const char *msg, uint32_t n)
{
	size_t used;
	int i;
	if (n == 4 && memcmp(msg, "/who", 4) == 0) {
		used = (size_t)snprintf(out, sizeof out, "online (%d):", nclients);
		for (i = 0; i < nclients; i++) {
			if (used + 2 + MAX_NICK + 5 > sizeof out) {
				used += (size_t)snprintf(out + used, sizeof out - used, " ...");
				break;
			}
			used += (size_t)snprintf(out + used, sizeof out - used, "%s %s", i > 0 ? "," : "", clients[i].nick);
		}
		return send_text(c->conn, out, used);
	}
	if (n == 5 && memcmp(msg, "/quit", 5) == 0) {
		if (wsb_mux_close(1, c->conn, 1000, "bye") < 0)
			return -1;
		return leave(c, 1000);
	}
	used = (size_t)snprintf(out, sizeof out, "%s: ", c->nick);
	memcpy(out + used, msg, n);
	return send_text(WSB_MUX_ALL, out, used + n);
}

/*
 * read_payload reads a record's n payload bytes: as many as fit into in,
 * the rest dropped. Returns how many are in in, or -1 with errno set.
 */
static long read_payload(uint32_t n)
{
	size_t keep = n < sizeof in ? n : sizeof in;
	ptrdiff_t r = keep > 0 ? wsb_read_full(0, in, keep) : 0;
	if (r != (ptrdiff_t)keep) {
		if (r == 0)
			errno = EPROTO; /* ended right after the header */
		return -1;
	}
	if (wsb_skip(0, n - keep) < 0)
		return -1;
	return (long)keep;
}

int main(void)
{
	struct wsb_mux h;
	int r;

	while ((r = wsb_mux_read_header(0, &h)) == 1) {
		struct client *c = find_conn(h.conn);
		long n = read_payload(h.len);
		if (n < 0) {
			r = -1;
			break;
		}
		switch (h.kind) {
		case WSB_MUX_OPEN:
			/* An environment cut to sizeof in lacks its last entries. */
			r = on_open(h.conn, in, (uint32_t)n);
			break;
		case WSB_MUX_TEXT:
			if (c == NULL)
				r = 0; /* crossed our close: it was on its way already */
			else if (n < (long)h.len)
				r = wsb_mux_close(1, c->conn, 1009, "message over 64 KiB") < 0 ? -1 : leave(c, 1009);
			else
				r = on_text(c, in, h.len);
			break;
		case WSB_MUX_BINARY:
			r = c == NULL ? 0 : wsb_mux_close(1, c->conn, 1003, "text only") < 0 ? -1 : leave(c, 1003);
			break;
		case WSB_MUX_CLOSE:
			/* The client left; gone already if we closed it. */
			r = c == NULL ? 0 : leave(c, wsb_mux_close_code((const unsigned char *)in, (uint32_t)n));
			break;
		default:
			r = 0; /* a kind of a later version: skipped */
		}
		if (r < 0) {
			perror("mux-chat: write");
			return 1;
		}
	}
	if (r < 0) {
		if (errno == EPROTO)
			fprintf(stderr, "mux-chat: stdin is not mux records, or ended inside one\n");
		else
			perror("mux-chat: read");
		return 1;
	}
	return 0;
}
