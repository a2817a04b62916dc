/* tool_http.c — a strict HTTP/1.1 client for shell tests of `mu proxy`'s OpenAI-compatible API
 * (plain POSIX sockets, one thread per client).
 *
 *   tool_http --connect ADDR [--key K] [--timeout-ms MS] request METHOD PATH [BODY]
 *
 * One request on a fresh connection ("Connection: close"; BODY, when given, is sent as
 * application/json with a Content-Length; "Authorization: Bearer K" with --key). Prints
 * "status N", one line "header NAME: VALUE" per response header (NAME lower-cased, in the order
 * received), a line "body", then the de-chunked body bytes exactly as received. Exit 0 when a
 * complete response arrived (whatever its status), 1 otherwise (the reason on stderr).
 *
 *   tool_http --connect ADDR --key K load --clients N --seconds S [--model M] [--max-tokens T]
 *             [--timeout-ms MS]
 *
 * N threads, each sending requests one after another (a fresh connection each) until S seconds
 * have passed, rotating through chat stream, chat, completions stream and completions. Every
 * response is classified:
 *   ok        200, complete and well-formed: for stream true, Content-Type text/event-stream
 *             and a body of events "data: <json>\n\n" (exactly that: no CR, no comments, no
 *             other fields), each an object with "choices" (an array whose elements carry a
 *             "delta" object for chat, a "text" string for completions), at least one of them,
 *             the last event exactly "data: [DONE]\n\n" and nothing after it; for stream false,
 *             Content-Type application/json, choices[0].message.content (chat) or
 *             choices[0].text (completions) a string, and "usage" with integer literals
 *             prompt_tokens, completion_tokens, total_tokens (total = prompt + completion).
 *   error     documented refusals: 429 with one Retry-After header holding an integer >= 1,
 *             503, both with Content-Type application/json and an OpenAI error object
 *             {"error":{"message":string,"type":string,...}}; and a 200 stream whose last
 *             event is such an object ("data: {"error":{...}}\n\n", no [DONE] after it).
 *   lost      anything else: connect failure, reset or EOF before the response is complete,
 *             the timeout (--timeout-ms per request, default 30000), malformed HTTP or body,
 *             any other status.
 * Prints "load: clients N seconds S requests R ok K errors E (429:a 503:b stream_error:c)
 * lost L", one stderr line per lost request saying why (the first 20, then a count). Exit 1 when
 * L > 0 or K == 0.
 *
 *   tool_http --connect ADDR --key K egress --clients N --seconds S --rate R --burst B
 *             --body JSON [--path P] [--timeout-ms MS]
 *
 * N threads POST JSON to P (default /v1/chat/completions) over and over, reading the streamed
 * responses, and record (time, de-chunked body bytes) for every read() of a 200 response; at S
 * seconds every connection is closed. The records of all threads are merged in time order;
 * the worst window is the largest (bytes received in (t_i, t_j]) - R * (t_j - t_i) over all
 * pairs i < j. The cap holds when that excess is at most B + R * 0.05 (the 50 ms are an
 * allowance for scheduling jitter on the receiving side) and the clients really pressed
 * against it when total bytes >= 0.8 * R * (seconds from the first body byte to the last).
 * Prints "egress: clients N bytes X seconds T rate_measured Y B/s cap R B/s burst B
 * worst_window_excess W allowance A: ok" (A = R * 0.05) or "...: BAD (reason)"; exit 0 or 1.
 * A summary of the requests (completed, cut at S, refused, failed) goes to stderr.
 *
 * Everything received is bounded and checked: a status line "HTTP/1.1 DDD reason" and header
 * lines (token name, no folding, CRLF only, no control bytes) within 16 KiB, exactly one of
 * Content-Length (one, digits only) or Transfer-Encoding: chunked (chunk sizes in hex, at most
 * 8 digits, CRLF after each chunk, trailers within 16 KiB), a body of at most 16 MiB, and no
 * bytes after the end of the response. ADDR is unix:PATH or tcp:HOST:PORT (pal/net.h).
 * Exit 2 with a message on bad arguments; --help prints the usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pal/net.h"
#include "pal/pal.h"
#include "wire/json.h"

#define HTTP_MAX_HEAD ((size_t)16 << 10)  /* status line + header lines + the empty line */
#define HTTP_MAX_TRAILER ((size_t)16 << 10)
#define HTTP_MAX_BODY ((size_t)16 << 20)   /* de-chunked */
#define HTTP_MAX_HEADERS 256
#define HTTP_MAX_CHUNK_LINE 1024           /* chunk size plus extensions */
#define LOST_LINES_MAX 20
#define CLIENTS_MAX 1024
#define EGRESS_JITTER_S 0.05 /* receive-side allowance, seconds at the cap rate */
#define EGRESS_PRESS 0.8     /* the share of the cap the clients must reach */
#define EGRESS_MAX_RECORDS ((size_t)1 << 24) /* per thread */

/* ---- arguments (globals: read-only once the threads start) ---- */

static struct {
	const char *addr, *key, *mode, *model, *body, *path;
	char host[PAL_NET_ADDR_MAX];
	long timeout_ms, clients, max_tokens;
	double seconds;
	uint64_t rate, burst;
	const char *pos[4];
	int n_pos;
} g = {.model = "stories260K", .path = "/v1/chat/completions", .timeout_ms = 30000, .max_tokens = 16};

static uint64_t t_start; /* pal_now_ns() at start */

