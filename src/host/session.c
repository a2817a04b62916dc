/* session.c — argument helpers and model opening for the `mu` subcommands. */
#include "host/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_opt(int argc, char **argv, int *i, const char *name, const char *alt, const char **val)
{
	const char *a = argv[*i];
	if (strcmp(a, name) != 0 && (!alt || strcmp(a, alt) != 0))
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "mu: option %s needs a value\n", a);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

int cli_u64(const char *flag, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+') {
		fprintf(stderr, "mu: %s: '%s' is not a non-negative integer\n", flag, s);
		return -1;
	}
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end) {
		fprintf(stderr, "mu: %s: '%s' is not a non-negative integer\n", flag, s);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v;
	if (cli_u64(flag, s, &v))
		return -1;
	if (v < lo || v > hi) {
		fprintf(stderr, "mu: %s: %s is out of range %u..%u\n", flag, s, lo, hi);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

int cli_opt_u32s(int argc, char **argv, int *i, const struct cli_u32_opt *t, size_t n)
{
	const char *val;
	for (size_t k = 0; k < n; k++) {
		int r = cli_opt(argc, argv, i, t[k].flag, NULL, &val);
		if (r)
			return r < 0 || cli_u32(t[k].flag, val, t[k].lo, t[k].hi, t[k].dst) ? -1 : 1;
	}
	return 0;
}

int cli_f32(const char *flag, const char *s, float lo, float hi, float *out)
{
	char *end;
	errno = 0;
	float v = strtof(s, &end);
	if (errno || *end || !*s || !(v >= lo && v <= hi)) {
		fprintf(stderr, "mu: %s: '%s' is not a number in [%g, %g]\n", flag, s, (double)lo, (double)hi);
		return -1;
	}
	*out = v;
	return 0;
}

void cli_error(const char *cmd, const struct mu_error *e)
{
	fprintf(stderr, "mu %s: %s\n", cmd, e->msg);
}

int cli_parse_tokens(const char *s, int32_t *out, uint32_t max, uint32_t *n)
{
	*n = 0;
	while (*s) {
		char *end;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (end == s || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
			fprintf(stderr, "mu: --tokens: expected comma-separated token ids, got '%s'\n", s);
			return -1;
		}
		if (*n >= max) {
			fprintf(stderr, "mu: --tokens: more than %u ids\n", max);
			return -1;
		}
		out[(*n)++] = (int32_t)v;
		s = *end ? end + 1 : end;
	}
	if (*n == 0) {
		fprintf(stderr, "mu: --tokens: no token ids given\n");
		return -1;
	}
	return 0;
}

int cli_kv_type(const char *cmd, const char *s, enum mu_dtype *out)
{
	int t = mu_kv_type_from_name(s);
	if (t < 0) {
		fprintf(stderr, "mu %s: --kv-type: '%s' is not a KV cache type (f16 or f32)\n", cmd, s);
		return -1;
	}
	*out = (enum mu_dtype)t;
	return 0;
}

enum mu_err session_open(struct mu_session *s, const char *path, int load_model, uint32_t n_ctx, int n_threads,
			 struct mu_error *err)
{
	return session_open_kv(s, path, load_model, n_ctx, n_threads, MU_DTYPE_F16, err);
}

/* Replaces the file's mapping by a copy in anonymous memory advised for 2 MiB pages (the kind
 * mu-enclave unseals weights into, without its locking and wiping: these weights are the
 * file's), 16 MiB at a time, releasing each copied piece of the mapping so that the resident
 * set holds one copy of the weights, not two. On failure the mapping is left as it was. */
static enum mu_err copy_file(struct mu_session *s, struct mu_error *err)
{
	struct pal_map copy;
	enum mu_err rc = pal_map_anon(&copy, s->map.len, err);
	if (rc)
		return rc;
	const size_t piece = (size_t)16 << 20;
	for (size_t off = 0; off < s->map.len; off += piece)
		pal_map_copy_out(&s->map, off, s->map.len - off < piece ? s->map.len - off : piece,
				 (uint8_t *)(uintptr_t)copy.data + off);
	pal_unmap(&s->map);
	s->map = copy;
	return MU_OK;
}

/* mapped: a model to run stays on the read-only mapping, unpacked (session_open_mapped) */
static enum mu_err session_open_any(struct mu_session *s, const char *path, int load_model, uint32_t n_ctx,
				    int n_threads, enum mu_dtype kv_type, int mapped, struct mu_error *err)
{
	enum mu_err rc;
	struct mu_ctx_params cp;
	memset(s, 0, sizeof *s);
	if ((rc = pal_map_file(&s->map, path, err)))
		return rc;
	if (load_model && !mapped && s->map.len > 0 && copy_file(s, err) == MU_OK)
		s->copied = 1;
	else if (load_model && !mapped && s->map.len > 0)
		/* not fatal: the mapping works, unpacked and slower */
		fprintf(stderr, "mu: %s: cannot copy the weights (%s); running them from the file's mapping\n", path,
			err->msg);
	if ((rc = gguf_mem_size(s->map.data, s->map.len, &s->gguf_mem_len, err)))
		goto fail;
	s->gguf_mem = pal_alloc(s->gguf_mem_len, 64);
	if (!s->gguf_mem) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory for the GGUF tables");
		goto fail;
	}
	if ((rc = gguf_parse(&s->g, s->map.data, s->map.len, s->gguf_mem, s->gguf_mem_len, err)))
		goto fail;
	if (!load_model)
		return MU_OK;

	s->model = pal_alloc(sizeof *s->model, 64);
	if (!s->model) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory for the model");
		goto fail;
	}
	if ((rc = mu_model_load(s->model, &s->g, err)))
		goto fail;
	if (s->copied)
		mu_model_pack(s->model);
	if (n_ctx == 0)
		n_ctx = mu_model_default_ctx(s->model, SESSION_MAX_DEFAULT_CTX);
	if ((rc = mu_pool_create(&s->pool, n_threads, err)))
		goto fail;
	cp = mu_ctx_params_default(n_ctx);
	cp.n_threads = (uint32_t)n_threads;
	cp.kv_type = kv_type;
	if ((rc = mu_ctx_params_check(&cp, err)))
		goto fail;
	s->ctx_mem_len = mu_ctx_size(s->model, &cp);
	s->ctx_mem = pal_alloc(s->ctx_mem_len, 64);
	if (!s->ctx_mem) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory: the run state for %u positions needs %zu bytes", n_ctx,
			     s->ctx_mem_len);
		goto fail;
	}
	if ((rc = mu_ctx_init(&s->ctx, s->model, &cp, s->pool, s->ctx_mem, s->ctx_mem_len, err)))
		goto fail;
	return MU_OK;
