/* tool_canary.c — a model with a known secret inside, and a search for that secret.
 *
 *   tool_canary write SEED OUT.gguf   a GGUF holding tensor "canary" (1 MiB of bytes drawn
 *                                     from SEED) and a small ordinary tensor
 *   tool_canary hash SEED             SHA-256 (hex) of the canary bytes
 *   tool_canary scan SEED FILE...     exit 1 if any FILE contains 64 or more consecutive
 *                                     canary bytes (reports file and offset), else 0
 *   tool_canary scan-model M.gguf FILE...
 *                                     the same with a real model's tensor data as the canary
 *                                     (its weights: what must never leave the enclave);
 *                                     32-byte blocks with fewer than 12 distinct byte values
 *                                     (runs of zeros, padding) are not part of the search
 *
 * The canary is regenerated from the seed in memory, so the search itself never writes it.
 * Every 32-byte block of the canary at an offset that is a multiple of 32 goes into a hash
 * set; any run of 63 or more canary bytes in a file contains one such block whole, so testing
 * every file offset against the set finds every leak of 64 bytes or more. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "pal/pal.h"
#include "seal/crypto.h"

#define CANARY_BYTES (1u << 20)
#define BLOCK 32u
#define N_BLOCKS (CANARY_BYTES / BLOCK)

static void make_canary(uint64_t seed, uint8_t *out)
{
	uint64_t s = seed ^ 0x6a09e667f3bcc908ull;
	for (size_t i = 0; i < CANARY_BYTES; i += 8) {
		uint64_t z = (s += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(out + i, &z, 8);
	}
}

static uint64_t block_key(const uint8_t *p)
{
	uint64_t k;
	memcpy(&k, p, 8);
	return k;
}

static int do_write(uint64_t seed, const char *out)
{
	struct mu_error err;
	uint8_t *canary = malloc(CANARY_BYTES);
	float small[64];
	for (int i = 0; i < 64; i++)
		small[i] = (float)i * 0.25f;
	make_canary(seed, canary);
	struct gguf_writer *w = gguf_writer_new(GGUF_DEFAULT_ALIGNMENT);
	uint64_t ne_c[1] = {CANARY_BYTES / 4}, ne_s[1] = {64};
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!canary || !w || fd < 0 || gguf_w_str(w, "general.architecture", "canary", &err) ||
	    gguf_w_tensor(w, "canary", MU_DTYPE_F32, 1, ne_c, &err) ||
	    gguf_w_tensor(w, "ordinary", MU_DTYPE_F32, 1, ne_s, &err) || gguf_w_begin(w, fd, &err) ||
	    gguf_w_data(w, canary, CANARY_BYTES, &err) || gguf_w_data(w, small, sizeof small, &err) ||
	    gguf_w_end(w, &err) || close(fd) != 0) {
		fprintf(stderr, "tool_canary: cannot write %s\n", out);
		return 1;
	}
	mu_wipe(canary, CANARY_BYTES);
	free(canary);
	gguf_writer_free(w);
	return 0;
}

static int distinct_bytes(const uint8_t *p)
{
	uint8_t seen[256] = {0};
	int n = 0;
	for (unsigned i = 0; i < BLOCK; i++)
		n += !seen[p[i]]++;
	return n;
}

/* Files searched for any run of 63+ bytes of canary[0..len). */
static int scan_files(const uint8_t *canary, size_t len, int argc, char **argv)
{
	uint32_t n_blocks = (uint32_t)(len / BLOCK), slots_n = 1;
	while (slots_n < 2 * n_blocks + 2)
		slots_n <<= 1;
	uint32_t *slots = calloc(slots_n, sizeof *slots); /* block index + 1 */
	int found = 0, shift = 64;
	for (uint32_t t = slots_n; t > 1; t >>= 1)
		shift--;
	if (!slots) {
		fprintf(stderr, "tool_canary: out of memory\n");
		return 1;
	}
	for (uint32_t b = 0; b < n_blocks; b++) {
		if (distinct_bytes(canary + (size_t)b * BLOCK) < 12)
			continue;
		uint32_t h = (uint32_t)(block_key(canary + (size_t)b * BLOCK) * 0x9e3779b97f4a7c15ull >> shift) & (slots_n - 1);
		while (slots[h])
			h = (h + 1) & (slots_n - 1);
		slots[h] = b + 1;
	}
	for (int f = 0; f < argc; f++) {
		struct pal_map m;
		struct mu_error err;
		if (pal_map_file(&m, argv[f], &err)) {
			fprintf(stderr, "tool_canary: %s\n", err.msg);
			found = 1;
			continue;
		}
		for (size_t off = 0; off + BLOCK <= m.len; off++) {
			uint32_t h = (uint32_t)(block_key(m.data + off) * 0x9e3779b97f4a7c15ull >> shift) & (slots_n - 1);
			for (; slots[h]; h = (h + 1) & (slots_n - 1))
				if (!memcmp(m.data + off, canary + (size_t)(slots[h] - 1) * BLOCK, BLOCK)) {
					printf("canary found: %s at offset %zu\n", argv[f], off);
					found = 1;
					off = m.len; /* one report per file */
					break;
				}
		}
		pal_unmap(&m);
	}
	free(slots);
	if (!found)
		printf("canary not found in %d files\n", argc);
	return found;
}

static int do_scan(uint64_t seed, int argc, char **argv)
{
	uint8_t *canary = malloc(CANARY_BYTES);
	if (!canary)
		return 1;
	make_canary(seed, canary);
	int found = scan_files(canary, CANARY_BYTES, argc, argv);
	mu_wipe(canary, CANARY_BYTES);
	free(canary);
	return found;
}

static int do_scan_model(const char *model, int argc, char **argv)
{
	struct pal_map m;
	struct mu_error err;
	struct gguf g;
	size_t mem_len = 0;
	void *mem = NULL;
	int found = 1;
	if (pal_map_file(&m, model, &err)) {
		fprintf(stderr, "tool_canary: %s\n", err.msg);
		return 1;
	}
	if (gguf_mem_size(m.data, m.len, &mem_len, &err) || !(mem = malloc(mem_len)) ||
	    gguf_parse(&g, m.data, m.len, mem, mem_len, &err)) {
		fprintf(stderr, "tool_canary: %s: not a GGUF model\n", model);
	} else {
		printf("canary: %s, %llu bytes of tensor data\n", model, (unsigned long long)g.data_size);
		found = scan_files(m.data + g.data_offset, (size_t)g.data_size, argc, argv);
	}
	free(mem);
	pal_unmap(&m);
	return found;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: tool_canary write SEED OUT.gguf | hash SEED | scan SEED FILE... | "
				"scan-model M.gguf FILE...\n");
		return 2;
	}
	if (!strcmp(argv[1], "scan-model"))
		return do_scan_model(argv[2], argc - 3, argv + 3);
	uint64_t seed = strtoull(argv[2], NULL, 10);
	if (!strcmp(argv[1], "write") && argc == 4)
		return do_write(seed, argv[3]);
	if (!strcmp(argv[1], "hash")) {
		uint8_t *canary = malloc(CANARY_BYTES), d[32];
		char hex[65];
		make_canary(seed, canary);
		mu_sha256(canary, CANARY_BYTES, d);
		mu_hex(d, 32, hex);
		printf("%s\n", hex);
		free(canary);
		return 0;
	}
	if (!strcmp(argv[1], "scan"))
		return do_scan(seed, argc - 3, argv + 3);
	fprintf(stderr, "tool_canary: unknown mode %s\n", argv[1]);
	return 2;
}
