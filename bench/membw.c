/* membw.c — the machine's memory read bandwidth, the bound on generation speed.
 *
 * Generating one token streams every weight once, so tokens/s can never exceed
 * read bandwidth / weight bytes per token. This measures that bandwidth the way a matrix-vector
 * kernel reads: a buffer (default 1 GiB, far larger than any cache) is first touched (written
 * once, so its pages exist), then streamed front to back with the widest loads the CPU has
 * (AVX-512 or AVX2, chosen at run time; the functions carry target attributes, as the engine's
 * kernel paths do, so the program runs on any x86-64) on T threads, each reading its own
 * contiguous share. One pass reads the whole buffer; its rate is buffer bytes / the time from
 * the first thread's start to the last thread's end (they start together at a barrier). Best
 * and median of the passes are reported, in GB/s (10^9 bytes per second).
 *
 *   membw [--size N[K|M|G]] [-t LIST] [--passes N] [--isa auto|avx512|avx2|scalar]
 *         [--pages 2m|4k] [--json]
 *
 * --pages 2m (the default) asks for transparent huge pages (madvise MADV_HUGEPAGE on a 2 MiB
 * aligned buffer), 4k forbids them (MADV_NOHUGEPAGE); on this kind of machine one core reads
 * noticeably faster with 2 MiB pages. -t takes a comma-separated list of thread counts
 * (default 1,2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define TARGET_AVX2 __attribute__((target("avx2")))
#define TARGET_AVX512 __attribute__((target("avx2,avx512f")))

#define MAX_THREADS 64
#define MAX_PASSES 100
#define HUGE_PAGE (2u << 20)

/* Each reader returns a value that depends on every byte it read, so no load can be dropped. */
typedef uint64_t (*read_fn)(const uint8_t *p, size_t n);

static uint64_t read_scalar(const uint8_t *p, size_t n)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (size_t i = 0; i + 4 <= n / 8; i += 4) {
		a ^= q[i];
		b ^= q[i + 1];
		c ^= q[i + 2];
		d ^= q[i + 3];
	}
	return a ^ b ^ c ^ d;
}

/* n is a multiple of 256; 8 loads of 32 bytes per step into 4 accumulators. */
TARGET_AVX2 static uint64_t read_avx2(const uint8_t *p, size_t n)
{
	__m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
	for (size_t i = 0; i < n; i += 256) {
		const __m256i *q = (const __m256i *)(const void *)(p + i);
		a = _mm256_xor_si256(a, _mm256_load_si256(q + 0));
		b = _mm256_xor_si256(b, _mm256_load_si256(q + 1));
		c = _mm256_xor_si256(c, _mm256_load_si256(q + 2));
		d = _mm256_xor_si256(d, _mm256_load_si256(q + 3));
		a = _mm256_xor_si256(a, _mm256_load_si256(q + 4));
		b = _mm256_xor_si256(b, _mm256_load_si256(q + 5));
		c = _mm256_xor_si256(c, _mm256_load_si256(q + 6));
		d = _mm256_xor_si256(d, _mm256_load_si256(q + 7));
	}
	a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
	__m128i x = _mm_xor_si128(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
	return (uint64_t)_mm_cvtsi128_si64(x) ^ (uint64_t)_mm_extract_epi64(x, 1);
}

/* n is a multiple of 512; 8 loads of 64 bytes per step into 4 accumulators. */
TARGET_AVX512 static uint64_t read_avx512(const uint8_t *p, size_t n)
{
	__m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
	for (size_t i = 0; i < n; i += 512) {
		const __m512i *q = (const __m512i *)(const void *)(p + i);
		a = _mm512_xor_si512(a, _mm512_load_si512(q + 0));
		b = _mm512_xor_si512(b, _mm512_load_si512(q + 1));
		c = _mm512_xor_si512(c, _mm512_load_si512(q + 2));
		d = _mm512_xor_si512(d, _mm512_load_si512(q + 3));
		a = _mm512_xor_si512(a, _mm512_load_si512(q + 4));
		b = _mm512_xor_si512(b, _mm512_load_si512(q + 5));
		c = _mm512_xor_si512(c, _mm512_load_si512(q + 6));
		d = _mm512_xor_si512(d, _mm512_load_si512(q + 7));
	}
	a = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
	uint64_t lanes[8];
	_mm512_storeu_si512((void *)lanes, a);
	uint64_t r = 0;
	for (int i = 0; i < 8; i++)
		r ^= lanes[i];
	return r;
}

struct isa {
	const char *name;
	read_fn fn;
	int (*available)(void);
};

static int have_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}
static int have_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}
static int have_scalar(void) { return 1; }

