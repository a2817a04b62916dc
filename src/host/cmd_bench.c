/* cmd_bench.c — `mu bench`: prompt-processing (pp) and generation (tg) speed, the two
 * figures llama-bench reports, measured the same way: pp = N prompt tokens from an empty
 * context in one call; tg = N tokens one at a time from an empty context. Token ids are fixed
 * pseudo-random values, so runs are comparable.
 *
 * Beside the speeds it reports what comparisons need: the kernel path, the weight bytes one
 * generated token reads (so tg speed can be set against the memory bandwidth), the run-state
 * bytes (KV cache and scratch) and the peak resident set. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mathx.h"
#include "host/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mu bench -m MODEL.gguf [-p N] [-n N] [-t THREADS] [-r REPS] [--load map|copy] [--json]\n\n"
		   "  -p N        prompt tokens for the pp test (default 128; 0 skips it)\n"
		   "  -n N        generated tokens for the tg test (default 64; 0 skips it)\n"
		   "  -t THREADS  worker threads (default 1)\n"
		   "  -r REPS     repetitions; the mean and standard deviation are reported (default 3)\n"
		   "  --load copy run as mu run and mu-enclave do (default): the weights are read into\n"
		   "              anonymous memory advised for 2 MiB pages and packed there once for the\n"
		   "              kernel path (Q8_0 and Q4_0 on avx512)\n"
		   "  --load map  run on the file's read-only mapping instead (4 KiB page-cache pages,\n"
		   "              the GGUF layout), as llama.cpp does by default\n"
		   "  --json      one JSON object on stdout instead of the table\n"
		   "Progress goes to stderr. Compare with llama-bench using bench/compare.sh.\n\n"
		   "Besides tokens/s (mean ± standard deviation) it reports the kernel path (MU_KERNELS\n"
		   "chooses it), the weight bytes read per generated token (every layer's matrices, norms\n"
		   "and biases, the output norm and matrix, and one row of the embedding table, which is\n"
		   "read whole instead when it is also the output matrix), the run-state bytes (KV cache\n"
		   "and scratch for max(-p, -n) positions) and the peak resident set (VmHWM; mapped\n"
		   "weights count once touched).\n");
}

struct stat {
	double mean, sd;
};

/* The peak resident set (VmHWM in /proc/self/status) in bytes; 0 when it cannot be read. */
static uint64_t peak_rss(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kib = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %" SCNu64 " kB", &kib) == 1) /* NOLINT(cert-err34-c): the kernel's text */
			break;
	fclose(f);
	return kib * 1024;
}

/* "1.23 GiB", "45.6 MiB" */
static const char *human(uint64_t b, char buf[static 16])
{
	if (b >= (1ull << 30))
		snprintf(buf, 16, "%.2f GiB", (double)b / (1024.0 * 1024.0 * 1024.0));
	else
		snprintf(buf, 16, "%.1f MiB", (double)b / (1024.0 * 1024.0));
	return buf;
}

static struct stat stats(const double *v, uint32_t n)
{
	struct stat s = {0, 0};
	for (uint32_t i = 0; i < n; i++)
		s.mean += v[i];
	s.mean /= n;
	for (uint32_t i = 0; i < n; i++)
		s.sd += (v[i] - s.mean) * (v[i] - s.mean);
	s.sd = n > 1 ? mu_sqrt(s.sd / (n - 1)) : 0.0;
	return s;
}

