/* cmd_exfil.c — `mu exfil`: how long stealing a model through the egress channel takes.
 *
 * The only way out of the enclave is the proxy's egress stream, capped at C bytes/s. A thief
 * who controls the enclave's output can at best fill that stream with weight bytes, so moving
 * a model of S bytes takes at least S / C seconds. The stream carries tokens, so with a
 * generation rate of T tokens/s and at most B bits of information per token (log2 of the
 * vocabulary) it also carries at most T * B / 8 bytes/s; the smaller of the two bounds the
 * theft. This prints that time for model sizes and caps, as a table, JSON, or an SVG plot of
 * time against model size with one line per cap. Units are decimal (1 KB = 1000 bytes), as
 * model sizes and the founding documents' figures are quoted.
 *
 * `mu exfil measure` is the measured counterpart: it asks a running proxy for as much output as
 * it will give (by default the prompt "@flood", on which the test enclave build writes token
 * frames as fast as it can) and counts every byte that arrives for a set time, then sets the
 * observed rate against the cap and turns it into days per model.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* isfinite, INFINITY: macros; the functions come from base/mathx.h */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/limits.h"
#include "base/mathx.h"
#include "host/cli.h"
#include "wire/frame.h"
#include "wire/proto.h"

#define MAX_SIZES 16
#define MAX_CAPS 8

struct model_size {
	double bytes;
	const char *label; /* NULL: only the size is printed */
};

/* The founding documents' examples (a 5 KB/s cap: about 14 days, 324 days, 2.2 years). */
static const struct model_size default_sizes[] = {
	{6e9, "Llama-3.2-3B-Instruct (BF16)"},
	{140e9, "LLaMA-70B (FP16)"},
	{350e9, "GPT-3 175B (FP16)"},
};
static const double default_caps[] = {1000, 2000, 3000, 4000, 5000};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu exfil [--size BYTES]... [--cap BYTES/S]... [--tps T --bits-per-token B]\n"
		"                [--plot OUT.svg] [--json]\n\n"
		"The least time a thief needs to move a model of BYTES out through an egress cap of\n"
		"BYTES/S: size / rate, where rate is the cap, or tokens/s x bits per token / 8 when that\n"
		"is lower (each generated token carries at most log2(vocabulary) bits).\n"
		"  --size BYTES          a model size, with an optional K, M, G or T (powers of 1000) and\n"
		"                        B, e.g. 6G or 140GB, 1 B to 1e18 B; repeat for more (at most %d;\n"
		"                        default: the founding documents' 6 GB, 140 GB and 350 GB models)\n"
		"  --cap BYTES/S         an egress cap, same suffixes, 0.001 to 1e15; repeat for more (at\n"
		"                        most %d; default 1K 2K 3K 4K 5K)\n"
		"  --tps T               tokens generated per second\n"
		"  --bits-per-token B    information per token in bits, e.g. 17 for a 128K vocabulary\n"
		"                        (--tps and --bits-per-token go together)\n"
		"  --plot OUT.svg        also write an SVG plot: time against model size, a line per cap\n"
		"  --json                print one JSON object instead of the table\n"
		"\n"
		"usage: mu exfil measure --proxy ADDR --cap BYTES/S [--burst BYTES] [--seconds S]\n"
		"                        [-n MAX_TOKENS] [--prompt TEXT] [--size BYTES]... [--json]\n\n"
		"The measured counterpart: asks the proxy at ADDR (unix:PATH or tcp:HOST:PORT) for as much\n"
		"output as it gives, for S seconds (default 30), counting every byte received (frame\n"
		"headers included), and sets the observed rate against the cap the proxy was given:\n"
		"within the cap when bytes <= cap x seconds + burst (default burst 0). Then the days a\n"
		"model of each --size takes at the observed rate. S is 1..86400; -n is the request's\n"
		"max_tokens (default 256, an enclave's default limit; at most the enclave's own). The\n"
		"default prompt, \"@flood\", makes the test build of the enclave (tests only) write token\n"
		"frames as fast as it can. Counting starts once the request is sent.\n"
		"Exit status: 0 within the cap, 1 over it, nothing received, or trouble, 2 usage.\n",
		MAX_SIZES, MAX_CAPS);
}

