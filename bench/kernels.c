/* kernels.c — the speed of each kernel with its weights in cache, apart from memory.
 *
 * Decode streams every weight from memory once per token, so a matvec is either limited by
 * the memory (bench/membw) or by its own instructions. This tells the two apart: it times
 * each kernel path's matvec and matmul on a matrix small enough to stay in the core's caches
 * (default 256 rows of 2048: 0.3 to 1 MiB in the quantized and 16-bit types, 2 MiB in F32),
 * best of many runs. A matvec that reads its cached weights slower than membw reads memory cannot reach
 * the bandwidth bound whatever the memory does: it is compute-bound.
 *
 *   kernels [--path LIST] [--type LIST] [-n N] [--rows R] [--nt T] [--json]
 *
 * For each available path (ref, avx2, avx512) and weight type it prints the matvec time per
 * row and the weight bytes it reads per second, and the matmul time per (row, activation)
 * pair for T activations (prefill's shape); where the path packs the type at load (kernels.h)
 * and n is a multiple of 512, the packed layout gets a second line. Weights are random rows in each type made by the
 * reference quantizer; activations are prepared once, outside the timing, as the engine does
 * once per batch.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/dtype.h"
#include "engine/kernels.h"

#define MV_RUNS 400
#define MM_RUNS 40

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kernels [--path LIST] [--type LIST] [-n N] [--rows R] [--nt T] [--json]\n\n"
		   "  --path LIST  kernel paths, comma-separated (default: every one this CPU has)\n"
		   "  --type LIST  weight types (default f32,f16,bf16,q8_0,q4_0,q4_K,q5_K,q6_K)\n"
		   "  -n N         row length (default 2048; a multiple of 256 suits every type)\n"
		   "  --rows R     rows (default 256: the weights stay in cache)\n"
		   "  --nt T       activations of the matmul (default 32, the prefill batch)\n"
		   "  --json       one JSON object per line instead of the table\n");
}

static int parse_size(const char *flag, const char *s, size_t lo, size_t hi, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || v < lo || v > hi) {
		fprintf(stderr, "kernels: %s: '%s' is not a number in [%zu, %zu]\n", flag, s, lo, hi);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "kernels: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* xorshift64: reproducible inputs */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float rnd(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)(rng >> 40) / (float)(1u << 24) - 0.5f;
}

/* Times one path and type, in the GGUF layout or packed (kernels.h: mu_kernel_path.packed);
 * returns 0, or 1 when the type cannot be measured. */
static int measure(const struct mu_kernel_path *kp, enum mu_dtype t, int packed, size_t n, size_t rows, size_t nt,
		   int json)
{
	const struct mu_type_kernels *ref = mu_kernels_ref(t), *k = packed ? kp->packed(t) : kp->type(t);
	const struct mu_dtype_info *info = mu_dtype_get(t);
	if (!ref || !k || !ref->quantize_row) {
		fprintf(stderr, "kernels: %s has no %s kernels to measure\n", kp->name, info->name);
		return 1;
	}
	size_t rb = mu_dtype_row_size(t, n), as = mu_act_size(k->act, n);
	uint8_t *w = xmalloc(rows * rb), *x = xmalloc(nt * as);
	float *row = xmalloc(n * sizeof(float)), *out = xmalloc(rows * nt * sizeof(float));
	for (size_t r = 0; r < rows; r++) {
		for (size_t i = 0; i < n; i++)
			row[i] = rnd();
		ref->quantize_row(row, w + r * rb, n);
	}
	if (packed)
		k->pack_rows(w, rb, n, rows);
	for (size_t a = 0; a < nt; a++) {
		for (size_t i = 0; i < n; i++)
			row[i] = rnd();
		kp->act_prepare(k->act, row, x + a * as, n);
	}
	uint64_t mv = UINT64_MAX, mm = UINT64_MAX;
	for (int i = 0; i < MV_RUNS; i++) {
		uint64_t t0 = now_ns();
		k->matvec(w, rb, x, n, out, 0, rows);
		uint64_t d = now_ns() - t0;
		mv = d < mv ? d : mv;
	}
	for (int i = 0; i < MM_RUNS; i++) {
		uint64_t t0 = now_ns();
		k->matmul(w, rb, x, as, n, out, rows, nt, 0, rows);
		uint64_t d = now_ns() - t0;
		mm = d < mm ? d : mm;
	}
	double mv_row = (double)mv / (double)rows, mm_pair = (double)mm / (double)(rows * nt);
	double gbps = (double)(rows * rb) / (double)mv;
	if (json)
		printf("{\"path\":\"%s\",\"type\":\"%s\",\"layout\":\"%s\",\"n\":%zu,\"rows\":%zu,\"nt\":%zu,\"weight_bytes\":%zu,"
		       "\"matvec_ns_per_row\":%.2f,\"matvec_gbps\":%.2f,\"matmul_ns_per_row_act\":%.2f}\n",
		       kp->name, info->name, packed ? "packed" : "gguf", n, rows, nt, rows * rb, mv_row, gbps, mm_pair);
	else
		printf("%-6s  %-5s  %-6s  %13.1f  %11.2f  %17.2f\n", kp->name, info->name, packed ? "packed" : "gguf", mv_row,
		       gbps, mm_pair);
	free(w), free(x), free(row), free(out);
	return 0;
}

