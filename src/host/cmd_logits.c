/* cmd_logits.c — `mu logits`: a fingerprint of the logits, for determinism checks.
 * Prints "sha256 HEX" over the last position's logits as float32 little-endian bytes, then
 * the five highest logits (ties: lower id first). */
#include <bearssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "host/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mu logits -m MODEL.gguf (-p TEXT | --tokens ID,ID,...) [-t THREADS] [--ctx N]\n"
		   "                 [--kv-type f16|f32] [--raw FILE]\n\n"
		   "Runs the prompt through the model and prints 'sha256 HEX' of the last position's logits\n"
		   "(float32, little-endian), then the top-5 ids and values. The hash is the same for any\n"
		   "thread count: see docs/determinism.md.\n\n"
		   "  -p TEXT          prompt, tokenized with the model's vocabulary (BOS added)\n"
		   "  --tokens LIST    token ids used verbatim (no BOS added)\n"
		   "  -t THREADS       worker threads (default 1)\n"
		   "  --ctx N          context length (default: prompt length)\n"
		   "  --kv-type T      KV cache type: f16 (default; keys and values rounded to half\n"
		   "                   precision when stored) or f32. The two give different logits.\n"
		   "  --raw FILE       also write the logits there as float32 little-endian\n");
}

int cmd_logits(int argc, char **argv)
{
	const char *model = NULL, *prompt = NULL, *tokens_s = NULL, *raw = NULL, *val;
	uint32_t threads = 1, n_ctx = 0;
	enum mu_dtype kv_type = MU_DTYPE_F16;
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if ((r = cli_opt(argc, argv, &i, "-m", "--model", &model)) ||
		    (r = cli_opt(argc, argv, &i, "-p", "--prompt", &prompt)) ||
		    (r = cli_opt(argc, argv, &i, "--tokens", NULL, &tokens_s)) ||
		    (r = cli_opt(argc, argv, &i, "--raw", NULL, &raw))) {
			if (r < 0)
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "-t", "--threads", &val))) {
			if (r < 0 || cli_u32("-t", val, 1, MU_MAX_THREADS, &threads))
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--kv-type", NULL, &val))) {
			if (r < 0 || cli_kv_type("logits", val, &kv_type))
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--ctx", NULL, &val))) {
			if (r < 0 || cli_u32("--ctx", val, 1, MU_MAX_CTX, &n_ctx))
				return 2;
			continue;
		}
		fprintf(stderr, "mu logits: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (!model || (!prompt == !tokens_s)) {
		fprintf(stderr, "mu logits: need -m and exactly one of -p or --tokens\n");
		usage(stderr);
		return 2;
	}

	struct mu_session s;
	struct mu_error err;
	int32_t *ids = NULL;
	uint32_t n = 0;
	int code = 1;
	if (tokens_s) {
		ids = malloc(MU_MAX_BATCH * sizeof *ids);
		if (!ids || cli_parse_tokens(tokens_s, ids, MU_MAX_BATCH, &n)) {
			free(ids);
			return 2;
		}
	}
	/* --ctx defaults to the number of ids with --tokens, else to min(trained context, 4096). */
	if (session_open_kv(&s, model, 1, n_ctx ? n_ctx : (n ? n : 0), (int)threads, kv_type, &err)) {
		cli_error("logits", &err);
		free(ids);
		return 1;
	}
	if (prompt && session_encode(&s, prompt, &ids, &n, &err)) {
		cli_error("logits", &err);
		goto out;
	}
	if (n > s.ctx.n_ctx) {
		fprintf(stderr, "mu logits: %u prompt tokens exceed the context length %u (use --ctx)\n", n, s.ctx.n_ctx);
		goto out;
	}
	if (mu_forward(&s.ctx, ids, n, &err)) {
		cli_error("logits", &err);
		goto out;
	}

	uint32_t nv = s.model->hp.n_vocab;
	uint8_t *bytes = malloc((size_t)nv * 4);
	if (!bytes) {
		fprintf(stderr, "mu logits: out of memory\n");
		goto out;
	}
	for (uint32_t i = 0; i < nv; i++)
		lef32_store(bytes + 4 * (size_t)i, s.ctx.logits[i]);
	br_sha256_context sha;
	uint8_t digest[32];
	br_sha256_init(&sha);
	br_sha256_update(&sha, bytes, (size_t)nv * 4);
	br_sha256_out(&sha, digest);
	printf("sha256 ");
	for (int i = 0; i < 32; i++)
		printf("%02x", digest[i]);
	printf("\n");

	/* top 5 by value, ties to the lower id */
	int32_t top[5];
	int nt = 0;
	for (uint32_t i = 0; i < nv; i++) {
		float v = s.ctx.logits[i];
		int at = nt;
		while (at > 0 && v > s.ctx.logits[top[at - 1]])
			at--;
		if (at >= 5)
			continue;
		if (nt < 5)
			nt++;
		for (int j = nt - 1; j > at; j--)
			top[j] = top[j - 1];
		top[at] = (int32_t)i;
	}
	for (int i = 0; i < nt; i++)
		printf("top%d %d %.6f\n", i + 1, top[i], (double)s.ctx.logits[top[i]]);

	code = 0;
	if (raw) {
		FILE *f = fopen(raw, "wb");
		if (!f || fwrite(bytes, 4, nv, f) != nv || fclose(f) != 0) {
			fprintf(stderr, "mu logits: cannot write %s\n", raw);
			code = 1;
		}
	}
	free(bytes);
out:
	free(ids);
	session_close(&s);
	return code;
}