/* The ranges every figure must lie in: beyond them a time overflows or means nothing. */
#define SIZE_MIN 1.0   /* bytes */
#define SIZE_MAX_ 1e18
#define CAP_MIN 1e-3   /* bytes/s */
#define CAP_MAX 1e15

/* "6G", "140GB", "5000", "1.5K", "2.5e3" -> bytes (decimal multiples): digits, an optional
 * fraction and exponent, then an optional K, M, G or T and an optional B; nothing else (no
 * sign, space or hex). -1 when malformed or outside [lo, hi]. */
static double parse_bytes(const char *s, double lo, double hi)
{
	const char *p = s;
	while ((*p >= '0' && *p <= '9') || *p == '.')
		p++;
	if (p == s)
		return -1;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	char num[64];
	if ((size_t)(p - s) >= sizeof num)
		return -1;
	memcpy(num, s, (size_t)(p - s));
	num[p - s] = 0;
	char *end;
	errno = 0;
	double v = strtod(num, &end);
	if (errno || *end)
		return -1;
	const char *units = "KMGT", *u = *p ? strchr(units, *p) : NULL;
	if (*p && u) {
		for (const char *k = units; k <= u; k++)
			v *= 1000.0;
		p++;
	}
	if (*p == 'B')
		p++;
	return *p || !isfinite(v) || v < lo || v > hi ? -1 : v;
}

