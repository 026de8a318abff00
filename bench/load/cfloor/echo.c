/*
 * echo.c: the paced-request floor in C (issue 11, bench/README.md "Fifth
 * round"). One thread, one level-triggered epoll set, non-blocking sockets:
 * the shape of ckpool's connector, with nothing else. It answers Stratum
 * requests like `lode-bench floor -echo` (subscribe, configure, authorize
 * with set_difficulty and a notify line, true for anything else) without
 * validating anything, so what it costs per request is what the kernel and
 * a minimal event loop cost on this machine.
 *
 *   cc -O2 -o cecho bench/load/cfloor/echo.c
 *   ./cecho PORT NOTIFY_FILE DIFFICULTY      # NOTIFY_FILE: lode-bench floor -write-notify
 *
 * A floor, not a server: an answer the socket buffer does not take is
 * dropped, lines over 4 KiB close the connection. It stops on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
#define BUFSZ 4096

struct conn {
	char *buf; /* allocated at the first read */
	int len;
	unsigned subs;
};

static struct conn conns[MAXFD];
static char notify[8192];
static size_t notify_len;
static char diff[64];
static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

/* field returns the raw JSON value of "key" in line (a scalar or a string
 * with its quotes), or NULL. */
static const char *field(const char *line, const char *key, int *n) {
	const char *p = strstr(line, key);
	if (!p)
		return NULL;
	p += strlen(key);
	while (*p == ' ' || *p == ':')
		p++;
	const char *e = p;
	if (*p == '"') {
		for (e = p + 1; *e && *e != '"'; e++)
			;
		if (*e)
			e++;
	} else {
		while (*e && *e != ',' && *e != '}' && *e != ' ')
			e++;
	}
	*n = (int)(e - p);
	return p;
}

static void answer(int fd, struct conn *c, const char *line) {
	char out[BUFSZ + 16384];
	int idn = 0, mn = 0, n;
	const char *id = field(line, "\"id\"", &idn);
	const char *m = field(line, "\"method\"", &mn);
	if (!id) {
		id = "null";
		idn = 4;
	}
	if (m && mn >= 2 && strncmp(m, "\"mining.subscribe\"", (size_t)mn) == 0) {
		c->subs++;
		n = snprintf(out, sizeof out, "{\"id\":%.*s,\"result\":[[[\"mining.notify\",\"%08x\"]],\"%08x\",8],\"error\":null}\n",
			     idn, id, c->subs, c->subs);
	} else if (m && strncmp(m, "\"mining.configure\"", (size_t)mn) == 0) {
		n = snprintf(out, sizeof out, "{\"id\":%.*s,\"result\":{\"version-rolling\":true,\"version-rolling.mask\":\"1fffe000\"},\"error\":null}\n", idn, id);
	} else {
		n = snprintf(out, sizeof out, "{\"id\":%.*s,\"result\":true,\"error\":null}\n", idn, id);
		if (m && strncmp(m, "\"mining.authorize\"", (size_t)mn) == 0) {
			n += snprintf(out + n, sizeof out - (size_t)n, "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[%s]}\n", diff);
			if ((size_t)n + notify_len < sizeof out) {
				memcpy(out + n, notify, notify_len);
				n += (int)notify_len;
			}
		}
	}
	if (write(fd, out, (size_t)n) < 0 && errno != EAGAIN)
		perror("write");
}

static void drop(int ep, int fd) {
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	free(conns[fd].buf);
	memset(&conns[fd], 0, sizeof conns[fd]);
}

static void readable(int ep, int fd) {
	struct conn *c = &conns[fd];
	if (!c->buf && !(c->buf = malloc(BUFSZ + 1))) {
		drop(ep, fd);
		return;
	}
	ssize_t r = read(fd, c->buf + c->len, (size_t)(BUFSZ - c->len));
	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		drop(ep, fd);
		return;
	}
	c->len += (int)r;
	int start = 0;
	for (int i = 0; i < c->len; i++) {
		if (c->buf[i] != '\n')
			continue;
		c->buf[i] = 0;
		answer(fd, c, c->buf + start);
		start = i + 1;
	}
	if (start == 0 && c->len == BUFSZ) {
		drop(ep, fd); /* a line longer than the buffer */
		return;
	}
	memmove(c->buf, c->buf + start, (size_t)(c->len - start));
	c->len -= start;
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT NOTIFY_FILE DIFFICULTY\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[2], "rb");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	notify_len = fread(notify, 1, sizeof notify, f);
	fclose(f);
	snprintf(diff, sizeof diff, "%s", argv[3]);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4096) < 0) {
		perror("listen");
		return 1;
	}
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, evs[256];
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	printf("cecho: pid %d listening on 127.0.0.1:%s\n", getpid(), argv[1]);
	fflush(stdout);
	while (!stop) {
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd != l) {
				readable(ep, fd);
				continue;
			}
			int c;
			while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
				if (c >= MAXFD) {
					close(c);
					continue;
				}
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
			}
		}
	}
	return 0;
}
