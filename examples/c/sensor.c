/*
 * sensor: a sensor that broadcasts readings, meant to run once for every
 * client with wsbridge's shared mode, each line it prints going to every
 * connected client:
 *
 *   cc -O2 -o sensor sensor.c
 *   wsbridge --shared ./sensor
 *
 * Every -i MILLISECONDS (default 1000) it prints one line of JSON:
 *
 *   {"seq":1,"t_ms":1700000000000,"load":0.42,"temp_c":47.5}
 *
 * seq counts readings from 1, t_ms is the time in milliseconds since
 * 1970, load the 1-minute load average from /proc/loadavg (0 where there
 * is none), temp_c the temperature of /sys/class/thermal/thermal_zone0,
 * or a simulated value between 40 and 45 on machines without one. With
 * -n COUNT it exits 0 after COUNT readings.
 *
 * It also reads lines from stdin, the clients' messages: "rate MS" sets
 * the interval (10 to 3600000 ms) from now on and answers
 * {"ack":"rate","ms":MS}; anything else answers {"error":"unknown
 * command"}. In shared mode answers go to every client too. It exits 0
 * when stdin ends, which is how wsbridge stops it.
 *
 * One poll(2) waits for stdin and the next reading at once, so commands
 * are answered at once, not at the next tick. stdin is read with read(2):
 * stdio's buffer would hide lines from poll. stdout is stdio, flushed after
 * every line, or the lines would sit in its buffer.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_MS 10L
#define MAX_MS 3600000L

static long long now_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* read_number reads the first number of a file, or returns 0 with *ok 0. */
static double read_number(const char *path, int *ok)
{
	FILE *f = fopen(path, "r");
	double v = 0;
	*ok = f != NULL && fscanf(f, "%lf", &v) == 1;
	if (f != NULL)
		fclose(f);
	return *ok ? v : 0;
}

static int reading(long long seq)
{
	int ok;
	double load = read_number("/proc/loadavg", &ok);
	double temp = read_number("/sys/class/thermal/thermal_zone0/temp", &ok) / 1000;
	if (!ok) {
		/* A slow triangle wave between 40 and 45 degrees. */
		long step = (long)(seq % 40);
		temp = 40 + 0.25 * (double)(step < 20 ? step : 40 - step);
	}
	printf("{\"seq\":%lld,\"t_ms\":%lld,\"load\":%.2f,\"temp_c\":%.1f}\n",
	       seq, now_ms(CLOCK_REALTIME), load, temp);
	return fflush(stdout);
}

/* command answers one line from stdin; a new interval goes to *ms. */
static int command(const char *line, long *ms)
{
	char *end;
	long v;
	if (strncmp(line, "rate ", 5) != 0) {
		puts("{\"error\":\"unknown command\"}");
		return fflush(stdout);
	}
	errno = 0;
	v = strtol(line + 5, &end, 10);
	if (errno != 0 || end == line + 5 || *end != '\0' || v < MIN_MS || v > MAX_MS) {
		printf("{\"error\":\"rate takes milliseconds, %ld to %ld\"}\n", MIN_MS, MAX_MS);
		return fflush(stdout);
	}
	*ms = v;
	printf("{\"ack\":\"rate\",\"ms\":%ld}\n", v);
	return fflush(stdout);
}

static void usage(void)
{
	fputs("usage: sensor [-i MILLISECONDS] [-n COUNT]\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	long ms = 1000;
	long long count = 0, seq = 0, next;
	char line[4096];
	size_t have = 0;
	int skipping = 0; /* inside a line too long for line[]: drop it */
	int c;

	while ((c = getopt(argc, argv, "i:n:")) != -1) {
		char *end;
		switch (c) {
		case 'i':
			ms = strtol(optarg, &end, 10);
			if (*end != '\0' || ms < MIN_MS || ms > MAX_MS)
				usage();
			break;
		case 'n':
			count = strtoll(optarg, &end, 10);
			if (*end != '\0' || count < 0)
				usage();
			break;
		default:
			usage();
		}
	}

	next = now_ms(CLOCK_MONOTONIC);
	for (;;) {
		struct pollfd p;
		long long now = now_ms(CLOCK_MONOTONIC);
		ssize_t n;
		size_t i, start;

		if (now >= next) {
			if (reading(++seq) != 0) {
				perror("sensor: write");
				return 1;
			}
			if (count > 0 && seq >= count)
				return 0;
			/* Keep to the schedule, unless it fell a whole tick behind. */
			next += ms;
			if (next <= now)
				next = now + ms;
			continue;
		}

		p.fd = 0;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, (int)(next - now)) < 0) {
			if (errno == EINTR)
				continue;
			perror("sensor: poll");
			return 1;
		}
		if (p.revents == 0)
			continue; /* time for a reading */

		n = read(0, line + have, sizeof line - 1 - have);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			perror("sensor: read");
			return 1;
		}
		if (n == 0)
			return 0; /* stdin ended: wsbridge is stopping us */
		have += (size_t)n;

		/* Answer every whole line; keep a partial one for later. */
		start = 0;
		for (i = 0; i < have; i++) {
			if (line[i] != '\n')
				continue;
			line[i] = '\0';
			if (i > start && line[i - 1] == '\r')
				line[i - 1] = '\0';
			if (!skipping && command(line + start, &ms) != 0) {
				perror("sensor: write");
				return 1;
			}
			skipping = 0;
			start = i + 1;
		}
		memmove(line, line + start, have - start);
		have -= start;
		if (have == sizeof line - 1) {
			/* A line longer than the buffer: answer once, drop the rest. */
			if (!skipping && command("", &ms) != 0) {
				perror("sensor: write");
				return 1;
			}
			skipping = 1;
			have = 0;
		}
		/* A new rate counts from now, not from the last reading. */
		if (next - now_ms(CLOCK_MONOTONIC) > ms)
			next = now_ms(CLOCK_MONOTONIC) + ms;
	}
}