/* A plain decimal number in [lo, hi]; reports a bad one (prefixed with who) and returns -1. */
static int parse_number(const char *who, const char *flag, const char *s, double lo, double hi, double *out)
{
	double v = parse_bytes(s, lo, hi);
	const char *p = s;
	while (*p && *p != 'K' && *p != 'M' && *p != 'G' && *p != 'T' && *p != 'B')
		p++;
	if (v < 0 || *p) { /* no unit suffixes on a plain number */
		fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", who, flag, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static const char *human_bytes(double b, char buf[static 32])
{
	static const char *units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
	int u = 0;
	while (b >= 999.95 && u < 5) /* what %.4g would print as 1000 goes up a unit */
		b /= 1000, u++;
	snprintf(buf, 32, "%.4g %s", b, units[u]);
	return buf;
}

static const char *human_time(double s, char buf[static 48])
{
	double d = s / 86400.0;
	if (s < 60)
		snprintf(buf, 48, "%.1f s", s);
	else if (s < 3600)
		snprintf(buf, 48, "%.1f minutes", s / 60.0);
	else if (d < 1)
		snprintf(buf, 48, "%.1f hours", s / 3600.0);
	else if (d < 365.25)
		snprintf(buf, 48, "%.1f days", d);
	else
		snprintf(buf, 48, "%.1f days (%.2f years)", d, d / 365.25);
	return buf;
}

/* mu links no libm: the few functions the plot needs, on base/mathx.h */
static double log10_(double x) { return mu_log(x) / mu_log(10.0); }
static double exp10_(double e)
{
	if (e != (double)(long long)e || e < -300 || e > 300)
		return mu_pow(10.0, e);
	double v = 1; /* whole exponents exactly (up to 1e22), so the axis labels read 1 GB, not 999.9 MB */
	for (long long k = 0; k < (long long)(e < 0 ? -e : e); k++)
		v *= 10;
	return e < 0 ? 1 / v : v;
}
static double min_(double a, double b) { return a < b ? a : b; }
static double max_(double a, double b) { return a > b ? a : b; }
/* Whole decades around a log10 value; the slack absorbs rounding in log10_ of a power of 10. */
static double decade_floor(double v)
{
	double t = (double)(long long)(v + 1e-9);
	return t > v + 1e-9 ? t - 1 : t;
}
static double decade_ceil(double v) { return -decade_floor(-v); }

/* ---- the plot ----------------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

#define W 860
#define H 520
#define ML 140 /* margins: left, right, top, bottom */
#define MR 220
#define MT 50
#define MB 60

static const char *const colors[MAX_CAPS] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
					     "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"};

/* A decade scale: [lo, hi] in log10 units onto [a, b] pixels. */
static double to_px(double v, double lo, double hi, double a, double b)
{
	return a + (log10_(v) - lo) / (hi - lo) * (b - a);
}

static void decade_label(double e, int is_time, char out[static 48])
{
	if (is_time) {
		double d = exp10_(e);
		if (d < 1)
			snprintf(out, 48, "%.3g days", d);
		else if (d < 1000)
			snprintf(out, 48, "%.0f day%s", d, d == 1 ? "" : "s");
		else
			snprintf(out, 48, "%.0f days (%.3g y)", d, d / 365.25);
	} else {
		char b[32];
		snprintf(out, 48, "%s", human_bytes(exp10_(e), b));
	}
}

static void plot(struct buf *b, const struct model_size *sizes, size_t ns, const double *caps, size_t nc,
		 double token_bps)
{
	/* x: whole decades around the sizes; y: whole decades around every time drawn */
	double smin = sizes[0].bytes, smax = sizes[0].bytes;
	for (size_t i = 1; i < ns; i++) {
		smin = min_(smin, sizes[i].bytes);
		smax = max_(smax, sizes[i].bytes);
	}
	double x0 = decade_floor(log10_(smin)), x1 = decade_ceil(log10_(smax));
	if (x1 - x0 < 2)
		x1 = x0 + 2;
	double rmin = INFINITY, rmax = 0;
	for (size_t c = 0; c < nc; c++) {
		double r = token_bps > 0 ? min_(caps[c], token_bps) : caps[c];
		rmin = min_(rmin, r);
		rmax = max_(rmax, r);
	}
	double y0 = decade_floor(log10_(exp10_(x0) / rmax / 86400)), y1 = decade_ceil(log10_(exp10_(x1) / rmin / 86400));
	const double pl = ML, pr = W - MR, pt = MT, pb = H - MB;

	put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	put(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	       "font-family=\"sans-serif\" font-size=\"12\">\n",
	    W, H, W, H);
	put(b, "<title>Time to exfiltrate a model through the egress cap</title>\n");
	put(b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
	put(b, "<text x=\"%d\" y=\"28\" font-size=\"16\">Least time to move a model out through the egress cap%s</text>\n",
	    ML, token_bps > 0 ? " (and the token bound)" : "");
	/* grid and ticks */
	/* e steps through whole decades, small integers that a double holds exactly
	 * NOLINTNEXTLINE(cert-flp30-c,clang-analyzer-security.FloatLoopCounter) */
	for (double e = x0; e <= x1; e++) {
		double x = to_px(exp10_(e), x0, x1, pl, pr);
		char l[48];
		decade_label(e, 0, l);
		put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, pt, x, pb);
		put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, pb + 18, l);
	}
	/* NOLINTNEXTLINE(cert-flp30-c,clang-analyzer-security.FloatLoopCounter): as above */
	for (double e = y0; e <= y1; e++) {
		double y = to_px(exp10_(e), y0, y1, pb, pt);
		char l[48];
		decade_label(e, 1, l);
		put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", pl, y, pr, y);
		put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", pl - 6, y + 4, l);
	}
	put(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", pl, pt,
	    pr - pl, pb - pt);
	put(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">model size (log scale)</text>\n", (pl + pr) / 2, H - 18);
	put(b, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">time (log scale)</text>\n",
	    (pt + pb) / 2);
	/* one line per cap, with a point and a label at each size */
	for (size_t c = 0; c < nc; c++) {
		double r = token_bps > 0 ? min_(caps[c], token_bps) : caps[c];
		char cb[32];
		put(b, "<g class=\"cap\" data-cap-bytes-per-s=\"%.17g\">\n", caps[c]);
		put(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[c]);
		for (int k = 0; k <= 40; k++) {
			double s = exp10_(x0 + (x1 - x0) * k / 40.0);
			put(b, "%s%.1f,%.1f", k ? " " : "", to_px(s, x0, x1, pl, pr), to_px(s / r / 86400, y0, y1, pb, pt));
		}
		put(b, "\"/>\n");
		for (size_t i = 0; i < ns; i++) {
			double t = sizes[i].bytes / r;
			char tb[48];
			put(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s at %s/s: %s</title></circle>\n",
			    to_px(sizes[i].bytes, x0, x1, pl, pr), to_px(t / 86400, y0, y1, pb, pt), colors[c],
			    human_bytes(sizes[i].bytes, (char[32]){0}), human_bytes(caps[c], cb), human_time(t, tb));
		}
		put(b, "</g>\n");
		double ly = pt + 10 + 20.0 * (double)c;
		put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", pr + 16,
		    ly, pr + 40, ly, colors[c]);
		put(b, "<text x=\"%.1f\" y=\"%.1f\">cap %s/s%s</text>\n", pr + 46, ly + 4, human_bytes(caps[c], cb),
		    token_bps > 0 && token_bps < caps[c] ? " (token bound)" : "");
	}
	/* the named sizes */
	for (size_t i = 0; i < ns; i++)
		if (sizes[i].label)
			put(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n",
			    to_px(sizes[i].bytes, x0, x1, pl, pr), pb - 6 - 12.0 * (double)(i % 3), sizes[i].label);
	put(b, "</svg>\n");
}

