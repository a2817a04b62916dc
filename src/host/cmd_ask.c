/* cmd_ask.c — `mu ask`: one prompt through `mu proxy`. Sends one generate frame, writes the
 * token text to stdout as it arrives (raw bytes, flushed per frame) and a summary to stderr.
 * Every frame from the proxy is decoded as strictly as the proxy decodes ours. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/limits.h"
#include "host/cli.h"
#include "pal/net.h"
#include "pal/pal.h"
#include "wire/frame.h"
#include "wire/proto.h"

#define ASK_DEFAULT_PROXY "unix:mu-proxy.sock"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu ask -p TEXT [options]\n\n"
		"Sends TEXT to a mu proxy and writes the answer to stdout as it arrives (and a newline\n"
		"at its end, as mu run does); a summary (bytes received, frame headers included, the\n"
		"egress rate, finish reason, token counts) goes to stderr.\n"
		"  -p, --prompt TEXT     the prompt (plain completion input unless --chat)\n"
		"  --proxy ADDR          the proxy's socket: unix:PATH or tcp:HOST:PORT (default %s)\n"
		"  -n N                  tokens to generate at most (default 128)\n"
		"  --temp T              temperature, 0 = greedy (default 0)\n"
		"  --top-p P             nucleus sampling, in (0, 1] (default 1 = off)\n"
		"  --top-k K             keep the K most likely tokens (default 0 = off)\n"
		"  --seed S              sampler seed (default 0)\n"
		"  --chat                TEXT is a user message, rendered with the model's chat template\n"
		"  --system TEXT         a system message before it (implies --chat)\n"
		"  --id ID               the request id: 1..64 of [A-Za-z0-9._:-] (default ask-PID)\n"
		"  --no-stream           ask for the whole answer at once (stream: false)\n"
		"  --timeout-ms MS       give up when the answer is not complete within MS (default 60000)\n\n"
		"Exit status: 0 answered, 1 refused (\"mu ask: refused: CODE: MESSAGE\") or connection\n"
		"trouble, 2 usage.\n",
		ASK_DEFAULT_PROXY);
}

static int parse_num(const char *flag, const char *s, double lo, double hi, int lo_open, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || !*s || *end || !isfinite(v) || v > hi || v < lo || (lo_open && v == lo)) {
		fprintf(stderr, "mu: %s: '%s' is not a number in %c%g, %g]\n", flag, s, lo_open ? '(' : '[', lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

struct ask {
	int fd;
	uint64_t deadline_ms;
	uint32_t timeout_ms;
	uint64_t bytes;
	const char *who; /* "mu ask" or "mu exfil measure": the prefix of every message */
};

static uint64_t now_ms(void) { return pal_now_ns() / 1000000u; }

/* Waits for events on a.fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(const struct ask *a, short ev)
{
	for (;;) {
		uint64_t t = now_ms();
		if (t >= a->deadline_ms)
			return 0;
		struct pollfd p = {.fd = a->fd, .events = ev};
		uint64_t left = a->deadline_ms - t;
		int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n > 0)
			return 1;
	}
}

static int send_all(struct ask *a, const uint8_t *b, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t w = send(a->fd, b + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(a, POLLOUT);
			if (r == 0) {
				fprintf(stderr, "%s: the proxy did not take the request within %u ms\n", a->who, a->timeout_ms);
				return -1;
			}
			if (r < 0)
				return -1;
			continue;
		}
		if (w <= 0) {
			fprintf(stderr, "%s: sending the request: %s\n", a->who, w < 0 ? strerror(errno) : "connection closed");
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

/* Reads the next frame body; 1 with a body, 0 when the answer timed out, -1 on trouble. */
static int read_frame(struct ask *a, struct mu_frame_rd *rd)
{
	for (;;) {
		uint8_t *dst;
		size_t want;
		if (mu_frame_rd_space(rd, &dst, &want) == MU_FRAME_DONE)
			return 1;
		ssize_t n = recv(a->fd, dst, want, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(a, POLLIN);
			if (r <= 0)
				return r;
			continue;
		}
		if (n < 0) {
			fprintf(stderr, "%s: reading from the proxy: %s\n", a->who, strerror(errno));
			return -1;
		}
		if (n == 0) {
			fprintf(stderr, "%s: the proxy closed the connection before the answer was complete\n", a->who);
			return -1;
		}
		a->bytes += (uint64_t)n;
		struct mu_error err = {0};
		enum mu_frame_state st;
		if (mu_frame_rd_commit(rd, (size_t)n, &st, &err) != MU_OK) {
			fprintf(stderr, "%s: the proxy sent a bad frame: %s\n", a->who, err.msg);
			return -1;
		}
		if (st == MU_FRAME_DONE)
			return 1;
	}
}

