/*
 * durable.c: the paced-share floor in C with a durable write (issue 11). It
 * is echo.c (one thread, one level-triggered epoll set, non-blocking
 * sockets, the same answers) except that a mining.submit is answered only
 * after Redis has acknowledged a command recording it, as Lode answers a
 * share only after it is in Redis. So what it costs per share, next to
 * echo.c, is what the Redis round trip costs a minimal C server.
 *
 *   cc -O2 -o cdurable bench/load/cfloor/durable.c
 *   ./cdurable PORT NOTIFY_FILE DIFFICULTY REDIS
 *       # NOTIFY_FILE: lode-bench floor -write-notify; REDIS: a Unix socket
 *       # path (or unix:///path) or host:port
 *
 * Each submit line becomes `RPUSH cfloor:shares <the line>` on one Redis
 * connection. Group commit as Lode's ledger with batch_wait 0: when no
 * command is in flight, the submits read in one pass of the event loop go
 * at once, as one write of pipelined commands (no MULTI/EXEC: each RPUSH
 * is durable on its own, as far as AOF everysec makes anything durable);
 * submits that arrive while a write is in flight wait for all its replies
 * and then go together. Replies to a connection go in request order: an
 * answer to anything else waits behind that connection's earlier submits.
 * A Redis error reply closes the miner's connection instead of answering.
 *
 * A floor, not a server: lines over 4 KiB, more than 32 KiB of replies the
 * miner does not read, or a full Redis queue close the connection, and so
 * does a miner closing its side (answers still owed are lost with it); a
 * lost or misbehaving Redis stops the process. It stops on SIGINT/SIGTERM and
 * then prints how many shares it acknowledged in how many Redis writes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXFD 65536
#define BUFSZ 4096      /* a miner's line buffer */
#define OUTSZ 32768     /* a miner's answers, held or unwritten */
#define QMAX 65536      /* submits waiting for Redis, all connections */
#define RBUFSZ (4 << 20) /* commands of one Redis write */
#define KEY "cfloor:shares"

struct conn {
	char *buf; /* allocated at the first read */
	char *out; /* allocated at the first answer */
	int len;
	unsigned olen;     /* bytes in out */
	unsigned oready;   /* of which the first oready may be written */
	unsigned produced; /* bytes ever appended to out (wraps) */
	unsigned nwait;    /* submits waiting for Redis */
	unsigned last;     /* queue index of the newest of them */
	unsigned gen;      /* bumped when the fd is closed; kept across drops */
	unsigned subs;
	int wantout; /* EPOLLOUT is armed */
	int open;
};

/* A submit waiting for Redis: its connection, and the stream position up to
 * which that connection's answers may go once Redis acknowledges it (its own
 * answer and any later non-submit answers before its next submit). */
struct wait {
	int fd;
	unsigned gen;
	unsigned end;
};

static struct conn conns[MAXFD];
static struct wait q[QMAX];
static unsigned qhead, qcount; /* the oldest waiting submit, and how many */
static unsigned inflight;      /* of qcount: sent (or being sent) to Redis */
static char rbuf[2][RBUFSZ];   /* the next write's commands and the one being written */
static char *rnext = rbuf[0], *rcur = rbuf[1];
static size_t rnext_len, rcur_len, rcur_off;
static char rin[65536];
static size_t rin_len;
static int rfd = -1, rwantout;
static unsigned long long acked, writes;
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

static void drop(int ep, int fd) {
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	free(conns[fd].buf);
	free(conns[fd].out);
	unsigned gen = conns[fd].gen + 1;
	memset(&conns[fd], 0, sizeof conns[fd]);
	conns[fd].gen = gen; /* its waiting submits are skipped when Redis answers */
}

static void arm(int ep, int fd, int *armed, int want) {
	if (*armed == want)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.fd = fd};
	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	*armed = want;
}

/* flush writes a connection's releasable answers; 0, or -1 if it dropped it. */
static int flush(int ep, int fd) {
	struct conn *c = &conns[fd];
	while (c->oready > 0) {
		ssize_t w = write(fd, c->out, c->oready);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			drop(ep, fd);
			return -1;
		}
		memmove(c->out, c->out + w, c->olen - (size_t)w);
		c->olen -= (unsigned)w;
		c->oready -= (unsigned)w;
	}
	arm(ep, fd, &c->wantout, c->oready > 0);
	return 0;
}