/* ---- measure ------------------------------------------------------------------------------ */

static int cmd_measure(int argc, char **argv)
{
	const char *addr = NULL, *prompt = "@flood", *val;
	double cap = 0, burst = 0, seconds = 30;
	uint32_t max_tokens = 256; /* the enclave's default limit (enclave config max_tokens) */
	double sizes[MAX_SIZES];
	size_t ns = 0;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--json")) {
			json = 1;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--proxy", NULL, &addr)) ||
		    (r = cli_opt(argc, argv, &i, "--prompt", NULL, &prompt))) {
			if (r < 0)
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--seconds", NULL, &val))) {
			if (r < 0 || parse_number("mu exfil measure", "--seconds", val, 1, 86400, &seconds))
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "-n", "--max-tokens", &val))) {
			if (r < 0 || cli_u32("-n", val, 1, MU_WIRE_MAX_GEN_TOKENS, &max_tokens))
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--cap", NULL, &val)) || (r = cli_opt(argc, argv, &i, "--burst", NULL, &val)) ||
		    (r = cli_opt(argc, argv, &i, "--size", NULL, &val))) {
			const char *flag = argv[i - 1];
			int is_cap = !strcmp(flag, "--cap"), is_burst = !strcmp(flag, "--burst");
			double lo = is_cap ? CAP_MIN : is_burst ? 0 : SIZE_MIN, hi = is_cap ? CAP_MAX : SIZE_MAX_;
			double v = r < 0 ? -1 : parse_bytes(val, lo, hi);
			if (v < 0) {
				if (r > 0)
					fprintf(stderr, "mu exfil measure: %s: '%s' is not an amount such as 5K or 6G in [%g, %g]\n",
						flag, val, lo, hi);
				return 2;
			}
			if (!strcmp(flag, "--cap"))
				cap = v;
			else if (!strcmp(flag, "--burst"))
				burst = v;
			else if (ns < MAX_SIZES)
				sizes[ns++] = v;
			else {
				fprintf(stderr, "mu exfil measure: --size: too many sizes\n");
				return 2;
			}
			continue;
		}
		fprintf(stderr, "mu exfil measure: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (!addr || cap <= 0) {
		fprintf(stderr, "mu exfil measure: --proxy and --cap are required\n");
		return 2;
	}
	if (ns == 0)
		for (size_t i = 0; i < sizeof default_sizes / sizeof default_sizes[0]; i++)
			sizes[ns++] = default_sizes[i].bytes;

	/* the request: as much output as one generate may ask for */
	struct mu_msg *m = calloc(1, sizeof *m);
	uint8_t *frame = malloc(MU_FRAME_HDR + MU_WIRE_MAX_FRAME + 1);
	int code = 1;
	if (!m || !frame) {
		fprintf(stderr, "mu exfil measure: out of memory\n");
		goto out;
	}
	m->type = MU_MSG_GENERATE;
	snprintf(m->id, sizeof m->id, "exfil-%ld", (long)getpid());
	m->has_id = 1;
	m->generate.has_prompt = 1;
	m->generate.prompt = (struct mu_wire_text){prompt, strlen(prompt)};
	m->generate.max_tokens = max_tokens;
	m->generate.temperature = 0;
	m->generate.top_p = 1;
	m->generate.stream = 1;
	size_t n = mu_msg_generate((char *)frame + MU_FRAME_HDR, MU_WIRE_MAX_FRAME, m);
	if (n == 0 || mu_frame_header(frame, n, MU_WIRE_MAX_FRAME, NULL) != MU_OK) {
		fprintf(stderr, "mu exfil measure: the prompt cannot be encoded (not UTF-8, a NUL, or too long)\n");
		goto out;
	}
	struct ask_result res;
	fprintf(stderr, "mu exfil measure: counting what %s sends for %.1f s\n", addr, seconds);
	if (ask_exchange("mu exfil measure", addr, frame, MU_FRAME_HDR + n, m->id, (uint32_t)(seconds * 1000.0 + 0.5),
			 NULL, &res) != 0)
		goto out;
	if (res.bytes == 0) {
		fprintf(stderr, "mu exfil measure: nothing arrived in %.1f s: no measurement\n", res.seconds);
		goto out;
	}
	double rate = res.seconds > 0 ? (double)res.bytes / res.seconds : 0;
	double allowed = cap * res.seconds + burst;
	int within = (double)res.bytes <= allowed;
	if (json) {
		printf("{\"bytes\":%llu,\"seconds\":%.6f,\"observed_bytes_per_s\":%.6f,\"cap_bytes_per_s\":%.17g,"
		       "\"burst_bytes\":%.17g,\"allowed_bytes\":%.6f,\"within_cap\":%s,\"answer_ended\":%s,\"sizes\":[",
		       (unsigned long long)res.bytes, res.seconds, rate, cap, burst, allowed, within ? "true" : "false",
		       res.ended ? "true" : "false");
		for (size_t i = 0; i < ns; i++)
			printf("%s{\"bytes\":%.17g,\"days_at_observed\":%.17g,\"days_at_cap\":%.17g}", i ? "," : "",
			       sizes[i], rate > 0 ? sizes[i] / rate / 86400 : -1.0, sizes[i] / cap / 86400);
		printf("]}\n");
	} else {
		char cb[32], t1[48], t2[48], sb[32];
		printf("observed %llu bytes in %.2f s: %.1f bytes/s against a cap of %s/s (+ %.0f burst): %s%s\n",
		       (unsigned long long)res.bytes, res.seconds, rate, human_bytes(cap, cb), burst,
		       within ? "within the cap" : "OVER THE CAP", res.ended ? " (the answer ended early)" : "");
		for (size_t i = 0; i < ns; i++)
			printf("  %10s: %s at the observed rate (%s at the cap)\n", human_bytes(sizes[i], sb),
			       rate > 0 ? human_time(sizes[i] / rate, t1) : "never", human_time(sizes[i] / cap, t2));
	}
	code = within ? 0 : 1;
