/* test_model.c — the forward pass against independent references.
 *  - stories260K greedy transcripts equal stories260K.golden.txt token for token
 *    (an independent float64 NumPy pass, itself equal to llama2.c's run.c);
 *  - logits after BOS within 1e-5 of stories260K.logits_bos.txt;
 *  - logits bit-identical for 1, 2, 3 and 4 threads, and for a prompt fed at once or token
 *    by token;
 *  - refusals: token id out of range, context full, bad context length, missing tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/pool.h"
#include "pal/pal.h"
#include "test.h"

static char path_buf[1024];
static const char *shared_path(const char *rel)
{
	const char *shared = getenv("SHARED");
	snprintf(path_buf, sizeof path_buf, "%s/%s", shared && *shared ? shared : "../shared", rel);
	return path_buf;
}

struct loaded {
	struct pal_map map;
	struct gguf g;
	void *gmem;
	struct mu_model *m;
};

static int load(struct loaded *L, const char *path)
{
	struct mu_error err;
	size_t need;
	memset(L, 0, sizeof *L);
	if (pal_map_file(&L->map, path, &err) || gguf_mem_size(L->map.data, L->map.len, &need, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	L->gmem = malloc(need);
	L->m = malloc(sizeof *L->m);
	if (gguf_parse(&L->g, L->map.data, L->map.len, L->gmem, need, &err) || mu_model_load(L->m, &L->g, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	return 0;
}

static void unload(struct loaded *L)
{
	free(L->gmem);
	free(L->m);
	pal_unmap(&L->map);
}

struct run {
	struct mu_pool *pool;
	void *mem;
	struct mu_ctx ctx;
};

static int run_open(struct run *r, const struct mu_model *m, uint32_t n_ctx, int threads)
{
	struct mu_error err;
	size_t len = mu_ctx_size(m, n_ctx);
	r->mem = malloc(len);
	if (mu_pool_create(&r->pool, threads, &err) || mu_ctx_init(&r->ctx, m, n_ctx, r->pool, r->mem, len, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	return 0;
}

static void run_close(struct run *r)
{
	mu_pool_destroy(r->pool);
	free(r->mem);
}

static int32_t argmax(const float *v, uint32_t n)
{
	int32_t best = 0;
	for (uint32_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = (int32_t)i;
	return best;
}

/* Parses "a b c" into ids; returns the count. */
static uint32_t parse_ids(const char *s, int32_t *out, uint32_t max)
{
	uint32_t n = 0;
	char *end;
	for (;;) {
		long v = strtol(s, &end, 10);
		if (end == s || n >= max)
			return n;
		out[n++] = (int32_t)v;
		s = end;
	}
}

static void test_golden(struct loaded *L)
{
	FILE *f = fopen(shared_path("models/stories260K/stories260K.golden.txt"), "r");
	CHECK(f != NULL, "cannot open the golden file");
	if (!f)
		return;
	char line[8192], name[64] = "";
	int32_t prompt[64], want[512], got[512];
	uint32_t n_prompt = 0, n_want = 0, steps = 0;
	int cases = 0;
	struct run r;
	if (run_open(&r, L->m, 512, 2))
		return;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '[')
			sscanf(line, "[%63[^]]", name);
		else if (!strncmp(line, "steps: ", 7))
			steps = (uint32_t)atoi(line + 7);
		else if (!strncmp(line, "prompt_tokens: ", 15))
			n_prompt = parse_ids(line + 15, prompt, 64);
		else if (!strncmp(line, "generated_tokens: ", 18)) {
			n_want = parse_ids(line + 18, want, 512);
			struct mu_error err;
			mu_ctx_reset(&r.ctx);
			CHECK(mu_forward(&r.ctx, prompt, n_prompt, &err) == MU_OK, "%s", err.msg);
			/* llama2.c semantics: forward passes at positions 0..steps-1; a token is
			 * drawn after each pass from the last prompt position on, so
			 * steps - n_prompt + 1 tokens; generation stops at BOS. */
			uint32_t total = steps + 1 - n_prompt, n_got = 0;
			while (n_got < total && n_got < 512) {
				int32_t next = argmax(r.ctx.logits, L->m->hp.n_vocab);
				got[n_got++] = next;
				if (next == 1 || n_got == total)
					break;
				if (mu_forward(&r.ctx, &next, 1, &err) != MU_OK)
					break;
			}
			uint32_t same_prefix = 0;
			while (same_prefix < n_got && same_prefix < n_want && got[same_prefix] == want[same_prefix])
				same_prefix++;
			CHECK(n_got == n_want && same_prefix == n_want,
			      "golden case %s: %u tokens generated, %u expected, first difference at %u", name, n_got, n_want,
			      same_prefix);
			cases++;
		}
	}
	fclose(f);
	CHECK(cases == 3, "expected 3 golden cases, found %d", cases);
	run_close(&r);
}