/* answer appends the answer to one line; a submit's is held until Redis has
 * its command. 0, or -1 if it dropped the connection. */
static int answer(int ep, int fd, const char *line, int linelen) {
	struct conn *c = &conns[fd];
	char out[BUFSZ + 16384];
	int idn = 0, mn = 0, n, submit = 0;
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
		submit = m && mn == 15 && strncmp(m, "\"mining.submit\"", 15) == 0;
	}
	if (n < 0 || (size_t)n >= sizeof out)
		n = (int)sizeof out - 1;
	char cmd[64];
	int cn = 0;
	if (submit) {
		cn = snprintf(cmd, sizeof cmd, "*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$%d\r\n", (int)strlen(KEY), KEY, linelen);
		if (qcount == QMAX || rnext_len + (size_t)cn + (size_t)linelen + 2 > RBUFSZ) {
			fprintf(stderr, "cdurable: Redis queue full, closing fd %d\n", fd);
			drop(ep, fd);
			return -1;
		}
	}
	if (!c->out && !(c->out = malloc(OUTSZ))) {
		drop(ep, fd);
		return -1;
	}
	if (c->olen + (unsigned)n > OUTSZ) { /* the miner is not reading its answers */
		drop(ep, fd);
		return -1;
	}
	memcpy(c->out + c->olen, out, (size_t)n);
	c->olen += (unsigned)n;
	c->produced += (unsigned)n;
	if (submit) {
		memcpy(rnext + rnext_len, cmd, (size_t)cn);
		memcpy(rnext + rnext_len + cn, line, (size_t)linelen);
		memcpy(rnext + rnext_len + cn + linelen, "\r\n", 2);
		rnext_len += (size_t)cn + (size_t)linelen + 2;
		unsigned i = (qhead + qcount++) % QMAX;
		q[i] = (struct wait){.fd = fd, .gen = c->gen, .end = c->produced};
		c->last = i;
		c->nwait++;
	} else if (c->nwait > 0) {
		q[c->last].end = c->produced; /* goes with the newest waiting submit */
	} else {
		c->oready = c->olen;
	}
	return 0;
}

static void readable(int ep, int fd) {
	struct conn *c = &conns[fd];
	if (!c->buf && !(c->buf = malloc(BUFSZ + 1))) {
		drop(ep, fd);
		return;
	}
	ssize_t r = read(fd, c->buf + c->len, (size_t)(BUFSZ - c->len));
	if (r <= 0) {
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
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
		if (answer(ep, fd, c->buf + start, i - start) < 0)
			return;
		start = i + 1;
	}
	if (start == 0 && c->len == BUFSZ) {
		drop(ep, fd); /* a line longer than the buffer */
		return;
	}
	memmove(c->buf, c->buf + start, (size_t)(c->len - start));
	c->len -= start;
	flush(ep, fd);
}

static void die(const char *what) {
	fprintf(stderr, "cdurable: %s\n", what);
	exit(1);
}

/* redis_write writes what is left of the batch in flight. */
static void redis_write(int ep) {
	while (rcur_off < rcur_len) {
		ssize_t w = write(rfd, rcur + rcur_off, rcur_len - rcur_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			perror("cdurable: write to redis");
			exit(1);
		}
		rcur_off += (size_t)w;
	}
	arm(ep, rfd, &rwantout, rcur_off < rcur_len);
}

/* commit sends the queued submits as one write if none is in flight. */
static void commit(int ep) {
	if (inflight > 0 || rnext_len == 0)
		return;
	char *t = rcur;
	rcur = rnext;
	rcur_len = rnext_len;
	rcur_off = 0;
	rnext = t;
	rnext_len = 0;
	inflight = qcount;
	writes++;
	redis_write(ep);
}

/* reply_len is the length of the complete RESP reply at p, 0 if it is not
 * all there yet, -1 if it is not RESP. */