/* Best first. */
static const struct isa isas[] = {
	{"avx512", read_avx512, have_avx512},
	{"avx2", read_avx2, have_avx2},
	{"scalar", read_scalar, have_scalar},
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct run {
	const uint8_t *buf;
	size_t share; /* bytes per thread, a multiple of 512 */
	unsigned threads, passes;
	read_fn fn;
	pthread_barrier_t start, end;
	uint64_t t0[MAX_PASSES][MAX_THREADS], t1[MAX_PASSES][MAX_THREADS]; /* each thread's start, end */
	uint64_t sink[MAX_THREADS]; /* what the readers return: their loads cannot be dropped */
};

struct worker {
	struct run *r;
	unsigned id;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	const uint8_t *p = r->buf + (size_t)w->id * r->share;
	for (unsigned pass = 0; pass < r->passes; pass++) {
		pthread_barrier_wait(&r->start);
		r->t0[pass][w->id] = now_ns();
		r->sink[w->id] += r->fn(p, r->share);
		r->t1[pass][w->id] = now_ns();
		pthread_barrier_wait(&r->end);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Streams the buffer `passes` times on `threads` threads; fills best and median GB/s. */
static int measure(struct run *r, double *best, double *median)
{
	pthread_t tid[MAX_THREADS];
	struct worker w[MAX_THREADS];
	double gbps[MAX_PASSES];
	unsigned started = 0;

	if (pthread_barrier_init(&r->start, NULL, r->threads) || pthread_barrier_init(&r->end, NULL, r->threads)) {
		fprintf(stderr, "membw: cannot create barriers\n");
		return -1;
	}
	for (unsigned i = 1; i < r->threads; i++) {
		w[i].r = r;
		w[i].id = i;
		if (pthread_create(&tid[i], NULL, work, &w[i]) != 0) {
			/* The threads already started wait at a barrier that can no longer fill; the
			 * caller exits, which ends them. */
			fprintf(stderr, "membw: cannot start thread %u\n", i);
			return -1;
		}
		started++;
	}
	w[0].r = r;
	w[0].id = 0;
	work(&w[0]);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&r->start);
	pthread_barrier_destroy(&r->end);

	/* A pass lasts from the first thread's start to the last thread's end. */
	for (unsigned p = 0; p < r->passes; p++) {
		uint64_t t0 = r->t0[p][0], t1 = r->t1[p][0];
		for (unsigned i = 1; i < r->threads; i++) {
			t0 = r->t0[p][i] < t0 ? r->t0[p][i] : t0;
			t1 = r->t1[p][i] > t1 ? r->t1[p][i] : t1;
		}
		double s = (double)(t1 - t0) * 1e-9;
		gbps[p] = s > 0 ? (double)r->share * r->threads / s / 1e9 : 0.0;
	}
	qsort(gbps, r->passes, sizeof gbps[0], cmp_double);
	*best = gbps[r->passes - 1];
	*median = r->passes % 2 ? gbps[r->passes / 2] : (gbps[r->passes / 2 - 1] + gbps[r->passes / 2]) / 2.0;
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (errno || *end || v == 0 || v > (1ull << 40) >> shift)
		return -1;
	*out = (size_t)(v << shift);
	return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: membw [--size N[K|M|G]] [-t LIST] [--passes N] [--isa auto|avx512|avx2|scalar]\n"
		   "             [--pages 2m|4k] [--json]\n\n"
		   "Memory read bandwidth: a buffer is touched once, then streamed with the widest loads\n"
		   "the CPU has, on each thread count in LIST; best and median GB/s (10^9 bytes/s) of the\n"
		   "passes are printed.\n"
		   "  --size    buffer size (default 1G; a multiple of 512 bytes per thread is read)\n"
		   "  -t        comma-separated thread counts, 1..%d (default 1,2)\n"
		   "  --passes  passes per thread count, 1..%d (default 10)\n"
		   "  --isa     loads to use (default auto: avx512, else avx2, else 64-bit scalar)\n"
		   "  --pages   2m: transparent huge pages (default); 4k: none\n"
		   "  --json    one JSON object on stdout\n",
		MAX_THREADS, MAX_PASSES);
}

int main(int argc, char **argv)
{
	size_t size = 1u << 30;
	unsigned list[MAX_THREADS], n_list = 0, passes = 10;
	const char *isa_name = "auto", *pages = "2m", *threads_arg = "1,2";
	int json = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--json")) {
			json = 1;
			continue;
		}
		if (i + 1 >= argc || (strcmp(a, "--size") && strcmp(a, "-t") && strcmp(a, "--passes") &&
				      strcmp(a, "--isa") && strcmp(a, "--pages"))) {
			fprintf(stderr, "membw: %s '%s'\n", i + 1 >= argc ? "missing value or unknown option" : "unknown option",
				a);
			usage(stderr);
			return 2;
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--size") && parse_size(v, &size)) {
			fprintf(stderr, "membw: --size: '%s' is not a size such as 64M or 1G\n", v);
			return 2;
		}
		if (!strcmp(a, "--passes") && parse_uint(v, 1, MAX_PASSES, &passes)) {
			fprintf(stderr, "membw: --passes: '%s' is not in 1..%d\n", v, MAX_PASSES);
			return 2;
		}
		if (!strcmp(a, "-t"))
			threads_arg = v;
		if (!strcmp(a, "--isa"))
			isa_name = v;
		if (!strcmp(a, "--pages"))
			pages = v;
	}

	/* -t: thread counts separated by single commas */
	for (const char *p = threads_arg;; p++) {
		char num[16];
		size_t len = strcspn(p, ",");
		if (len == 0 || len >= sizeof num || n_list == MAX_THREADS) {
			fprintf(stderr, "membw: -t: '%s' is not a list of thread counts in 1..%d\n", threads_arg, MAX_THREADS);
			return 2;
		}
		memcpy(num, p, len);
		num[len] = '\0';
		if (parse_uint(num, 1, MAX_THREADS, &list[n_list])) {
			fprintf(stderr, "membw: -t: '%s' is not a list of thread counts in 1..%d\n", threads_arg, MAX_THREADS);
			return 2;
		}
		n_list++;
		p += len;
		if (*p == '\0')
			break;
	}
	if (strcmp(pages, "2m") && strcmp(pages, "4k")) {
		fprintf(stderr, "membw: --pages must be 2m or 4k, not '%s'\n", pages);
		return 2;
	}

	const struct isa *isa = NULL;
	for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
		if (!strcmp(isa_name, "auto") ? isas[k].available() : !strcmp(isa_name, isas[k].name)) {
			isa = &isas[k];
			break;
		}
	}
	if (!isa) {
		fprintf(stderr, "membw: --isa must be auto, avx512, avx2 or scalar, not '%s'\n", isa_name);
		return 2;
	}
	if (!isa->available()) {
		fprintf(stderr, "membw: --isa %s: this CPU lacks it\n", isa->name);
		return 2;
	}

	/* The buffer, 2 MiB aligned so huge pages can back all of it. */
	size_t len = (size + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	uint8_t *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		fprintf(stderr, "membw: cannot allocate %zu bytes: %s\n", len, strerror(errno));
		return 1;
	}
	uint8_t *buf = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	madvise(buf, len, !strcmp(pages, "2m") ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	memset(buf, 0x5a, size); /* first touch: every page exists before the timing */

	static struct run r;
	double best[MAX_THREADS], median[MAX_THREADS];
	for (unsigned k = 0; k < n_list; k++) {
		memset(&r, 0, sizeof r);
		r.buf = buf;
		r.threads = list[k];
		r.passes = passes;
		r.fn = isa->fn;
		r.share = size / r.threads / 512 * 512;
		if (r.share == 0) {
			fprintf(stderr, "membw: --size %zu is too small for %u threads\n", size, r.threads);
			return 2;
		}
		if (measure(&r, &best[k], &median[k]))
			return 1;
	}

	if (json) {
		printf("{\"size_bytes\":%zu,\"isa\":\"%s\",\"pages\":\"%s\",\"passes\":%u,\"results\":[", size, isa->name, pages,
		       passes);
		for (unsigned k = 0; k < n_list; k++)
			printf("%s{\"threads\":%u,\"best_gbps\":%.2f,\"median_gbps\":%.2f}", k ? "," : "", list[k], best[k],
			       median[k]);
		printf("]}\n");
	} else {
		printf("membw: %.0f MiB buffer, %s pages, %s loads, %u passes\n", (double)size / (1024.0 * 1024.0),
		       !strcmp(pages, "2m") ? "2 MiB" : "4 KiB", isa->name, passes);
		for (unsigned k = 0; k < n_list; k++)
			printf("threads %u: best %.2f GB/s, median %.2f GB/s\n", list[k], best[k], median[k]);
	}
	munmap(raw, len + HUGE_PAGE);
	return 0;
}