int ask_exchange(const char *who, const char *addr, const uint8_t *frame, size_t frame_len, const char *id,
		 uint32_t timeout_ms, FILE *out, struct ask_result *res)
{
	struct ask a = {.fd = -1, .timeout_ms = timeout_ms, .who = who};
	struct mu_msg *m = calloc(1, sizeof *m);
	uint8_t *body = malloc(MU_WIRE_MAX_FRAME);
	size_t scratch_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
	void *scratch = malloc(scratch_len);
	int code = 1;
	memset(res, 0, sizeof *res);
	if (!m || !body || !scratch) {
		fprintf(stderr, "%s: out of memory\n", who);
		goto out;
	}
	struct mu_error err = {0};
	uint64_t t0 = now_ms();
	a.deadline_ms = t0 + timeout_ms;
	if (pal_connect(addr, timeout_ms < 10000 ? timeout_ms : 10000, PAL_NET_NONBLOCK, &a.fd, &err) != MU_OK) {
		fprintf(stderr, "%s: cannot reach the proxy: %s\n", who, err.msg);
		goto out;
	}
	if (send_all(&a, frame, frame_len) != 0)
		goto out;
	if (!out) { /* counting: the window starts with the request sent */
		t0 = now_ms();
		a.deadline_ms = t0 + timeout_ms;
	}

	struct mu_frame_rd rd;
	mu_frame_rd_init(&rd, body, MU_WIRE_MAX_FRAME);
	for (;;) {
		int r = read_frame(&a, &rd);
		res->bytes = a.bytes;
		res->seconds = (double)(now_ms() - t0) / 1000.0;
		if (r == 0 && !out) { /* counting: the window is over */
			code = 0;
			goto out;
		}
		if (r == 0) {
			fprintf(stderr, "%s: no complete answer within %u ms\n", who, timeout_ms);
			goto out;
		}
		if (r < 0)
			goto out;
		enum mu_wire_code c = mu_msg_decode(m, body, mu_frame_rd_len(&rd), scratch, scratch_len, &err);
		mu_frame_rd_next(&rd);
		if (c != MU_WIRE_OK) {
			fprintf(stderr, "%s: the proxy sent a frame that does not decode (%s: %s)\n", who,
				mu_wire_code_name(c), err.msg);
			goto out;
		}
		if (m->type == MU_MSG_ERROR) {
			fprintf(stderr, "%s: refused: %s: %s\n", who, m->error.code_name, m->error.message);
			goto out;
		}
		if ((m->type == MU_MSG_TOKEN || m->type == MU_MSG_DONE) && strcmp(m->id, id) != 0) {
			fprintf(stderr, "%s: the proxy answered another request id\n", who);
			goto out;
		}
		if (m->type == MU_MSG_TOKEN) {
			if (out && m->token.text.n && fwrite(m->token.text.p, 1, m->token.text.n, out) != m->token.text.n) {
				fprintf(stderr, "%s: writing the answer: %s\n", who, strerror(errno));
				goto out;
			}
			if (out)
				fflush(out);
			continue;
		}
		if (m->type == MU_MSG_DONE) {
			if (out) {
				putc('\n', out); /* as mu run ends its output */
				fflush(out);
			}
			res->ended = 1;
			res->finish = m->done.finish;
			res->prompt_tokens = m->done.prompt_tokens;
			res->completion_tokens = m->done.completion_tokens;
			code = 0;
			goto out;
		}
		fprintf(stderr, "%s: the proxy sent an unexpected %s message\n", who, mu_msg_type_name(m->type));
		goto out;
	}
out:
	if (a.fd >= 0)
		close(a.fd);
	free(m);
	free(body);
	free(scratch);
	return code;
}