out:
	free(m);
	free(frame);
	return code;
}

/* ---- the command -------------------------------------------------------------------------- */

int cmd_exfil(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "measure"))
		return cmd_measure(argc - 1, argv + 1);
	struct model_size sizes[MAX_SIZES];
	double caps[MAX_CAPS], tps = 0, bits = 0;
	size_t ns = 0, nc = 0;
	const char *plot_path = NULL, *val;
	int json = 0;

	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--json")) {
			json = 1;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--plot", NULL, &plot_path))) {
			if (r < 0)
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--size", NULL, &val))) {
			double v = r < 0 ? -1 : parse_bytes(val, SIZE_MIN, SIZE_MAX_);
			if (v < 0 || ns == MAX_SIZES) {
				if (r > 0)
					fprintf(stderr, "mu exfil: --size: %s\n",
						v < 0 ? "not a size such as 6G or 140GB in [1 B, 1e18 B]" : "too many sizes");
				return 2;
			}
			sizes[ns++] = (struct model_size){v, NULL};
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--cap", NULL, &val))) {
			double v = r < 0 ? -1 : parse_bytes(val, CAP_MIN, CAP_MAX);
			if (v < 0 || nc == MAX_CAPS) {
				if (r > 0)
					fprintf(stderr, "mu exfil: --cap: %s\n",
						v < 0 ? "not a rate such as 5K or 5000 in [0.001, 1e15] bytes/s" : "too many caps");
				return 2;
			}
			caps[nc++] = v;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--tps", NULL, &val))) {
			if (r < 0 || parse_number("mu exfil", "--tps", val, 1e-3, 1e9, &tps))
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--bits-per-token", NULL, &val))) {
			if (r < 0 || parse_number("mu exfil", "--bits-per-token", val, 1e-3, 64, &bits))
				return 2;
			continue;
		}
		fprintf(stderr, "mu exfil: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if ((tps > 0) != (bits > 0)) {
		fprintf(stderr, "mu exfil: --tps and --bits-per-token go together\n");
		return 2;
	}
	if (ns == 0)
		for (size_t i = 0; i < sizeof default_sizes / sizeof default_sizes[0]; i++)
			sizes[ns++] = default_sizes[i];
	if (nc == 0)
		for (size_t i = 0; i < sizeof default_caps / sizeof default_caps[0]; i++)
			caps[nc++] = default_caps[i];
	double token_bps = tps * bits / 8.0;

	if (json && token_bps > 0)
		printf("{\"token_bound_bytes_per_s\":%.17g,\"rows\":[", token_bps);
	else if (json)
		printf("{\"token_bound_bytes_per_s\":null,\"rows\":[");
	else
		printf("%-30s  %10s  %10s  %12s  %s\n", "model", "size", "cap/s", "rate/s", "least time");
	for (size_t i = 0; i < ns; i++)
		for (size_t c = 0; c < nc; c++) {
			double rate = token_bps > 0 ? min_(caps[c], token_bps) : caps[c], s = sizes[i].bytes / rate;
			char b1[32], b2[32], b3[32], t[48];
			if (json)
				printf("%s{\"label\":\"%s\",\"bytes\":%.17g,\"cap_bytes_per_s\":%.17g,\"rate_bytes_per_s\":%.17g,"
				       "\"seconds\":%.17g,\"days\":%.17g,\"years\":%.17g}",
				       i || c ? "," : "", sizes[i].label ? sizes[i].label : "", sizes[i].bytes, caps[c], rate, s,
				       s / 86400, s / 86400 / 365.25);
			else
				printf("%-30s  %10s  %10s  %12s  %s\n", sizes[i].label ? sizes[i].label : "-",
				       human_bytes(sizes[i].bytes, b1), human_bytes(caps[c], b2), human_bytes(rate, b3),
				       human_time(s, t));
		}
	if (json)
		printf("]}\n");
	else if (token_bps > 0)
		printf("token bound: %g tokens/s x %g bits / 8 = %.6g bytes/s\n", tps, bits, token_bps);

	if (!plot_path)
		return 0;
	struct buf b = {0};
	plot(&b, sizes, ns, caps, nc, token_bps);
	struct mu_error err = {0};
	enum mu_err rc = b.oom ? mu_errf(&err, MU_ERR_NOMEM, "out of memory drawing the plot")
			       : outfile_write(plot_path, b.p, b.len, 1, &err);
	free(b.p);
	if (rc) {
		cli_error("exfil", &err);
		return 1;
	}
	if (!json)
		printf("plot: %s\n", plot_path);
	return 0;
}