__attribute__((format(printf, 2, 3), noreturn)) static void die(int code, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "tool_http: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* ---- the response parser: fed what recv() returns, byte-exact, bounded ---- */

enum http_state { H_HEAD, H_LEN, H_CHUNK_SIZE, H_CHUNK_DATA, H_CHUNK_CRLF, H_TRAILER, H_DONE };

struct http_hdr {
	const char *name, *value; /* NUL-terminated inside head; name lower-cased */
};

struct http_resp {
	enum http_state st;
	int head_only;  /* the request was HEAD: no body whatever the headers say */
	int store;      /* keep the body (off in egress mode: bytes are only counted) */
	int status;
	char head[HTTP_MAX_HEAD + 1];
	size_t head_len;
	struct http_hdr hdr[HTTP_MAX_HEADERS];
	unsigned n_hdr;
	uint8_t *body;  /* store: body[0..body_len), NUL after it */
	size_t body_len, body_cap;
	uint64_t left;  /* H_LEN, H_CHUNK_DATA: bytes still to come; H_CHUNK_CRLF: 2 or 1 */
	char line[HTTP_MAX_CHUNK_LINE];
	size_t line_len, trailer_len;
	uint64_t received; /* every byte, for messages */
	char why[320];
};

__attribute__((format(printf, 2, 3))) static int fail(struct http_resp *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
	return -1;
}

/* Ready for a new response; the body buffer is kept for reuse. */
static void resp_init(struct http_resp *r, int head_only, int store)
{
	r->st = H_HEAD;
	r->head_only = head_only;
	r->store = store;
	r->status = 0;
	r->head_len = 0;
	r->n_hdr = 0;
	r->body_len = 0;
	r->left = 0;
	r->line_len = r->trailer_len = 0;
	r->line[0] = 0;
	r->received = 0;
	r->why[0] = 0;
}

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field value or reason phrase byte: visible ASCII, space, tab, obs-text. */
static int is_vbyte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* The first value of header name (lower case), or NULL; *count (may be NULL) gets how many. */
static const char *resp_header(const struct http_resp *r, const char *name, unsigned *count)
{
	const char *v = NULL;
	unsigned n = 0;
	for (unsigned i = 0; i < r->n_hdr; i++)
		if (!strcmp(r->hdr[i].name, name)) {
			if (!v)
				v = r->hdr[i].value;
			n++;
		}
	if (count)
		*count = n;
	return v;
}

/* Digits only, at most max: 0 and *out, or -1. */
static int parse_digits(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* The header section is complete in head[0..head_len) (ending in CRLF CRLF, no bare LF, no
 * NUL): parse the status line and the fields in place, then choose the body framing. */
static int parse_head(struct http_resp *r)
{
	char *h = r->head, *end = r->head + r->head_len;
	*end = 0;
	char *eol = strstr(h, "\r\n");
	if (eol - h < 13 || memcmp(h, "HTTP/1.1 ", 9) || h[12] != ' ')
		return fail(r, "malformed status line (want \"HTTP/1.1 DDD reason\")");
	for (int i = 9; i < 12; i++)
		if (h[i] < '0' || h[i] > '9')
			return fail(r, "malformed status code in the status line");
	r->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
	if (r->status < 100 || r->status > 599)
		return fail(r, "status code %d out of range", r->status);
	for (char *p = h + 13; p < eol; p++)
		if (!is_vbyte((unsigned char)*p))
			return fail(r, "control byte 0x%02x in the reason phrase", (unsigned char)*p);
	for (char *line = eol + 2; line < end - 2; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (*line == ' ' || *line == '\t')
			return fail(r, "header line %u starts with whitespace (obsolete folding)", r->n_hdr + 1);
		char *p = line;
		while (p < eol && is_tchar((unsigned char)*p))
			p++;
		if (p == line || *p != ':')
			return fail(r, "header line %u: malformed field name (want token \":\")", r->n_hdr + 1);
		if (r->n_hdr == HTTP_MAX_HEADERS)
			return fail(r, "more than %d header lines", HTTP_MAX_HEADERS);
		*p++ = 0;
		for (char *c = line; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		char *ve = eol;
		while (ve > p && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (char *c = p; c < ve; c++)
			if (!is_vbyte((unsigned char)*c))
				return fail(r, "header %s: control byte 0x%02x in the value", line, (unsigned char)*c);
		*ve = 0;
		r->hdr[r->n_hdr++] = (struct http_hdr){line, p};
	}
	if (r->status < 200)
		return fail(r, "unexpected interim response %d (the tool sends no Expect)", r->status);

	unsigned n_cl, n_te;
	const char *cl = resp_header(r, "content-length", &n_cl), *te = resp_header(r, "transfer-encoding", &n_te);
	if (r->head_only || r->status == 204 || r->status == 304) {
		r->st = H_DONE;
		return 0;
	}
	if (n_cl && n_te)
		return fail(r, "both Content-Length and Transfer-Encoding");
	if (n_te) {
		if (n_te > 1 || strcasecmp(te, "chunked"))
			return fail(r, "Transfer-Encoding other than a single \"chunked\"");
		r->st = H_CHUNK_SIZE;
		return 0;
	}
	if (!n_cl)
		return fail(r, "neither Content-Length nor Transfer-Encoding: chunked");
	if (n_cl > 1)
		return fail(r, "%u Content-Length headers", n_cl);
	if (parse_digits(cl, UINT64_MAX, &r->left) != 0)
		return fail(r, "Content-Length \"%.40s\" is not a decimal number", cl);
	if (r->left > HTTP_MAX_BODY)
		return fail(r, "Content-Length %llu exceeds the %zu-byte body limit", (unsigned long long)r->left,
			    HTTP_MAX_BODY);
	r->st = r->left ? H_LEN : H_DONE;
	return 0;
}

static int body_add(struct http_resp *r, const uint8_t *p, size_t n)
{
	if (n > HTTP_MAX_BODY - r->body_len)
		return fail(r, "body longer than %zu bytes", HTTP_MAX_BODY);
	if (r->store) {
		if (r->body_len + n + 1 > r->body_cap) {
			size_t cap = r->body_cap ? r->body_cap : 4096;
			while (cap < r->body_len + n + 1)
				cap *= 2;
			uint8_t *b = realloc(r->body, cap);
			if (!b)
				return fail(r, "out of memory for the body");
			r->body = b;
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, p, n);
		r->body[r->body_len + n] = 0;
	}
	r->body_len += n;
	return 0;
}

/* The chunk-size line in r->line (CRLF removed): hex digits, then nothing or ";extensions". */
static int chunk_size(struct http_resp *r)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < r->line_len; i++) {
		char c = r->line[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			break;
		if (i == 8)
			return fail(r, "chunk size with more than 8 hex digits");
		v = v * 16 + (uint64_t)d;
	}
	if (i == 0 || (i < r->line_len && r->line[i] != ';'))
		return fail(r, "malformed chunk size line");
	for (; i < r->line_len; i++)
		if (!is_vbyte((unsigned char)r->line[i]))
			return fail(r, "control byte in a chunk extension");
	if (v > HTTP_MAX_BODY - r->body_len)
		return fail(r, "chunk of %llu bytes takes the body past %zu bytes", (unsigned long long)v, HTTP_MAX_BODY);
	r->left = v;
	r->st = v ? H_CHUNK_DATA : H_TRAILER;
	r->line_len = 0;
	r->line[0] = 0; /* H_TRAILER: no CR pending */
	return 0;
}

/* Feeds p[0..n): 0 more is needed, 1 the response is complete, -1 malformed (r->why). *body
 * gets the de-chunked body bytes this call added. */
static int resp_feed(struct http_resp *r, const uint8_t *p, size_t n, size_t *body)
{
	size_t i = 0, before = r->body_len;
	*body = 0; /* stays 0 when the bytes turn out malformed */
	r->received += n;
	while (i < n && r->st != H_DONE) {
		uint8_t c = p[i];
		switch (r->st) {
		case H_HEAD:
			if (c == 0)
				return fail(r, "NUL byte in the header section");
			if (c == '\n' && (r->head_len == 0 || r->head[r->head_len - 1] != '\r'))
				return fail(r, "bare LF in the header section (lines must end in CRLF)");
			if (r->head_len == HTTP_MAX_HEAD)
				return fail(r, "header section longer than %zu bytes", HTTP_MAX_HEAD);
			r->head[r->head_len++] = (char)c;
			i++;
			if (r->head_len >= 2 && r->head[r->head_len - 2] == '\r' && c != '\n')
				return fail(r, "bare CR in the header section");
			if (r->head_len >= 4 && !memcmp(r->head + r->head_len - 4, "\r\n\r\n", 4) && parse_head(r) != 0)
				return -1;
			break;
		case H_LEN:
		case H_CHUNK_DATA: {
			size_t take = n - i < r->left ? n - i : (size_t)r->left;
			if (body_add(r, p + i, take) != 0)
				return -1;
			i += take;
			r->left -= take;
			if (!r->left && r->st == H_LEN)
				r->st = H_DONE;
			else if (!r->left) {
				r->st = H_CHUNK_CRLF;
				r->left = 2;
			}
			break;
		}
		case H_CHUNK_CRLF:
			if (c != (r->left == 2 ? '\r' : '\n'))
				return fail(r, "chunk data not followed by CRLF (chunk size wrong?)");
			i++;
			if (--r->left == 0)
				r->st = H_CHUNK_SIZE;
			break;
		case H_CHUNK_SIZE:
			i++;
			if (r->line_len && r->line[r->line_len - 1] == '\r') {
				if (c != '\n')
					return fail(r, "bare CR in a chunk size line");
				r->line_len--;
				if (chunk_size(r) != 0)
					return -1;
				break;
			}
			if (c == '\n')
				return fail(r, "chunk size line ends in a bare LF");
			if (r->line_len == sizeof r->line)
				return fail(r, "chunk size line longer than %d bytes", HTTP_MAX_CHUNK_LINE);
			r->line[r->line_len++] = (char)c;
			break;
		case H_TRAILER:
			/* Trailer fields are skipped but held to the same line rules; line_len counts
			 * the current line, line[0] remembers a pending CR. */
			i++;
			if (++r->trailer_len > HTTP_MAX_TRAILER)
				return fail(r, "trailer section longer than %zu bytes", HTTP_MAX_TRAILER);
			if (r->line[0] == '\r') {
				if (c != '\n')
					return fail(r, "bare CR in the trailer section");
				r->line[0] = 0;
				if (r->line_len == 0)
					r->st = H_DONE;
				r->line_len = 0;
			} else if (c == '\r') {
				r->line[0] = '\r';
			} else if (c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f) {
				return fail(r, "malformed trailer section (bare LF or control byte)");
			} else {
				r->line_len++;
			}
			break;
		case H_DONE: break;
		}
	}
	*body = r->body_len - before;
	if (r->st != H_DONE)
		return 0;
	if (i < n)
		return fail(r, "%zu bytes after the end of the response", n - i);
	return 1;
}

static const char *resp_stage(const struct http_resp *r)
{
	switch (r->st) {
	case H_HEAD: return r->head_len ? "inside the header section" : "before any response byte";
	case H_LEN: return "inside the body (Content-Length not reached)";
	case H_TRAILER: return "inside the trailer section";
	default: return "inside the chunked body (no last chunk)";
	}
}

/* ---- one exchange on a fresh connection ---- */

struct recorder; /* egress mode */
static void rec_add(struct recorder *rec, uint64_t t, uint64_t bytes);

static uint64_t now_ns(void) { return pal_now_ns(); }

static int wait_fd(int fd, short ev, uint64_t until)
{
	for (;;) {
		uint64_t t = now_ns();
		if (t >= until)
			return 0;
		uint64_t ms = (until - t + 999999) / 1000000;
		struct pollfd p = {.fd = fd, .events = ev};
		int r = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Sends req[0..len) to g.addr and reads one response into r within timeout_ms. stop (0: none)
 * ends the exchange early without it being a failure (egress). rec (may be NULL) gets a record
 * for every read of a 200 response. Returns 1 complete, 0 stopped, -1 failed (r->why). */
static int exchange(const char *req, size_t len, struct http_resp *r, uint64_t stop, struct recorder *rec)
{
	static _Thread_local uint8_t in[65536];
	struct mu_error err = {0};
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)g.timeout_ms * 1000000u;
	uint64_t until = stop && stop < deadline ? stop : deadline;
	int fd, rc = -1;
	if (stop && t0 >= stop)
		return 0;
	uint64_t conn_ms = (until - t0 + 999999u) / 1000000u;
	if (pal_connect(g.addr, (uint32_t)conn_ms, PAL_NET_NONBLOCK, &fd, &err) != MU_OK) {
		/* pal_connect's clock counts whole milliseconds: a timeout up to 2 ms before stop is
		 * the stop, not a failure */
		if (stop && now_ns() + 2000000u >= stop)
			return 0;
		return fail(r, "%s", err.msg);
	}
	for (size_t off = 0; off < len;) {
		int w = wait_fd(fd, POLLOUT, until);
		if (w <= 0) {
			rc = w == 0 && until == stop ? 0 : fail(r, "could not send the request within %ld ms", g.timeout_ms);
			goto out;
		}
		ssize_t s = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (s < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (s < 0) {
			rc = fail(r, "send after %zu of %zu request bytes: %s", off, len, strerror(errno));
			goto out;
		}
		off += (size_t)s;
	}
	for (;;) {
		int w = wait_fd(fd, POLLIN, until);
		if (w < 0) {
			rc = fail(r, "poll: %s", strerror(errno));
			goto out;
		}
		if (w == 0) {
			rc = until == stop ? 0 : fail(r, "no complete response within %ld ms (%llu bytes received, stopped %s)",
						     g.timeout_ms, (unsigned long long)r->received, resp_stage(r));
			goto out;
		}
		ssize_t n = recv(fd, in, sizeof in, 0);
		uint64_t t = now_ns();
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			rc = fail(r, "%s after %llu bytes, %s", n == 0 ? "connection closed" : strerror(errno),
				  (unsigned long long)r->received, resp_stage(r));
			goto out;
		}
		size_t body;
		int f = resp_feed(r, in, (size_t)n, &body);
		if (rec && r->status == 200)
			rec_add(rec, t - t_start, body);
		if (f != 0) {
			rc = f;
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}

/* The request bytes (malloc'd, *len set). */
static char *build_request(const char *method, const char *path, const char *body, size_t *len)
{
	size_t bl = body ? strlen(body) : 0, cap = 1024 + strlen(method) + strlen(path) + strlen(g.host) +
						   (g.key ? strlen(g.key) : 0) + bl;
	char *q = malloc(cap);
	if (!q)
		die(1, "out of memory");
	int n = snprintf(q, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tool_http\r\nAccept: */*\r\nConnection: close\r\n",
			 method, path, g.host);
	if (g.key)
		n += snprintf(q + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", g.key);
	if (body)
		n += snprintf(q + n, cap - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", bl);
	else if (!strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH"))
		n += snprintf(q + n, cap - (size_t)n, "Content-Length: 0\r\n");
	n += snprintf(q + n, cap - (size_t)n, "\r\n");
	memcpy(q + n, body ? body : "", bl);
	*len = (size_t)n + bl;
	return q;
}

/* ---- body checks (wire/json.h's strict parser) ---- */

struct jdoc {
	struct json_doc d;
	void *mem;
};

static int jparse(struct jdoc *j, const uint8_t *p, size_t n, char *why, size_t cap, const char *what)
{
	struct json_limits lim = JSON_LIMITS_TOOL;
	struct mu_error err = {0};
	size_t sz = 0;
	lim.max_bytes = (uint32_t)HTTP_MAX_BODY;
	lim.max_depth = 64;
	j->mem = NULL;
	if (!p)
		p = (const uint8_t *)"";
	if (json_mem_size(&lim, n, &sz, &err) == MU_OK && !(j->mem = malloc(sz)))
		snprintf(err.msg, sizeof err.msg, "out of memory");
	else if (j->mem && json_parse(&j->d, p, n, &lim, j->mem, sz, &err) == MU_OK)
		return 0;
	free(j->mem);
	j->mem = NULL;
	snprintf(why, cap, "%s is not valid JSON: %s", what, err.msg);
	return -1;
}

static int jtype(const struct jdoc *j, uint32_t t, enum json_type want)
{
	return t != JSON_NONE && json_type(&j->d, t) == (int)want;
}

/* A JSON number written as a plain non-negative integer literal. */
static int jcount(const struct jdoc *j, uint32_t obj, const char *key, int64_t *out)
{
	uint32_t t = json_obj_get(&j->d, obj, key);
	if (!jtype(j, t, JSON_NUMBER))
		return -1;
	const struct json_tok *k = &j->d.tok[t];
	for (uint32_t i = 0; i < k->len; i++)
		if (j->d.src[k->start + i] < '0' || j->d.src[k->start + i] > '9')
			return -1;
	return json_get_int(&j->d, t, 0, INT64_MAX, out, NULL) == MU_OK ? 0 : -1;
}

/* {"error":{"message":string,"type":string,...},...} at the root. */
static int check_error_obj(const struct jdoc *j, char *why, size_t cap)
{
	uint32_t e = json_obj_get(&j->d, 0, "error");
	if (!jtype(j, e, JSON_OBJECT))
		return snprintf(why, cap, "no \"error\" object"), -1;
	if (!jtype(j, json_obj_get(&j->d, e, "message"), JSON_STRING) ||
	    !jtype(j, json_obj_get(&j->d, e, "type"), JSON_STRING))
		return snprintf(why, cap, "the error object lacks a string \"message\" or \"type\""), -1;
	return 0;
}

static int media_is(const char *v, const char *want)
{
	size_t n = strlen(want);
	return v && !strncasecmp(v, want, n) && (v[n] == 0 || v[n] == ';' || v[n] == ' ' || v[n] == '\t');
}

enum outcome { OUT_OK, OUT_429, OUT_503, OUT_STREAM_ERROR, OUT_LOST };

/* A 200 non-stream body. */
static enum outcome check_whole(const struct http_resp *r, int chat, char *why, size_t cap)
{
	struct jdoc j;
	enum outcome o = OUT_LOST;
	if (jparse(&j, r->body, r->body_len, why, cap, "the body") != 0)
		return OUT_LOST;
	uint32_t ch = json_obj_get(&j.d, 0, "choices"), c0 = json_arr_get(&j.d, ch, 0), u;
	uint32_t m = chat ? json_obj_get(&j.d, c0, "message") : c0;
	int64_t pt, ct, tt;
	if (!jtype(&j, 0, JSON_OBJECT) || !jtype(&j, ch, JSON_ARRAY) || !jtype(&j, c0, JSON_OBJECT))
		snprintf(why, cap, "no \"choices\" array with an object in it");
	else if (!jtype(&j, m, JSON_OBJECT) || !jtype(&j, json_obj_get(&j.d, m, chat ? "content" : "text"), JSON_STRING))
		snprintf(why, cap, chat ? "no string choices[0].message.content" : "no string choices[0].text");
	else if (!jtype(&j, u = json_obj_get(&j.d, 0, "usage"), JSON_OBJECT) || jcount(&j, u, "prompt_tokens", &pt) ||
		 jcount(&j, u, "completion_tokens", &ct) || jcount(&j, u, "total_tokens", &tt))
		snprintf(why, cap, "no \"usage\" object with integer prompt_tokens, completion_tokens, total_tokens");
	else if (tt != pt + ct)
		snprintf(why, cap, "usage: total_tokens %lld != prompt_tokens %lld + completion_tokens %lld",
			 (long long)tt, (long long)pt, (long long)ct);
	else
		o = OUT_OK;
	free(j.mem);
	return o;
}

/* A 200 stream body: events "data: PAYLOAD\n\n" ending with [DONE] (ok) or an error (error). */
static enum outcome check_stream(const struct http_resp *r, int chat, char *why, size_t cap)
{
	const uint8_t *b = r->body;
	size_t n = r->body_len, at = 0;
	unsigned ev = 0;
	while (at < n) {
		const uint8_t *p, *nl;
		ev++;
		if (n - at < 6 || memcmp(b + at, "data: ", 6))
			return snprintf(why, cap, "event %u (body offset %zu) does not start with \"data: \"", ev, at), OUT_LOST;
		p = b + at + 6;
		if ((nl = memchr(p, '\n', n - at - 6)) && nl > p && nl[-1] == '\r')
			return snprintf(why, cap, "event %u ends in CR LF (want bare \\n\\n)", ev), OUT_LOST;
		if (!nl || (size_t)(nl - b) + 1 >= n || nl[1] != '\n')
			return snprintf(why, cap, "event %u (body offset %zu) does not end in \"\\n\\n\"", ev, at), OUT_LOST;
		size_t pl = (size_t)(nl - p);
		at = (size_t)(nl - b) + 2;
		if (pl == 6 && !memcmp(p, "[DONE]", 6)) {
			if (at < n)
				return snprintf(why, cap, "%zu bytes after data: [DONE]", n - at), OUT_LOST;
			if (ev == 1)
				return snprintf(why, cap, "data: [DONE] without any chunk before it"), OUT_LOST;
			return OUT_OK;
		}
		struct jdoc j;
		char what[48];
		snprintf(what, sizeof what, "event %u", ev);
		if (jparse(&j, p, pl, why, cap, what) != 0)
			return OUT_LOST;
		enum outcome o = OUT_LOST;
		uint32_t ch = json_obj_get(&j.d, 0, "choices"), k, v;
		if (!jtype(&j, 0, JSON_OBJECT)) {
			snprintf(why, cap, "event %u is not a JSON object", ev);
		} else if (json_obj_get(&j.d, 0, "error") != JSON_NONE) {
			char w[160];
			if (check_error_obj(&j, w, sizeof w) != 0)
				snprintf(why, cap, "error event %u: %s", ev, w);
			else if (at < n)
				snprintf(why, cap, "%zu bytes after the error event %u", n - at, ev);
			else
				o = OUT_STREAM_ERROR;
			free(j.mem);
			return o;
		} else if (!jtype(&j, ch, JSON_ARRAY)) {
			snprintf(why, cap, "event %u has no \"choices\" array", ev);
		} else {
			struct json_iter it;
			o = OUT_OK;
			json_iter_init(&it, &j.d, ch);
			while (o == OUT_OK && json_iter_next(&it, &k, &v))
				if (!jtype(&j, v, JSON_OBJECT) ||
				    !jtype(&j, json_obj_get(&j.d, v, chat ? "delta" : "text"), chat ? JSON_OBJECT : JSON_STRING)) {
					snprintf(why, cap, chat ? "event %u: a choice without a \"delta\" object"
								: "event %u: a choice without a \"text\" string", ev);
					o = OUT_LOST;
				}
		}
		free(j.mem);
		if (o != OUT_OK)
			return OUT_LOST;
	}
	return snprintf(why, cap, at ? "the stream ended after %u events without data: [DONE]" : "empty stream body", ev),
	       OUT_LOST;
}

static enum outcome classify(const struct http_resp *r, int chat, int stream, char *why, size_t cap)
{
	const char *ct = resp_header(r, "content-type", NULL);
	if (r->status == 200) {
		if (!media_is(ct, stream ? "text/event-stream" : "application/json"))
			return snprintf(why, cap, "200 with Content-Type \"%.60s\", want %s", ct ? ct : "(none)",
					stream ? "text/event-stream" : "application/json"), OUT_LOST;
		return stream ? check_stream(r, chat, why, cap) : check_whole(r, chat, why, cap);
	}
	if (r->status != 429 && r->status != 503)
		return snprintf(why, cap, "status %d (only 200, 429 and 503 are expected)", r->status), OUT_LOST;
	if (r->status == 429) {
		unsigned n;
		const char *ra = resp_header(r, "retry-after", &n);
		uint64_t s;
		if (n != 1 || parse_digits(ra, 1000000000, &s) != 0 || s < 1)
			return snprintf(why, cap, "429 without exactly one Retry-After holding an integer >= 1"), OUT_LOST;
	}
	if (!media_is(ct, "application/json"))
		return snprintf(why, cap, "%d with Content-Type \"%.60s\", want application/json", r->status, ct ? ct : "(none)"),
		       OUT_LOST;
	struct jdoc j;
	char w[160];
	if (jparse(&j, r->body, r->body_len, w, sizeof w, "the body") != 0 || check_error_obj(&j, w, sizeof w) != 0) {
		free(j.mem);
		return snprintf(why, cap, "%d body: %s", r->status, w), OUT_LOST;
	}
	free(j.mem);
	return r->status == 429 ? OUT_429 : OUT_503;
}

/* ---- load ---- */

static pthread_mutex_t lost_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long lost_lines;

struct load_worker {
	pthread_t th;
	long idx;
	uint64_t end;
	unsigned long n[OUT_LOST + 1], requests;
};

static const char *const prompts[] = {"Once upon a time", "One day, a little girl named Lily", "The cat sat",
				      "Tom and his dog went to the park"};
static const char *const kind_name[] = {"chat stream", "chat", "completions stream", "completions"};

static void *load_main(void *arg)
{
	struct load_worker *w = arg;
	struct http_resp *r = calloc(1, sizeof *r);
	char body[512], why[400];
	if (!r)
		die(1, "out of memory");
	for (unsigned long i = 0; now_ns() < w->end; i++) {
		unsigned kind = (unsigned)((i + (unsigned long)w->idx) % 4);
		int chat = kind < 2, stream = kind % 2 == 0;
		unsigned long long seed = (unsigned long long)w->idx * 1000000ull + i + 1;
		const char *pr = prompts[(i / 4 + (unsigned long)w->idx) % 4];
		if (chat)
			snprintf(body, sizeof body,
				 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
				 "\"max_tokens\":%ld,\"seed\":%llu,\"stream\":%s}",
				 g.model, pr, g.max_tokens, seed, stream ? "true" : "false");
		else
			snprintf(body, sizeof body, "{\"model\":\"%s\",\"prompt\":\"%s\",\"max_tokens\":%ld,\"seed\":%llu,\"stream\":%s}",
				 g.model, pr, g.max_tokens, seed, stream ? "true" : "false");
		size_t len;
		char *req = build_request("POST", chat ? "/v1/chat/completions" : "/v1/completions", body, &len);
		resp_init(r, 0, 1);
		enum outcome o = exchange(req, len, r, 0, NULL) == 1 ? classify(r, chat, stream, why, sizeof why) : OUT_LOST;
		if (r->why[0])
			snprintf(why, sizeof why, "%s", r->why);
		free(req);
		w->requests++;
		w->n[o]++;
		if (o == OUT_429 || o == OUT_503) {
			/* a well-behaved client waits before asking again (Retry-After is a minimum; a
			 * short fixed pause keeps every client pressing on the queue) */
			struct timespec ts = {.tv_sec = 0, .tv_nsec = 250000000};
			nanosleep(&ts, NULL);
		}
		if (o == OUT_LOST) {
			pthread_mutex_lock(&lost_lock);
			if (lost_lines++ < LOST_LINES_MAX)
				fprintf(stderr, "tool_http: lost: client %ld request %lu (%s, seed %llu): %s\n", w->idx, i + 1,
					kind_name[kind], seed, why);
			pthread_mutex_unlock(&lost_lock);
		}
	}
	free(r->body);
	free(r);
	return NULL;
}

static int run_load(void)
{
	struct load_worker *w = calloc((size_t)g.clients, sizeof *w);
	unsigned long tot[OUT_LOST + 1] = {0}, req = 0;
	if (!w)
		die(1, "out of memory");
	uint64_t end = now_ns() + (uint64_t)(g.seconds * 1e9);
	for (long i = 0; i < g.clients; i++) {
		w[i].idx = i;
		w[i].end = end;
		if (pthread_create(&w[i].th, NULL, load_main, &w[i]) != 0)
			die(1, "cannot start client thread %ld", i);
	}
	for (long i = 0; i < g.clients; i++) {
		pthread_join(w[i].th, NULL);
		req += w[i].requests;
		for (int k = 0; k <= OUT_LOST; k++)
			tot[k] += w[i].n[k];
	}
	free(w);
	if (lost_lines > LOST_LINES_MAX)
		fprintf(stderr, "tool_http: ... and %lu more lost requests\n", lost_lines - LOST_LINES_MAX);
	printf("load: clients %ld seconds %g requests %lu ok %lu errors %lu (429:%lu 503:%lu stream_error:%lu) lost %lu\n",
	       g.clients, g.seconds, req, tot[OUT_OK], tot[OUT_429] + tot[OUT_503] + tot[OUT_STREAM_ERROR], tot[OUT_429],
	       tot[OUT_503], tot[OUT_STREAM_ERROR], tot[OUT_LOST]);
	return tot[OUT_LOST] > 0 || tot[OUT_OK] == 0;
}

/* ---- egress ---- */

struct rec {
	uint64_t t, bytes;
};

struct recorder {
	struct rec *r;
	size_t n, cap;
	int overflow;
};

static void rec_add(struct recorder *rec, uint64_t t, uint64_t bytes)
{
	if (rec->n == rec->cap) {
		size_t cap = rec->cap ? rec->cap * 2 : 4096;
		struct rec *p = cap <= EGRESS_MAX_RECORDS ? realloc(rec->r, cap * sizeof *p) : NULL;
		if (!p) {
			rec->overflow = 1;
			return;
		}
		rec->r = p;
		rec->cap = cap;
	}
	rec->r[rec->n++] = (struct rec){t, bytes};
}

struct egress_worker {
	pthread_t th;
	long idx;
	uint64_t stop;
	struct recorder rec;
	unsigned long complete, cut, refused, failed;
};

static void *egress_main(void *arg)
{
	struct egress_worker *w = arg;
	struct http_resp *r = calloc(1, sizeof *r);
	size_t len;
	char *req = build_request("POST", g.path, g.body, &len);
	if (!r)
		die(1, "out of memory");
	while (now_ns() < w->stop) {
		resp_init(r, 0, 0);
		int rc = exchange(req, len, r, w->stop, &w->rec);
		if (rc == 0) {
			w->cut++;
			continue;
		}
		if (rc == 1 && r->status == 200) {
			w->complete++;
			continue;
		}
		if (rc == 1)
			w->refused++;
		else
			w->failed++;
		pthread_mutex_lock(&lost_lock);
		if (lost_lines++ < LOST_LINES_MAX) {
			if (rc == 1)
				fprintf(stderr, "tool_http: egress client %ld: status %d (its body is not counted)\n", w->idx,
					r->status);
			else
				fprintf(stderr, "tool_http: egress client %ld: %s\n", w->idx, r->why);
		}
		pthread_mutex_unlock(&lost_lock);
		/* do not spin on refusals: other clients keep the pressure on */
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	free(req);
	free(r->body);
	free(r);
	return NULL;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	return x->t < y->t ? -1 : x->t > y->t;
}

static int run_egress(void)
{
	struct egress_worker *w = calloc((size_t)g.clients, sizeof *w);
	unsigned long complete = 0, cut = 0, refused = 0, failed = 0;
	size_t n = 0, m = 0;
	int overflow = 0;
	if (!w)
		die(1, "out of memory");
	uint64_t stop = now_ns() + (uint64_t)(g.seconds * 1e9);
	for (long i = 0; i < g.clients; i++) {
		w[i].idx = i;
		w[i].stop = stop;
		if (pthread_create(&w[i].th, NULL, egress_main, &w[i]) != 0)
			die(1, "cannot start client thread %ld", i);
	}
	for (long i = 0; i < g.clients; i++) {
		pthread_join(w[i].th, NULL);
		n += w[i].rec.n;
		overflow |= w[i].rec.overflow;
		complete += w[i].complete, cut += w[i].cut, refused += w[i].refused, failed += w[i].failed;
	}
	struct rec *all = malloc((n ? n : 1) * sizeof *all);
	if (!all)
		die(1, "out of memory");
	for (long i = 0; i < g.clients; i++) {
		if (w[i].rec.n)
			memcpy(all + m, w[i].rec.r, w[i].rec.n * sizeof *all);
		m += w[i].rec.n;
		free(w[i].rec.r);
	}
	free(w);
	qsort(all, n, sizeof *all, rec_cmp);
	/* Reads at the same instant are one record, so that (t_i, t_j] never has t_i == t_j. */
	m = 0;
	for (size_t i = 0; i < n; i++)
		if (m && all[m - 1].t == all[i].t)
			all[m - 1].bytes += all[i].bytes;
		else
			all[m++] = all[i];

	/* excess(i, j) = (cum_j - R t_j) - (cum_i - R t_i); keep the max of (R t_i - cum_i) over i < j.
	 * Times are seconds since the first record, which keeps R t exact enough in a double. */
	const double R = (double)g.rate, B = (double)g.burst, allow = R * EGRESS_JITTER_S;
	double best_start = 0, worst = 0, cum = 0;
	uint64_t total = 0, first = 0, last = 0;
	int have_pair = 0, have_byte = 0;
	for (size_t j = 0; j < m; j++) {
		double t = (double)(all[j].t - all[0].t) / 1e9;
		cum += (double)all[j].bytes;
		total += all[j].bytes;
		if (all[j].bytes) {
			if (!have_byte)
				first = all[j].t;
			last = all[j].t;
			have_byte = 1;
		}
		if (j > 0) {
			double e = cum - R * t + best_start;
			if (!have_pair || e > worst)
				worst = e;
			have_pair = 1;
		}
		if (j == 0 || R * t - cum > best_start)
			best_start = R * t - cum;
	}
	/* Diagnostic only: the rate over the second half of the time, after any initial burst. */
	uint64_t half = first + (last - first) / 2, late = 0;
	for (size_t j = 0; j < m; j++)
		if (all[j].t > half)
			late += all[j].bytes;
	free(all);
	double secs = (double)(last - first) / 1e9, measured = secs > 0 ? (double)total / secs : 0;
	char reason[1024] = "";
	size_t rl = 0;
	/* four short reasons at most: they fit */
#define REASON(...) (rl += (size_t)snprintf(reason + rl, sizeof reason - rl, __VA_ARGS__))
	if (!have_pair || !have_byte || secs <= 0)
		REASON("%sno body bytes received over a measurable time", rl ? "; " : "");
	if (have_pair && worst > B + allow)
		REASON("%sworst window exceeds the rate by %.0f bytes > burst %.0f + allowance %.0f", rl ? "; " : "", worst, B,
		       allow);
	if (secs > 0 && (double)total < EGRESS_PRESS * R * secs)
		REASON("%sreceived %llu bytes < %.0f%% of the cap over %.3f s (clients did not press against the cap)",
		       rl ? "; " : "", (unsigned long long)total, EGRESS_PRESS * 100, secs);
	if (overflow)
		REASON("%smore than %zu reads in one client", rl ? "; " : "", EGRESS_MAX_RECORDS);
#undef REASON
	fprintf(stderr,
		"tool_http: egress: %lu responses complete, %lu cut at %g s, %lu refused (status != 200), %lu failed; "
		"%zu reads; rate over the second half %.0f B/s\n",
		complete, cut, g.seconds, refused, failed, n, secs > 0 ? (double)late / (secs / 2) : 0);
	if (lost_lines > LOST_LINES_MAX)
		fprintf(stderr, "tool_http: ... and %lu more egress problems\n", lost_lines - LOST_LINES_MAX);
	printf("egress: clients %ld bytes %llu seconds %.3f rate_measured %.0f B/s cap %llu B/s burst %llu "
	       "worst_window_excess %.0f allowance %.0f: %s%s%s%s\n",
	       g.clients, (unsigned long long)total, secs, measured, (unsigned long long)g.rate,
	       (unsigned long long)g.burst, have_pair ? worst : 0, allow, rl ? "BAD" : "ok", rl ? " (" : "", reason,
	       rl ? ")" : "");
	return rl ? 1 : 0;
}

/* ---- main ---- */

__attribute__((noreturn)) static void usage(FILE *f, int code)
{
	fprintf(f, "usage: tool_http --connect ADDR [--key K] [--timeout-ms MS] request METHOD PATH [BODY]\n"
		   "       tool_http --connect ADDR --key K load --clients N --seconds S [--model M] [--max-tokens T]\n"
		   "                 [--timeout-ms MS]\n"
		   "       tool_http --connect ADDR --key K egress --clients N --seconds S --rate R --burst B --body JSON\n"
		   "                 [--path P] [--timeout-ms MS]\n"
		   "ADDR is unix:PATH or tcp:HOST:PORT; see the top of tests/tool_http.c for the output formats.\n");
	exit(code);
}

__attribute__((format(printf, 1, 2), noreturn)) static void bad_arg(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tool_http: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr, 2);
}

static long number(const char *flag, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		bad_arg("%s needs an integer in %ld..%ld, not '%s'", flag, lo, hi, s);
	return v;
}

/* No CR, LF, other control bytes or (when no_space) spaces: they would break the request. */
static void plain_arg(const char *what, const char *s, int no_space, int no_quote)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || (no_space && *p == ' ') ||
		    (no_quote && (*p == '"' || *p == '\\')))
			bad_arg("%s contains a byte it cannot carry (control byte%s)", what,
				no_quote ? ", space, quote or backslash" : no_space ? " or space" : "");
	if (!*s)
		bad_arg("%s is empty", what);
}

int main(int argc, char **argv)
{
	enum { F_CLIENTS = 1, F_SECONDS = 2, F_MODEL = 4, F_MAXTOK = 8, F_RATE = 16, F_BURST = 32, F_BODY = 64, F_PATH = 128 };
	unsigned given = 0;
	signal(SIGPIPE, SIG_IGN);
	t_start = now_ns();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			usage(stdout, 0);
		if (strncmp(a, "--", 2)) {
			if (g.n_pos == 4)
				bad_arg("too many arguments (at '%.40s')", a);
			g.pos[g.n_pos++] = a;
			continue;
		}
		if (!v)
			bad_arg("%s: unknown flag or missing value", a);
		i++;
		if (!strcmp(a, "--connect"))
			g.addr = v;
		else if (!strcmp(a, "--key"))
			plain_arg("--key", g.key = v, 1, 0);
		else if (!strcmp(a, "--timeout-ms"))
			g.timeout_ms = number(a, v, 1, 86400000);
		else if (!strcmp(a, "--clients"))
			g.clients = number(a, v, 1, CLIENTS_MAX), given |= F_CLIENTS;
		else if (!strcmp(a, "--max-tokens"))
			g.max_tokens = number(a, v, 1, 1000000), given |= F_MAXTOK;
		else if (!strcmp(a, "--rate"))
			g.rate = (uint64_t)number(a, v, 1, 1000000000), given |= F_RATE;
		else if (!strcmp(a, "--burst"))
			g.burst = (uint64_t)number(a, v, 0, 1000000000), given |= F_BURST;
		else if (!strcmp(a, "--model"))
			plain_arg("--model", g.model = v, 1, 1), given |= F_MODEL;
		else if (!strcmp(a, "--body"))
			g.body = v, given |= F_BODY;
		else if (!strcmp(a, "--path"))
			plain_arg("--path", g.path = v, 1, 0), given |= F_PATH;
		else if (!strcmp(a, "--seconds")) {
			char *end;
			g.seconds = strtod(v, &end);
			if (!*v || *end || !(g.seconds > 0) || g.seconds > 86400)
				bad_arg("--seconds needs a number of seconds in (0, 86400], not '%s'", v);
			given |= F_SECONDS;
		} else
			bad_arg("unknown flag %s", a);
	}
	if (!g.addr)
		bad_arg("--connect ADDR is required");
	if (strlen(g.addr) >= PAL_NET_ADDR_MAX)
		bad_arg("--connect: address longer than %d bytes", PAL_NET_ADDR_MAX - 1);
	if (!strncmp(g.addr, "tcp:", 4))
		snprintf(g.host, sizeof g.host, "%s", g.addr + 4);
	else if (!strncmp(g.addr, "unix:", 5))
		snprintf(g.host, sizeof g.host, "localhost");
	else
		bad_arg("--connect needs unix:PATH or tcp:HOST:PORT, not '%s'", g.addr);
	plain_arg("--connect", g.host, 1, 0);
	if (g.n_pos == 0)
		bad_arg("no mode given (request, load or egress)");
	g.mode = g.pos[0];

	if (!strcmp(g.mode, "request")) {
		if (given)
			bad_arg("request takes only --connect, --key and --timeout-ms");
		if (g.n_pos < 3)
			bad_arg("request needs METHOD PATH [BODY]");
		const char *method = g.pos[1], *path = g.pos[2], *body = g.n_pos > 3 ? g.pos[3] : NULL;
		for (const char *p = method; *p; p++)
			if (!is_tchar((unsigned char)*p))
				bad_arg("METHOD must be an HTTP token, not '%.40s'", method);
		plain_arg("PATH", path, 1, 0);
		size_t len;
		char *req = build_request(method, path, body, &len);
		struct http_resp *r = calloc(1, sizeof *r);
		if (!r)
			die(1, "out of memory");
		resp_init(r, !strcmp(method, "HEAD"), 1);
		if (exchange(req, len, r, 0, NULL) != 1)
			die(1, "%s: %s %s: %s", g.addr, method, path, r->why);
		printf("status %d\n", r->status);
		for (unsigned i = 0; i < r->n_hdr; i++)
			printf("header %s: %s\n", r->hdr[i].name, r->hdr[i].value);
		printf("body\n");
		if (r->body_len)
			fwrite(r->body, 1, r->body_len, stdout);
		free(req);
		free(r->body);
		free(r);
		return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
	}
	if (strcmp(g.mode, "load") && strcmp(g.mode, "egress"))
		bad_arg("unknown mode '%.40s' (request, load or egress)", g.mode);
	if (g.n_pos > 1)
		bad_arg("%s takes no further arguments (at '%.40s')", g.mode, g.pos[1]);
	if (!g.key)
		bad_arg("%s needs --key", g.mode);
	if ((given & (F_CLIENTS | F_SECONDS)) != (F_CLIENTS | F_SECONDS))
		bad_arg("%s needs --clients and --seconds", g.mode);
	if (!strcmp(g.mode, "load")) {
		if (given & (F_RATE | F_BURST | F_BODY | F_PATH))
			bad_arg("load takes no --rate, --burst, --body or --path");
		return run_load();
	}
	if ((given & (F_RATE | F_BURST | F_BODY)) != (F_RATE | F_BURST | F_BODY))
		bad_arg("egress needs --rate, --burst and --body");
	if (given & (F_MODEL | F_MAXTOK))
		bad_arg("egress takes no --model or --max-tokens (they belong in --body)");
	return run_egress();
}