static void test_logits_bos(struct loaded *L)
{
	FILE *f = fopen(shared_path("models/stories260K/stories260K.logits_bos.txt"), "r");
	CHECK(f != NULL, "cannot open the logits file");
	if (!f)
		return;
	double want[512];
	char line[256];
	int n = 0;
	while (fgets(line, sizeof line, f) && n < 512)
		if (line[0] != '#')
			want[n++] = strtod(line, NULL);
	fclose(f);
	CHECK(n == 512, "read %d reference logits", n);

	struct run r;
	struct mu_error err;
	int32_t bos = 1;
	if (run_open(&r, L->m, 16, 1))
		return;
	CHECK(mu_forward(&r.ctx, &bos, 1, &err) == MU_OK, "%s", err.msg);
	double max_diff = 0;
	for (int i = 0; i < n; i++) {
		double d = fabs((double)r.ctx.logits[i] - want[i]);
		if (d > max_diff)
			max_diff = d;
	}
	CHECK(max_diff < 1e-5, "max |logit - reference| = %g", max_diff);
	printf("logits after BOS: max abs difference from the float64 reference %.3g\n", max_diff);
	CHECK(argmax(r.ctx.logits, 512) == 403, "argmax after BOS is not 403");
	run_close(&r);
}

static void test_threads_and_batching(struct loaded *L)
{
	static const int32_t prompt[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421};
	const uint32_t n = sizeof prompt / sizeof prompt[0];
	uint32_t nv = L->m->hp.n_vocab;
	float *ref = malloc(nv * sizeof *ref);
	struct mu_error err;

	for (int threads = 1; threads <= 4; threads++) {
		struct run r;
		if (run_open(&r, L->m, 64, threads))
			return;
		CHECK(mu_forward(&r.ctx, prompt, n, &err) == MU_OK, "%s", err.msg);
		if (threads == 1)
			memcpy(ref, r.ctx.logits, nv * sizeof *ref);
		else
			CHECK(!memcmp(ref, r.ctx.logits, nv * sizeof *ref), "logits with %d threads differ from 1 thread", threads);
		/* the same prompt token by token */
		mu_ctx_reset(&r.ctx);
		for (uint32_t i = 0; i < n; i++)
			mu_forward(&r.ctx, &prompt[i], 1, &err);
		CHECK(!memcmp(ref, r.ctx.logits, nv * sizeof *ref), "token-by-token logits differ (%d threads)", threads);
		run_close(&r);
	}
	free(ref);
}

static void test_refusals(struct loaded *L)
{
	struct run r;
	struct mu_error err;
	if (run_open(&r, L->m, 4, 1))
		return;
	int32_t bad[2] = {1, 512};
	CHECK(mu_forward(&r.ctx, bad, 2, &err) == MU_ERR_RANGE && strstr(err.msg, "token id 512"), "%s", err.msg);
	CHECK(r.ctx.pos == 0, "a refused call must not advance the position");
	int32_t neg = -1;
	CHECK(mu_forward(&r.ctx, &neg, 1, &err) == MU_ERR_RANGE, "negative id accepted");
	int32_t five[5] = {1, 2, 3, 4, 5};
	CHECK(mu_forward(&r.ctx, five, 5, &err) == MU_ERR_RANGE && strstr(err.msg, "context full"), "%s", err.msg);
	CHECK(mu_forward(&r.ctx, five, 4, &err) == MU_OK, "%s", err.msg);
	CHECK(mu_forward(&r.ctx, five, 1, &err) == MU_ERR_RANGE, "position past the context accepted");
	CHECK(mu_forward(&r.ctx, five, 0, &err) == MU_ERR_ARG, "empty call accepted");
	run_close(&r);

	struct mu_ctx c;
	char small[64];
	CHECK(mu_ctx_init(&c, L->m, 16, NULL, small, sizeof small, &err) == MU_ERR_NOMEM, "tiny arena accepted");
	CHECK(mu_ctx_init(&c, L->m, 0, NULL, small, sizeof small, &err) == MU_ERR_RANGE, "zero context accepted");

	/* a vocab-only GGUF is not a model: the refusal names what is missing */
	struct loaded V;
	struct mu_error e2;
	size_t need;
	memset(&V, 0, sizeof V);
	if (pal_map_file(&V.map, shared_path("models/llamacpp-vocab/ggml-vocab-llama-spm.gguf"), &e2) == MU_OK &&
	    gguf_mem_size(V.map.data, V.map.len, &need, &e2) == MU_OK) {
		V.gmem = malloc(need);
		V.m = malloc(sizeof *V.m);
		CHECK(gguf_parse(&V.g, V.map.data, V.map.len, V.gmem, need, &e2) == MU_OK, "%s", e2.msg);
		enum mu_err rc = mu_model_load(V.m, &V.g, &e2);
		CHECK(rc == MU_ERR_FORMAT && strstr(e2.msg, "missing tensor token_embd.weight") != NULL,
		      "vocab-only file loaded as a model: %s", e2.msg);
		unload(&V);
	} else {
		CHECK(0, "cannot open the llama-spm vocab: %s", e2.msg);
	}
}

int main(void)
{
	struct loaded L;
	if (load(&L, shared_path("models/stories260K/stories260K.gguf")) != 0) {
		CHECK(0, "cannot load stories260K");
		return test_done();
	}
	const struct mu_hparams *hp = &L.m->hp;
	CHECK(hp->arch == MU_ARCH_LLAMA && hp->n_embd == 64 && hp->n_layer == 5 && hp->n_head == 8 &&
		      hp->n_head_kv == 4 && hp->n_ff == 172 && hp->n_vocab == 512 && hp->head_dim == 8,
	      "stories260K hyperparameters");
	CHECK(hp->rope_type == MU_ROPE_NORM && hp->rope_base == 10000.0f && !L.m->tied_output,
	      "stories260K rope and output");
	test_logits_bos(&L);
	test_golden(&L);
	test_threads_and_batching(&L);
	test_refusals(&L);
	unload(&L);
	return test_done();
}