int cmd_bench(int argc, char **argv)
{
	const char *model = NULL, *val;
	uint32_t pp = 128, tg = 64, threads = 1, reps = 3;
	int json = 0, copy = 1;
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
		if ((r = cli_opt(argc, argv, &i, "--load", NULL, &val))) {
			if (r < 0)
				return 2;
			if (strcmp(val, "map") && strcmp(val, "copy")) {
				fprintf(stderr, "mu bench: --load: '%s' is not map or copy\n", val);
				return 2;
			}
			copy = !strcmp(val, "copy");
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "-m", "--model", &model))) {
			if (r < 0)
				return 2;
			continue;
		}
		struct {
			const char *flag;
			uint32_t *dst, lo, hi;
		} nums[] = {{"-p", &pp, 0, MU_MAX_BATCH}, {"-n", &tg, 0, MU_MAX_BATCH},
			    {"-t", &threads, 1, MU_MAX_THREADS}, {"-r", &reps, 1, 1000}};
		int matched = 0;
		for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !matched; k++) {
			if ((r = cli_opt(argc, argv, &i, nums[k].flag, NULL, &val))) {
				if (r < 0 || cli_u32(nums[k].flag, val, nums[k].lo, nums[k].hi, nums[k].dst))
					return 2;
				matched = 1;
			}
		}
		if (matched)
			continue;
		fprintf(stderr, "mu bench: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (!model) {
		usage(stderr);
		return 2;
	}

	struct mu_session s;
	struct mu_error err;
	uint32_t need = pp > tg ? pp : tg;
	uint64_t t_load = pal_now_ns();
	if ((copy ? session_open(&s, model, 1, need ? need : 1, (int)threads, &err)
		  : session_open_mapped(&s, model, need ? need : 1, (int)threads, &err))) {
		cli_error("bench", &err);
		return 1;
	}
	const struct mu_hparams *hp = &s.model->hp;
	int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
	double *pp_v = calloc(reps, sizeof *pp_v), *tg_v = calloc(reps, sizeof *tg_v);
	int code = 1;
	if (!ids || !pp_v || !tg_v) {
		fprintf(stderr, "mu bench: out of memory\n");
		goto out;
	}
	uint64_t x = 0x2545f4914f6cdd1dull;
	for (uint32_t i = 0; i < need; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		ids[i] = (int32_t)(x % hp->n_vocab);
	}

	/* warm-up: touch the weights once */
	mu_ctx_reset(&s.ctx);
	if (mu_forward(&s.ctx, ids, 1, &err))
		goto fail;
	/* bench/profile.sh starts sampling at this line */
	fprintf(stderr, "mu bench: ready in %.2f s (load%s, one warm-up token); measuring\n",
		(double)(pal_now_ns() - t_load) * 1e-9, copy ? ", copy and packing" : "");
	for (uint32_t r = 0; r < reps; r++) {
		if (pp) {
			mu_ctx_reset(&s.ctx);
			uint64_t t0 = pal_now_ns();
			if (mu_forward(&s.ctx, ids, pp, &err))
				goto fail;
			pp_v[r] = pp / ((double)(pal_now_ns() - t0) * 1e-9);
		}
		if (tg) {
			mu_ctx_reset(&s.ctx);
			uint64_t t0 = pal_now_ns();
			for (uint32_t i = 0; i < tg; i++)
				if (mu_forward(&s.ctx, &ids[i], 1, &err))
					goto fail;
			tg_v[r] = tg / ((double)(pal_now_ns() - t0) * 1e-9);
		}
		fprintf(stderr, "mu bench: rep %u/%u%s", r + 1, reps, r + 1 == reps ? "\n" : "\r");
	}
	struct stat sp = stats(pp_v, reps), st = stats(tg_v, reps);
	double gib = (double)s.model->weight_bytes / (1024.0 * 1024.0 * 1024.0);
	const char *kpath = mu_kernels()->name, *load = s.copied ? "copy" : "map"; /* a failed copy falls back */
	uint64_t per_tok = s.model->bytes_per_token, rss = peak_rss(), ctx_bytes = s.ctx_mem_len;
	if (json) {
		printf("{\"model\":\"%s\",\"arch\":\"%s\",\"weight_bytes\":%" PRIu64 ",\"threads\":%u,\"reps\":%u", model,
		       mu_arch_name(hp->arch), s.model->weight_bytes, threads, reps);
		printf(",\"kernels\":\"%s\",\"load\":\"%s\",\"packed_bytes\":%" PRIu64 ",\"weight_bytes_per_token\":%" PRIu64
		       ",\"ctx_bytes\":%" PRIu64 ",\"peak_rss_bytes\":%" PRIu64,
		       kpath, load, s.model->packed ? s.model->pack_bytes : (uint64_t)0, per_tok, ctx_bytes, rss);
		if (pp)
			printf(",\"pp\":{\"n\":%u,\"tokens_per_s\":%.3f,\"stddev\":%.3f}", pp, sp.mean, sp.sd);
		if (tg)
			printf(",\"tg\":{\"n\":%u,\"tokens_per_s\":%.3f,\"stddev\":%.3f}", tg, st.mean, st.sd);
		printf("}\n");
	} else {
		char b1[16], b2[16], b3[16];
		printf("| %-28s | %9s | %7s | %6s | %16s | %7s | %4s | %10s | %10s | %10s |\n", "model", "size", "threads",
		       "test", "t/s", "kernels", "load", "read/token", "run state", "peak RSS");
		printf("| %-28s | %9s | %7s | %6s | %16s | %7s | %4s | %10s | %10s | %10s |\n", "----", "----", "----", "----",
		       "----", "----", "----", "----", "----", "----");
		const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
		human(per_tok, b1);
		human(ctx_bytes, b2);
		human(rss, b3);
		if (pp)
			printf("| %-28.28s | %5.2f GiB | %7u | pp%-4u | %8.2f ± %5.2f | %7s | %4s | %10s | %10s | %10s |\n", base,
			       gib, threads, pp, sp.mean, sp.sd, kpath, load, b1, b2, b3);
		if (tg)
			printf("| %-28.28s | %5.2f GiB | %7u | tg%-4u | %8.2f ± %5.2f | %7s | %4s | %10s | %10s | %10s |\n", base,
			       gib, threads, tg, st.mean, st.sd, kpath, load, b1, b2, b3);
	}
	code = 0;
	goto out;
fail:
	cli_error("bench", &err);
out:
	free(ids);
	free(pp_v);
	free(tg_v);
	session_close(&s);
	return code;
}