fail:
	mu_err_prefix(err, "%s", path);
	session_close(s);
	return rc;
}

enum mu_err session_tokenizer(struct mu_session *s, struct mu_error *err)
{
	enum mu_err rc;
	if (s->has_tok)
		return MU_OK;
	if ((rc = mu_tokenizer_mem_size(&s->g, &s->tok_mem_len, err)))
		return rc;
	s->tok_mem = pal_alloc(s->tok_mem_len, 64);
	if (!s->tok_mem)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for the tokenizer");
	if ((rc = mu_tokenizer_init(&s->tok, &s->g, s->tok_mem, s->tok_mem_len, err)))
		return rc;
	s->has_tok = 1;
	return MU_OK;
}

enum mu_err session_encode(struct mu_session *s, const char *text, int32_t **ids, uint32_t *n, struct mu_error *err)
{
	enum mu_err rc;
	size_t len = strlen(text), n_ids = 0;
	size_t max = len + 8;
	size_t scratch_len = mu_tokenizer_scratch_size(len);
	void *scratch = NULL;
	struct mu_arena a;

	*ids = NULL;
	if ((rc = session_tokenizer(s, err)))
		return rc;
	*ids = malloc(max * sizeof **ids);
	scratch = malloc(scratch_len ? scratch_len : 1);
	if (!*ids || !scratch) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
		goto out;
	}
	mu_arena_init(&a, scratch, scratch_len);
	rc = mu_tokenizer_encode(&s->tok, text, len, MU_TOKENIZER_ADD_SPECIAL, *ids, max, &n_ids, &a, err);
	*n = (uint32_t)n_ids;
out:
	free(scratch);
	if (rc) {
		free(*ids);
		*ids = NULL;
	}
	return rc;
}

enum mu_err session_chat_encode(struct mu_session *s, enum mu_chat_template tmpl, const struct mu_chat_msg *msgs,
				size_t n, const char *date, int32_t **ids, uint32_t *n_ids, struct mu_error *err)
{
	enum mu_err rc;
	size_t text_len = 0, n_out = 0;
	for (size_t i = 0; i < n; i++)
		text_len += msgs[i].len;
	struct mu_chat_render r = {.cap = text_len + 4096, .max_parts = 16 * n + 16};
	size_t max_ids = text_len + 1024;
	size_t scratch_len = mu_tokenizer_scratch_size(text_len + 4096);
	void *scratch = NULL;
	struct mu_arena a;

	*ids = NULL;
	if ((rc = session_tokenizer(s, err)))
		return rc;
	r.text = malloc(r.cap);
	r.parts = malloc(r.max_parts * sizeof *r.parts);
	*ids = malloc(max_ids * sizeof **ids);
	scratch = malloc(scratch_len);
	if (!r.text || !r.parts || !*ids || !scratch) {
		rc = mu_errf(err, MU_ERR_NOMEM, "out of memory rendering the chat");
		goto out;
	}
	mu_arena_init(&a, scratch, scratch_len);
	if ((rc = mu_chat_render(tmpl, &s->tok, msgs, n, 1, date, &r, err)))
		goto out;
	rc = mu_chat_encode(&s->tok, &r, *ids, max_ids, &n_out, &a, err);
	*n_ids = (uint32_t)n_out;
out:
	free(r.text);
	free(r.parts);
	free(scratch);
	if (rc) {
		free(*ids);
		*ids = NULL;
	}
	return rc;
}

enum mu_err session_open_kv(struct mu_session *s, const char *path, int load_model, uint32_t n_ctx, int n_threads,
			    enum mu_dtype kv_type, struct mu_error *err)
{
	return session_open_any(s, path, load_model, n_ctx, n_threads, kv_type, 0, err);
}

enum mu_err session_open_mapped(struct mu_session *s, const char *path, uint32_t n_ctx, int n_threads,
				struct mu_error *err)
{
	return session_open_any(s, path, 1, n_ctx, n_threads, MU_DTYPE_F16, 1, err);
}

void session_close(struct mu_session *s)
{
	if (s->tok_mem)
		pal_free(s->tok_mem, s->tok_mem_len);
	if (s->pool)
		mu_pool_destroy(s->pool);
	if (s->ctx_mem)
		pal_free(s->ctx_mem, s->ctx_mem_len);
	if (s->model)
		pal_free(s->model, sizeof *s->model);
	if (s->gguf_mem)
		pal_free(s->gguf_mem, s->gguf_mem_len);
	pal_unmap(&s->map);
	memset(s, 0, sizeof *s);
}