static long reply_len(const char *p, size_t n, int depth) {
	if (n < 3)
		return 0;
	const char *e = memchr(p, '\n', n);
	if (!e)
		return 0;
	if (e == p || e[-1] != '\r')
		return -1;
	long line = e + 1 - p, v = strtol(p + 1, NULL, 10);
	switch (p[0]) {
	case '+':
	case '-':
	case ':':
		return line;
	case '$':
		if (v < 0)
			return line;
		if (v > (1 << 24))
			return -1;
		return (size_t)(line + v + 2) <= n ? line + v + 2 : 0;
	case '*':
		if (v < 0)
			return line;
		if (depth > 8 || v > (1 << 20))
			return -1;
		for (long i = 0; i < v; i++) {
			long k = reply_len(p + line, n - (size_t)line, depth + 1);
			if (k <= 0)
				return k;
			line += k;
		}
		return line;
	}
	return -1;
}

/* redis_readable reads Redis's replies and releases each one's answers. */
static void redis_readable(int ep) {
	ssize_t r = read(rfd, rin + rin_len, sizeof rin - rin_len);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0)
		die(r == 0 ? "redis closed the connection" : strerror(errno));
	rin_len += (size_t)r;
	size_t off = 0;
	for (;;) {
		long k = reply_len(rin + off, rin_len - off, 0);
		if (k < 0)
			die("redis sent something that is not RESP");
		if (k == 0)
			break;
		if (inflight == 0)
			die("a redis reply to no command");
		struct wait w = q[qhead];
		int failed = rin[off] == '-';
		qhead = (qhead + 1) % QMAX;
		qcount--;
		inflight--;
		off += (size_t)k;
		struct conn *c = &conns[w.fd];
		if (c->gen != w.gen)
			continue; /* closed since */
		c->nwait--;
		if (failed) {
			fprintf(stderr, "cdurable: redis: %.*s\n", (int)(k - 2), rin + off - k);
			drop(ep, w.fd);
			continue;
		}
		acked++;
		c->oready = c->olen - (c->produced - w.end);
		flush(ep, w.fd);
	}
	if (off == 0 && rin_len == sizeof rin)
		die("a redis reply over 64 KiB");
	memmove(rin, rin + off, rin_len - off);
	rin_len -= off;
}

static int redis_dial(const char *addr) {
	int fd;
	if (strncmp(addr, "unix://", 7) == 0)
		addr += 7;
	if (strchr(addr, '/')) {
		struct sockaddr_un u = {.sun_family = AF_UNIX};
		if (strlen(addr) >= sizeof u.sun_path)
			die("socket path too long");
		strcpy(u.sun_path, addr);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&u, sizeof u) < 0) {
			perror(addr);
			exit(1);
		}
	} else {
		char host[256];
		const char *colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof host)
			die("redis address: a Unix socket path or host:port");
		snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
		int err = getaddrinfo(host, colon + 1, &hints, &ai);
		if (err)
			die(gai_strerror(err));
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			perror(addr);
			exit(1);
		}
		freeaddrinfo(ai);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("non-blocking redis socket");
	return fd;
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: %s PORT NOTIFY_FILE DIFFICULTY REDIS\n", argv[0]);
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
	rfd = redis_dial(argv[4]);
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
	ev.data.fd = rfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev);
	printf("cdurable: pid %d listening on 127.0.0.1:%s, redis %s\n", getpid(), argv[1], argv[4]);
	fflush(stdout);
	while (!stop) {
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == rfd) {
				if (evs[i].events & EPOLLOUT)
					redis_write(ep);
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					redis_readable(ep);
				continue;
			}
			if (fd != l) {
				/* an event for an fd dropped earlier in this pass (and
				 * perhaps accepted again: it then reads EAGAIN) */
				if (!conns[fd].open)
					continue;
				if (evs[i].events & EPOLLOUT && flush(ep, fd) < 0)
					continue;
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
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
				conns[c].open = 1;
			}
		}
		commit(ep); /* the submits of this pass: at once if none is in flight */
	}
	printf("cdurable: %llu shares acknowledged in %llu Redis writes (%.2f per write)\n", acked, writes,
	       writes ? (double)acked / (double)writes : 0.0);
	for (int fd = 0; fd < MAXFD; fd++)
		if (conns[fd].open)
			drop(ep, fd);
	return 0;
}