/* Calls fn on each comma-separated item of list; stops at the first failure. */
static int each(const char *list, int (*fn)(const char *item, void *arg), void *arg)
{
	char buf[256];
	if (strlen(list) >= sizeof buf) {
		fprintf(stderr, "kernels: list '%s' is too long\n", list);
		return -1;
	}
	strcpy(buf, list);
	for (char *save = NULL, *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save))
		if (fn(it, arg))
			return -1;
	return 0;
}

struct sel {
	int path[MU_KPATH_COUNT];
	int type[64];
	size_t n_type;
};

static int add_path(const char *s, void *arg)
{
	struct sel *sel = arg;
	int p = mu_kpath_from_name(s);
	if (p < 0) {
		fprintf(stderr, "kernels: --path: '%s' is not ref, avx2 or avx512\n", s);
		return -1;
	}
	if (!mu_kpath_get((enum mu_kpath)p)) {
		fprintf(stderr, "kernels: --path %s: %s\n", s, mu_kpath_missing((enum mu_kpath)p));
		return -1;
	}
	sel->path[p] = 1;
	return 0;
}

static int add_type(const char *s, void *arg)
{
	struct sel *sel = arg;
	int t = mu_dtype_from_name(s);
	if (t < 0 || !mu_kernels_ref((enum mu_dtype)t)) {
		fprintf(stderr, "kernels: --type: '%s' is not a weight type with kernels\n", s);
		return -1;
	}
	if (sel->n_type == sizeof sel->type / sizeof sel->type[0]) {
		fprintf(stderr, "kernels: --type: too many types\n");
		return -1;
	}
	sel->type[sel->n_type++] = t;
	return 0;
}

int main(int argc, char **argv)
{
	const char *paths = NULL, *types = "f32,f16,bf16,q8_0,q4_0,q4_K,q5_K,q6_K";
	size_t n = 2048, rows = 256, nt = 32;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "kernels: %s: unknown option or missing value\n", a);
			usage(stderr);
			return 2;
		}
		i++;
		if (!strcmp(a, "--path"))
			paths = v;
		else if (!strcmp(a, "--type"))
			types = v;
		else if (!strcmp(a, "-n")) {
			if (parse_size(a, v, 1, 1u << 20, &n))
				return 2;
		} else if (!strcmp(a, "--rows")) {
			if (parse_size(a, v, 1, 1u << 20, &rows))
				return 2;
		} else if (!strcmp(a, "--nt")) {
			if (parse_size(a, v, 1, 1024, &nt))
				return 2;
		} else {
			fprintf(stderr, "kernels: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	struct sel sel = {{0}, {0}, 0};
	if (paths) {
		if (each(paths, add_path, &sel))
			return 2;
	} else {
		for (int p = 0; p < MU_KPATH_COUNT; p++)
			sel.path[p] = mu_kpath_get((enum mu_kpath)p) != NULL;
	}
	if (each(types, add_type, &sel))
		return 2;
	for (size_t i = 0; i < sel.n_type; i++) {
		const struct mu_dtype_info *info = mu_dtype_get((uint32_t)sel.type[i]);
		if (n % info->block) {
			fprintf(stderr, "kernels: -n %zu is not a multiple of %s's block of %u\n", n, info->name,
				(unsigned)info->block);
			return 2;
		}
	}
	if (!json) {
		printf("weights: %zu rows of %zu (%.2f MiB of q8_0, in cache when it fits); matmul of %zu activations; "
		       "best of %d and %d runs\n",
		       rows, n, (double)(rows * mu_dtype_row_size(MU_DTYPE_Q8_0, n)) / (1024.0 * 1024.0), nt, MV_RUNS,
		       MM_RUNS);
		printf("%-6s  %-5s  %-6s  %13s  %11s  %17s\n", "path", "type", "layout", "matvec ns/row", "matvec GB/s",
		       "matmul ns/row/act");
	}
	int bad = 0;
	for (int p = 0; p < MU_KPATH_COUNT; p++)
		if (sel.path[p])
			for (size_t i = 0; i < sel.n_type; i++) {
				const struct mu_kernel_path *kp = mu_kpath_get((enum mu_kpath)p);
				enum mu_dtype t = (enum mu_dtype)sel.type[i];
				bad |= measure(kp, t, 0, n, rows, nt, json);
				if (kp->packed(t) && n % MU_PACK_ELEMS == 0)
					bad |= measure(kp, t, 1, n, rows, nt, json);
			}
	return bad;
}