int cmd_ask(int argc, char **argv)
{
	const char *prompt = NULL, *system = NULL, *addr = ASK_DEFAULT_PROXY, *id = NULL, *val;
	uint32_t n_gen = 128, top_k = 0, timeout_ms = 60000;
	double temp = 0, top_p = 1;
	uint64_t seed = 0;
	int chat = 0, stream = 1;
	char idbuf[32];

	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--chat")) {
			chat = 1;
			continue;
		}
		if (!strcmp(argv[i], "--no-stream")) {
			stream = 0;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "-p", "--prompt", &prompt)) ||
		    (r = cli_opt(argc, argv, &i, "--proxy", NULL, &addr)) ||
		    (r = cli_opt(argc, argv, &i, "--system", NULL, &system)) ||
		    (r = cli_opt(argc, argv, &i, "--id", NULL, &id))) {
			if (r < 0)
				goto usage_err;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "-n", "--n-predict", &val))) {
			if (r < 0 || cli_u32("-n", val, 1, MU_WIRE_MAX_GEN_TOKENS, &n_gen))
				goto usage_err;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--top-k", NULL, &val))) {
			if (r < 0 || cli_u32("--top-k", val, 0, MU_MAX_VOCAB, &top_k))
				goto usage_err;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--timeout-ms", NULL, &val))) {
			if (r < 0 || cli_u32("--timeout-ms", val, 1, 86400000, &timeout_ms))
				goto usage_err;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--seed", NULL, &val))) {
			if (r < 0 || cli_u64("--seed", val, &seed))
				goto usage_err;
			if (seed > MU_WIRE_SEED_MAX) {
				fprintf(stderr, "mu ask: --seed: at most 2^53 - 1\n");
				goto usage_err;
			}
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--temp", NULL, &val))) {
			if (r < 0 || parse_num("--temp", val, 0, 100, 0, &temp))
				goto usage_err;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--top-p", NULL, &val))) {
			if (r < 0 || parse_num("--top-p", val, 0, 1, 1, &top_p))
				goto usage_err;
			continue;
		}
		fprintf(stderr, "mu ask: unexpected argument '%s'\n", argv[i]);
		goto usage_err;
	}
	if (!prompt) {
		fprintf(stderr, "mu ask: -p TEXT is required\n");
		goto usage_err;
	}
	if (!id) {
		snprintf(idbuf, sizeof idbuf, "ask-%ld", (long)getpid());
		id = idbuf;
	}
	if (!mu_wire_id_ok(id, strlen(id))) {
		fprintf(stderr, "mu ask: --id: 1..64 characters of A-Z a-z 0-9 . _ : -\n");
		goto usage_err;
	}
	if (system)
		chat = 1;

	/* the request */
	struct mu_msg *m = calloc(1, sizeof *m);
	uint8_t *frame = malloc(MU_FRAME_HDR + MU_WIRE_MAX_FRAME + 1);
	int code = 1;
	if (!m || !frame) {
		fprintf(stderr, "mu ask: out of memory\n");
		goto out;
	}
	m->type = MU_MSG_GENERATE;
	snprintf(m->id, sizeof m->id, "%s", id);
	m->has_id = 1;
	if (chat) {
		uint32_t k = 0;
		if (system) {
			m->generate.role[k] = MU_WIRE_ROLE_SYSTEM;
			m->generate.content[k++] = (struct mu_wire_text){system, strlen(system)};
		}
		m->generate.role[k] = MU_WIRE_ROLE_USER;
		m->generate.content[k++] = (struct mu_wire_text){prompt, strlen(prompt)};
		m->generate.n_messages = k;
	} else {
		m->generate.has_prompt = 1;
		m->generate.prompt = (struct mu_wire_text){prompt, strlen(prompt)};
	}
	m->generate.max_tokens = n_gen;
	m->generate.temperature = temp;
	m->generate.top_p = top_p;
	m->generate.top_k = top_k;
	m->generate.seed = seed;
	m->generate.stream = stream;
	size_t n = mu_msg_generate((char *)frame + MU_FRAME_HDR, MU_WIRE_MAX_FRAME, m);
	if (n == 0 || mu_frame_header(frame, n, MU_WIRE_MAX_FRAME, NULL) != MU_OK) {
		fprintf(stderr, "mu ask: the request cannot be encoded (text that is not UTF-8 or contains NUL, or "
				"larger than one frame)\n");
		goto out;
	}

	struct ask_result res;
	if (ask_exchange("mu ask", addr, frame, MU_FRAME_HDR + n, id, timeout_ms, stdout, &res) == 0) {
		fprintf(stderr,
			"mu ask: %llu bytes in %.2f s (%.0f bytes/s egress), finish_reason %s, %lld prompt + %lld "
			"completion tokens\n",
			(unsigned long long)res.bytes, res.seconds, res.seconds > 0 ? (double)res.bytes / res.seconds : 0.0,
			mu_finish_name((enum mu_finish)res.finish), res.prompt_tokens, res.completion_tokens);
		code = 0;
	}
out:
	free(m);
	free(frame);
	return code;
usage_err:
	usage(stderr);
	return 2;
}
