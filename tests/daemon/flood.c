/* Test client for tests/daemon/bodies.sh: what a hostile peer does to cachepotd's socket, which
 * curl(1) will not do (announce more than it sends, hold many connections idle).
 *
 *   flood body SOCKET PATH N DECLARED SEND [chunked]
 *       N connections, each a PUT of PATH announcing DECLARED bytes (Content-Length; with
 *       "chunked", Transfer-Encoding: chunked and 64 KiB chunks instead) and sending SEND
 *       bytes of body, as far as the daemon takes them (a connection it stops reading for 2 s,
 *       or closes, stops there). Then waits up to 3 s for the answers, prints
 *       "sent=BYTES answered=N413/N403/NOTHER closed=N", a line "ready", and holds every
 *       connection still open until stdin ends (the caller measures the daemon meanwhile).
 *   flood idle SOCKET N
 *       N connections that send nothing; after 1 s prints "closed=K" (how many the daemon
 *       closed), a line "ready", and holds the rest until stdin ends.
 *   flood storm SOCKET PATH N DECLARED
 *       Keep N connections going until stdin ends (tests/daemon/load.sh). Each is a PUT of
 *       PATH announcing DECLARED bytes (Content-Length). The even ones send the whole header,
 *       then trickle the body (1 KiB every 100 ms); the odd ones send the request line and the
 *       Content-Length and then stall in the headers, one more header line every second, so the
 *       daemon cannot answer until its header limit or timeout. A connection that is answered or
 *       closed is opened again 1 s later. Prints "ready" once N were opened, then, when stdin
 *       ends, "connections=C open=O max_open=M answered=N413/N403/NOTHER closed=K sent=BYTES"
 *       (C opened in all, O open at the end, K closed without an answer, BYTES of body and
 *       header sent after the first header line).
 * The requests are written by hand on purpose: they are the malformed or incomplete ones.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/clock.h"

#define CONNECTIONS_MAX 4096
#define CHUNK (64u << 10)

struct conn {
	int fd;
	unsigned long long sent;       /* body bytes */
	int done;                      /* sending over: all sent, refused or stalled */
	int closed;                    /* the daemon closed it */
	int status;                    /* of the answer, 0 while none */
	char answer[256];
	size_t answer_len;
	unsigned chunk_left;           /* chunked: bytes of the current chunk still to send */
};

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read what the daemon answered on C, without blocking; note a close. */
static void read_answer(struct conn *c)
{
	for (;;) {
		char buf[4096];
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->closed = 1;
			c->done = 1;
			return;
		}
		if (n < 0)
			return;
		if (c->answer_len < sizeof(c->answer) - 1) {
			size_t take = (size_t)n;
			if (take > sizeof(c->answer) - 1 - c->answer_len)
				take = sizeof(c->answer) - 1 - c->answer_len;
			memcpy(c->answer + c->answer_len, buf, take);
			c->answer_len += take;
			c->answer[c->answer_len] = '\0';
		}
		if (!c->status && strncmp(c->answer, "HTTP/1.1 ", 9) == 0 && c->answer_len >= 12) {
			c->status = atoi(c->answer + 9);
			c->done = 1;
		}
	}
}

