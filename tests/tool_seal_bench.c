/* tool_seal_bench.c — unseal speed of a sealed model, split into its parts.
 *
 *   build/tests/tool_seal_bench KEYFILE FILE.mus [REPS] [THREADS...]
 *
 * For each thread count (default 1 and 2) prints the best of REPS (default 3) runs of:
 *   decrypt  every chunk authenticated and decrypted into pre-allocated locked memory, no
 *            plaintext digest (mu_unseal_bench_decrypt; the memory is wiped after)
 *   into     the full check (tags + pipelined SHA-256) into pre-allocated locked memory
 *   full     mu_unseal as the enclave calls it: allocation and locking included
 * and, once, SHA-256 alone over the ciphertext bytes (the bound on the flat digest) and the
 * time to allocate and lock the plaintext buffer. Each line carries the 1-minute load
 * average, because the machine may be shared. GB/s are plaintext bytes / 1e9 per second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pool.h"
#include "pal/pal.h"
#include "seal/unseal.h"

static double load1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static double secs_since(uint64_t t0) { return (double)(pal_now_ns() - t0) / 1e9; }

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: tool_seal_bench KEYFILE FILE.mus [REPS] [THREADS...]\n");
		return 2;
	}
	struct mu_error err;
	uint8_t *keyb;
	size_t keylen;
	struct pal_map m;
	if (pal_read_file(argv[1], 64, &keyb, &keylen, &err) || keylen != MU_KEY_LEN) {
		fprintf(stderr, "key: %s\n", keylen != MU_KEY_LEN ? "not 32 bytes" : err.msg);
		return 1;
	}
	uint8_t key[MU_KEY_LEN];
	memcpy(key, keyb, sizeof key);
	mu_wipe(keyb, keylen);
	pal_free(keyb, keylen + 1);
	if (pal_map_file(&m, argv[2], &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	int reps = argc > 3 ? atoi(argv[3]) : 3;
	int threads[16] = {1, 2}, nt = 2;
	if (argc > 4) {
		nt = 0;
		for (int i = 4; i < argc && nt < 16; i++)
			threads[nt++] = atoi(argv[i]);
	}
	struct mu_sealed_header h;
	if (mu_unseal_header(m.data, m.len, key, argv[2], &h, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	double gb = (double)h.plaintext_size / 1e9;
	printf("%s: %.3f GB plaintext, %llu chunks of %u KiB, AES-GCM %s\n", argv[2], gb,
	       (unsigned long long)h.n_chunks, h.chunk_size >> 10, mu_gcm_accelerated() ? "AES-NI+PCLMUL" : "constant-time software");

	uint8_t d[MU_SHA256_LEN];
	uint64_t t0 = pal_now_ns();
	mu_sha256(m.data, m.len, d);
	double s = secs_since(t0);
	printf("  sha256 alone       1 thread  %6.3f s  %5.2f GB/s   load %.2f\n", s, (double)m.len / 1e9 / s, load1());

	struct pal_secret mem;
	t0 = pal_now_ns();
	if (pal_secret_alloc(&mem, (size_t)h.plaintext_size, PAL_SECRET_NO_MEMFD, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	s = secs_since(t0);
	printf("  allocate and lock            %6.3f s               load %.2f  (%s)\n", s, load1(),
	       pal_secret_prot_name(mem.prot));

	for (int k = 0; k < nt; k++) {
		struct mu_pool *pool;
		if (mu_pool_create(&pool, threads[k], &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		double best[3] = {1e30, 1e30, 1e30};
		for (int r = 0; r < reps; r++) {
			t0 = pal_now_ns();
			if (mu_unseal_bench_decrypt(m.data, m.len, key, pool, mem.data, mem.len, &err))
				goto fail;
			s = secs_since(t0);
			best[0] = s < best[0] ? s : best[0];
			t0 = pal_now_ns();
			if (mu_unseal_into(m.data, m.len, key, pool, 0, argv[2], mem.data, mem.len, &h, &err))
				goto fail;
			s = secs_since(t0);
			best[1] = s < best[1] ? s : best[1];
			pal_secret_wipe(&mem, mem.len);
			struct mu_unsealed u;
			t0 = pal_now_ns();
			if (mu_unseal(m.data, m.len, key, pool, 0, argv[2], &u, &err))
				goto fail;
			s = secs_since(t0);
			mu_unsealed_free(&u);
			best[2] = s < best[2] ? s : best[2];
		}
		static const char *what[3] = {"decrypt (no digest)", "into (tags+sha256)", "full mu_unseal"};
		for (int i = 0; i < 3; i++)
			printf("  %-19s %d thread%s %6.3f s  %5.2f GB/s   load %.2f\n", what[i], threads[k],
			       threads[k] == 1 ? " " : "s", best[i], gb / best[i], load1());
		mu_pool_destroy(pool);
	}
	pal_secret_free(&mem);
	pal_unmap(&m);
	mu_wipe(key, sizeof key);
	return 0;
fail:
	fprintf(stderr, "%s\n", err.msg);
	return 1;
}
