/* cmd_info.c — `mu info FILE`: metadata, tensor table and, for a model, its shape. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/endian.h"
#include "host/cli.h"

static void print_str(struct gguf_str s, uint64_t max)
{
	uint64_t n = s.len < max ? s.len : max;
	putchar('"');
	for (uint64_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s.ptr[i];
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
	putchar('"');
	if (n < s.len)
		printf("... (%" PRIu64 " bytes)", s.len);
}

static void print_scalar(enum gguf_type t, const uint8_t *p)
{
	switch (t) {
	case GGUF_TYPE_UINT8: printf("%u", p[0]); break;
	case GGUF_TYPE_INT8: printf("%d", (int8_t)p[0]); break;
	case GGUF_TYPE_UINT16: printf("%u", le16_load(p)); break;
	case GGUF_TYPE_INT16: printf("%d", (int16_t)le16_load(p)); break;
	case GGUF_TYPE_UINT32: printf("%" PRIu32, le32_load(p)); break;
	case GGUF_TYPE_INT32: printf("%" PRId32, (int32_t)le32_load(p)); break;
	case GGUF_TYPE_FLOAT32: printf("%g", (double)lef32_load(p)); break;
	case GGUF_TYPE_BOOL: printf("%s", p[0] ? "true" : "false"); break;
	case GGUF_TYPE_UINT64: printf("%" PRIu64, le64_load(p)); break;
	case GGUF_TYPE_INT64: printf("%" PRId64, (int64_t)le64_load(p)); break;
	case GGUF_TYPE_FLOAT64: printf("%g", lef64_load(p)); break;
	default: printf("?"); break;
	}
}

static size_t scalar_size(enum gguf_type t)
{
	switch (t) {
	case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
	case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
	case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
	default: return 8;
	}
}

static void print_kv(const struct gguf_kv *kv)
{
	printf("  %-44.*s ", (int)kv->key.len, kv->key.ptr);
	if (kv->type == GGUF_TYPE_STRING) {
		struct gguf_str s = {(const char *)kv->data + 8, le64_load(kv->data)};
		print_str(s, 60);
	} else if (kv->type == GGUF_TYPE_ARRAY) {
		printf("[%s × %" PRIu64 "]", gguf_type_name(kv->arr_type), kv->arr_len);
		if (kv->arr_type == GGUF_TYPE_STRING) {
			struct gguf_str_iter it;
			struct gguf_str s;
			gguf_str_iter_init(&it, kv);
			for (int i = 0; i < 4 && gguf_str_iter_next(&it, &s); i++) {
				printf(i ? ", " : " ");
				print_str(s, 24);
			}
		} else {
			for (uint64_t i = 0; i < kv->arr_len && i < 6; i++) {
				printf(i ? ", " : " ");
				print_scalar(kv->arr_type, kv->data + i * scalar_size(kv->arr_type));
			}
		}
		if (kv->arr_len > 4)
			printf(", ...");
	} else {
		print_scalar(kv->type, kv->data);
	}
	putchar('\n');
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mu info [--no-tensors] FILE.gguf\n\n"
		   "Prints the GGUF header, every metadata key (long strings and arrays abbreviated),\n"
		   "the tensor table (name, type, shape, offset, bytes) and, when the file is a model\n"
		   "this engine can run, its architecture and shape. Any well-formed GGUF can be shown.\n");
}

int cmd_info(int argc, char **argv)
{
	const char *path = NULL;
	int tensors = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--no-tensors")) {
			tensors = 0;
		} else if (argv[i][0] == '-' || path) {
			fprintf(stderr, "mu info: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		usage(stderr);
		return 2;
	}

	struct mu_session s;
	struct mu_error err;
	if (session_open(&s, path, 0, 0, 1, &err)) {
		cli_error("info", &err);
		return 1;
	}
	const struct gguf *g = &s.g;
	printf("%s: GGUF v%u, %zu bytes, %" PRIu64 " metadata keys, %" PRIu64 " tensors, alignment %u, data at %" PRIu64 "\n",
	       path, g->version, g->len, g->n_kv, g->n_tensors, g->alignment, g->data_offset);
	printf("metadata:\n");
	for (uint64_t i = 0; i < g->n_kv; i++)
		print_kv(&g->kv[i]);
	if (tensors && g->n_tensors) {
		printf("tensors:\n  %-32s %-6s %-22s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
		for (uint64_t i = 0; i < g->n_tensors; i++) {
			const struct gguf_tensor *t = &g->tensors[i];
			char shape[64];
			int n = 0;
			for (uint32_t d = 0; d < t->n_dims; d++)
				n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%" PRIu64, d ? " x " : "", t->ne[d]);
			printf("  %-32.*s %-6s %-22s %12" PRIu64 " %12" PRIu64 "\n", (int)t->name.len, t->name.ptr,
			       mu_dtype_get(t->type)->name, shape, t->offset, t->size);
		}
	}

	struct mu_model *m = pal_alloc(sizeof *m, 64);
	if (m && g->n_tensors) {
		if (mu_model_load(m, g, &err) == MU_OK) {
			const struct mu_hparams *hp = &m->hp;
			printf("model: %s, %u layers, embd %u, ffn %u, heads %u (kv %u), head dim %u, vocab %u\n",
			       mu_arch_name(hp->arch), hp->n_layer, hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv,
			       hp->head_dim, hp->n_vocab);
			printf("       rope %s dim %u base %g%s, rms eps %g, trained context %u, %s output\n",
			       hp->rope_type == MU_ROPE_NORM ? "normal" : "neox", hp->rope_dim, (double)hp->rope_base,
			       m->rope_freqs ? " with rope_freqs" : "", (double)hp->eps, hp->n_ctx_train,
			       m->tied_output ? "tied" : "separate");
			printf("       weights: %" PRIu64 " bytes (%.1f MiB); a generated token reads %" PRIu64
			       " bytes (%.1f MiB)\n",
			       m->weight_bytes, (double)m->weight_bytes / (1024.0 * 1024.0), m->bytes_per_token,
			       (double)m->bytes_per_token / (1024.0 * 1024.0));
			/* what a run does with them (session_open, mu-enclave): one copy, packed in place */
			printf("       to run: read once into anonymous memory (2 MiB pages), of which %" PRIu64
			       " bytes (%.1f MiB) are packed in place for the %s kernels; no other copy\n",
			       m->pack_bytes, (double)m->pack_bytes / (1024.0 * 1024.0), m->kp->name);
			struct mu_ctx_params cp = mu_ctx_params_default(mu_model_default_ctx(m, SESSION_MAX_DEFAULT_CTX));
			size_t f16 = mu_ctx_size(m, &cp);
			cp.kv_type = MU_DTYPE_F32;
			size_t f32 = mu_ctx_size(m, &cp);
			printf("       run state for %u positions (batch %u, 1 thread): %zu bytes (%.1f MiB) with f16 KV,"
			       " %zu (%.1f MiB) with f32\n",
			       cp.n_ctx, cp.n_batch, f16, (double)f16 / (1024.0 * 1024.0), f32, (double)f32 / (1024.0 * 1024.0));
		} else {
			printf("model: not runnable: %s\n", err.msg);
		}
	}
	pal_free(m, sizeof *m);
	session_close(&s);
	return 0;
}