/* Send what C may still send of SEND body bytes, without blocking. 1 when it made progress. */
static int send_some(struct conn *c, unsigned long long send_total, int chunked)
{
	static char zeros[CHUNK];
	int progress = 0;

	while (!c->done && c->sent < send_total) {
		size_t want;
		ssize_t n;

		if (chunked && c->chunk_left == 0) {
			char head[32];
			int len = snprintf(head, sizeof(head), "%s%x\r\n", c->sent ? "\r\n" : "", CHUNK);
			/* A chunk header is small: one buffer of a Unix socket, sent whole or not at
			 * all (then later); anything else gives the connection up. */
			n = send(c->fd, head, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return progress;
			if (n != len) {
				c->done = 1;
				return progress;
			}
			c->chunk_left = CHUNK;
		}
		want = chunked ? c->chunk_left : CHUNK;
		if (want > send_total - c->sent)
			want = (size_t)(send_total - c->sent);
		n = send(c->fd, zeros, want, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return progress;
		if (n <= 0) {
			c->done = 1;
			return progress;
		}
		c->sent += (unsigned long long)n;
		if (chunked)
			c->chunk_left -= (unsigned)n;
		progress = 1;
	}
	c->done = 1;
	return progress;
}

static void hold_until_stdin_ends(void)
{
	char buf[64];

	printf("ready\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
}

static int flood_body(const char *sock, const char *path, unsigned n, unsigned long long declared,
		      unsigned long long send_total, int chunked)
{
	struct conn *conns = calloc(n, sizeof(*conns));
	unsigned long long sent = 0;
	unsigned n413 = 0, n403 = 0, nother = 0, nclosed = 0;
	uint64_t stalled_since = monotonic_us(), deadline;

	if (!conns)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		char head[512];
		int len;

		conns[i].fd = connect_unix(sock);
		if (conns[i].fd < 0) {
			perror("connect");
			return 1;
		}
		if (chunked)
			len = snprintf(head, sizeof(head), "PUT %s HTTP/1.1\r\nHost: d\r\n"
				       "Transfer-Encoding: chunked\r\n\r\n", path);
		else
			len = snprintf(head, sizeof(head), "PUT %s HTTP/1.1\r\nHost: d\r\n"
				       "Content-Length: %llu\r\n\r\n", path, declared);
		if (write_all(conns[i].fd, head, (size_t)len) < 0)
			conns[i].done = 1;
	}
	/* Send round robin until every connection is done or none moved for 2 s. */
	for (;;) {
		int progress = 0, busy = 0;
		for (unsigned i = 0; i < n; i++) {
			read_answer(&conns[i]);
			progress |= send_some(&conns[i], send_total, chunked);
			busy |= !conns[i].done;
		}
		if (!busy)
			break;
		if (progress)
			stalled_since = monotonic_us();
		else if (monotonic_us() - stalled_since > 2000000)
			break;
		else
			poll(NULL, 0, 10);
	}
	deadline = monotonic_us() + 3000000;
	while (monotonic_us() < deadline) {
		int waiting = 0;
		for (unsigned i = 0; i < n; i++) {
			read_answer(&conns[i]);
			waiting |= !conns[i].status && !conns[i].closed;
		}
		if (!waiting)
			break;
		poll(NULL, 0, 20);
	}
	for (unsigned i = 0; i < n; i++) {
		sent += conns[i].sent;
		if (conns[i].status == 413)
			n413++;
		else if (conns[i].status == 403)
			n403++;
		else if (conns[i].status)
			nother++;
		nclosed += (unsigned)conns[i].closed;
	}
	printf("sent=%llu answered=%u/%u/%u closed=%u\n", sent, n413, n403, nother, nclosed);
	hold_until_stdin_ends();
	for (unsigned i = 0; i < n; i++)
		close(conns[i].fd);
	free(conns);
	return 0;
}

struct storm_slot {
	int fd;                        /* -1 while waiting to connect again */
	uint64_t next_us;              /* when to connect again, or to send the next bytes */
	char answer[64];
	size_t answer_len;
};

/* Open SLOT's connection I and send its head (the whole header for the even ones, the first
 * lines for the odd ones). 0, or -1 when it could not connect (tried again later). */
static int storm_open(struct storm_slot *slot, unsigned i, const char *sock, const char *path,
		      unsigned long long declared)
{
	char head[512];
	int len = snprintf(head, sizeof(head), "PUT %s HTTP/1.1\r\nHost: d\r\nContent-Length: %llu\r\n%s",
			   path, declared, i % 2 ? "" : "\r\n");

	slot->answer_len = 0;
	slot->fd = connect_unix(sock);
	if (slot->fd < 0)
		return -1;
	if (write_all(slot->fd, head, (size_t)len) < 0) {
		close(slot->fd);
		slot->fd = -1;
		return -1;
	}
	return 0;
}

static int flood_storm(const char *sock, const char *path, unsigned n, unsigned long long declared)
{
	static const char zeros[1024];
	struct storm_slot *slots = calloc(n, sizeof(*slots));
	unsigned long long connections = 0, sent = 0;
	unsigned n413 = 0, n403 = 0, nother = 0, nclosed = 0, open = 0, max_open = 0;
	int ready = 0, stdin_open = 1;

	if (!slots)
		return 1;
	for (unsigned i = 0; i < n; i++)
		slots[i].fd = -1;
	while (stdin_open) {
		struct pollfd in = { .fd = 0, .events = POLLIN };
		uint64_t now = monotonic_us();

		open = 0;
		for (unsigned i = 0; i < n; i++) {
			struct storm_slot *c = &slots[i];
			if (c->fd < 0 && now >= c->next_us) {
				if (storm_open(c, i, sock, path, declared) == 0)
					connections++;
				c->next_us = now + (i % 2 ? 1000000 : 100000);
			}
			if (c->fd < 0)
				continue;
			/* What the daemon said, or that it closed. */
			for (;;) {
				char buf[4096];
				ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
				if (r > 0) {
					size_t take = (size_t)r;
					if (take > sizeof(c->answer) - 1 - c->answer_len)
						take = sizeof(c->answer) - 1 - c->answer_len;
					memcpy(c->answer + c->answer_len, buf, take);
					c->answer_len += take;
					c->answer[c->answer_len] = '\0';
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				/* Closed (or reset): count what it was, and come back in 1 s. */
				if (strncmp(c->answer, "HTTP/1.1 ", 9) == 0 && c->answer_len >= 12) {
					int status = atoi(c->answer + 9);
					if (status == 413)
						n413++;
					else if (status == 403)
						n403++;
					else
						nother++;
				} else {
					nclosed++;
				}
				close(c->fd);
				c->fd = -1;
				c->next_us = now + 1000000;
				break;
			}
			if (c->fd < 0)
				continue;
			open++;
			if (now >= c->next_us) {
				ssize_t w;
				if (i % 2)
					w = send(c->fd, "X-Stall: 1\r\n", 12, MSG_NOSIGNAL | MSG_DONTWAIT);
				else
					w = send(c->fd, zeros, sizeof(zeros), MSG_NOSIGNAL | MSG_DONTWAIT);
				if (w > 0)
					sent += (unsigned long long)w;
				c->next_us = now + (i % 2 ? 1000000 : 100000);
			}
		}
		if (open > max_open)
			max_open = open;
		if (!ready && connections >= n) {
			printf("ready\n");
			fflush(stdout);
			ready = 1;
		}
		if (poll(&in, 1, 20) == 1) {
			char buf[64];
			if (read(0, buf, sizeof(buf)) <= 0)
				stdin_open = 0;
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (slots[i].fd >= 0)
			close(slots[i].fd);
	printf("connections=%llu open=%u max_open=%u answered=%u/%u/%u closed=%u sent=%llu\n",
	       connections, open, max_open, n413, n403, nother, nclosed, sent);
	free(slots);
	return 0;
}

static int flood_idle(const char *sock, unsigned n)
{
	int *fds = calloc(n, sizeof(int));
	unsigned closed = 0;

	if (!fds)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		fds[i] = connect_unix(sock);
		if (fds[i] < 0) {
			perror("connect");
			return 1;
		}
	}
	poll(NULL, 0, 1000);
	for (unsigned i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN | POLLRDHUP };
		char c;
		if (poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0)
			closed++;
	}
	printf("closed=%u\n", closed);
	hold_until_stdin_ends();
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((argc == 7 || argc == 8) && strcmp(argv[1], "body") == 0) {
		n = (unsigned)strtoul(argv[4], NULL, 10);
		if (n == 0 || n > CONNECTIONS_MAX)
			return 2;
		return flood_body(argv[2], argv[3], n, strtoull(argv[5], NULL, 10),
				  strtoull(argv[6], NULL, 10), argc == 8 && strcmp(argv[7], "chunked") == 0);
	}
	if (argc == 6 && strcmp(argv[1], "storm") == 0) {
		n = (unsigned)strtoul(argv[4], NULL, 10);
		if (n == 0 || n > CONNECTIONS_MAX)
			return 2;
		return flood_storm(argv[2], argv[3], n, strtoull(argv[5], NULL, 10));
	}
	if (argc == 4 && strcmp(argv[1], "idle") == 0) {
		n = (unsigned)strtoul(argv[3], NULL, 10);
		if (n == 0 || n > CONNECTIONS_MAX)
			return 2;
		return flood_idle(argv[2], n);
	}
	fprintf(stderr, "usage: flood body SOCKET PATH N DECLARED SEND [chunked] | "
		"flood idle SOCKET N | flood storm SOCKET PATH N DECLARED\n");
	return 2;
}
