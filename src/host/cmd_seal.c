/* cmd_seal.c — `mu keygen`, `mu seal` and `mu unseal --check`: the model owner's tools for
 * the sealed-model format (seal/sealed.h, docs/sealed-format.md).
 *
 * A key file is exactly 32 raw bytes, created mode 0600 and never overwritten. Sealing reads
 * the GGUF through a read-only map, hashes it, then encrypts bounded batches of chunks in
 * parallel (one AES-GCM context per thread) and appends each batch to a temporary file that
 * is fsync'd and renamed into place. `mu unseal --check` runs the enclave's own unseal path
 * into locked memory and reports; there is deliberately no way to write plaintext.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/limits.h"
#include "host/cli.h"
#include "seal/crypto.h"
#include "seal/sealed.h"
#include "seal/unseal.h"

#define SEAL_BATCH_BYTES (64u << 20) /* plaintext per encryption batch (at least one chunk per thread) */
#define HASH_STEP (64u << 20)

/* ---- key files ---- */

/* Reads a key file: exactly 32 bytes; warns when group or others may read it. */
static enum mu_err key_read(const char *cmd, const char *path, uint8_t key[static MU_KEY_LEN], struct mu_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot open key file: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return mu_errf(err, MU_ERR_IO, "%s: not a regular file", path);
	}
	if (st.st_size != MU_KEY_LEN) {
		close(fd);
		return mu_errf(err, MU_ERR_FORMAT,
			       "%s: a key file holds exactly %d bytes, this one has %lld (make one with mu keygen)", path,
			       MU_KEY_LEN, (long long)st.st_size);
	}
	if (st.st_mode & (S_IRGRP | S_IROTH))
		fprintf(stderr, "mu %s: warning: key file %s is readable by group or others (chmod 600 %s)\n", cmd, path,
			path);
	size_t got = 0;
	while (got < MU_KEY_LEN) {
		ssize_t r = read(fd, key + got, MU_KEY_LEN - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			mu_wipe(key, MU_KEY_LEN);
			return mu_errf(err, MU_ERR_IO, "%s: short read of the key file", path);
		}
		got += (size_t)r;
	}
	close(fd);
	return MU_OK;
}

static void print_key_id(const char *label, const uint8_t id[static MU_SEALED_KEY_ID_LEN])
{
	char hex[2 * MU_SEALED_KEY_ID_LEN + 1];
	mu_hex(id, MU_SEALED_KEY_ID_LEN, hex);
	printf("%s%s\n", label, hex);
}

static void keygen_usage(FILE *f)
{
	fprintf(f, "usage: mu keygen -o KEYFILE\n\n"
		   "Writes a new random 32-byte model key (raw bytes) to KEYFILE with mode 0600 and prints\n"
		   "its key id. Never overwrites an existing file.\n");
}

int cmd_keygen(int argc, char **argv)
{
	const char *out = NULL;
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			keygen_usage(stdout);
			return 0;
		} else if ((r = cli_opt(argc, argv, &i, "-o", "--output", &out)) != 0) {
			if (r < 0)
				return 2;
		} else {
			fprintf(stderr, "mu keygen: unexpected argument '%s'\n", argv[i]);
			keygen_usage(stderr);
			return 2;
		}
	}
	if (!out) {
		keygen_usage(stderr);
		return 2;
	}

	uint8_t key[MU_KEY_LEN], id[MU_SEALED_KEY_ID_LEN];
	struct mu_error err;
	if (pal_random(key, sizeof key, &err)) {
		mu_wipe(key, sizeof key);
		cli_error("keygen", &err);
		return 1;
	}
	int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		mu_wipe(key, sizeof key);
		if (e == EEXIST)
			fprintf(stderr, "mu keygen: %s already exists; refusing to overwrite a key (remove it first if you "
					"really mean to replace it)\n",
				out);
		else
			fprintf(stderr, "mu keygen: cannot create %s: %s\n", out, strerror(e));
		return 1;
	}
	enum mu_err rc = MU_OK;
	if (fchmod(fd, 0600) != 0) /* the umask can only narrow 0600, but be explicit */
		rc = mu_errf(&err, MU_ERR_IO, "%s: cannot set mode 0600: %s", out, strerror(errno));
	if (rc == MU_OK)
		rc = outfile_write_all(fd, key, sizeof key, out, &err);
	if (rc == MU_OK && fsync(fd) != 0)
		rc = mu_errf(&err, MU_ERR_IO, "%s: fsync failed: %s", out, strerror(errno));
	if (close(fd) != 0 && rc == MU_OK)
		rc = mu_errf(&err, MU_ERR_IO, "%s: close failed: %s", out, strerror(errno));
	mu_sealed_key_id(key, id);
	mu_wipe(key, sizeof key);
	if (rc) {
		unlink(out);
		cli_error("keygen", &err);
		return 1;
	}
	printf("%s: new model key, ", out);
	print_key_id("key id ", id);
	return 0;
}

/* ---- progress ---- */

struct progress {
	int tty;
	int last;
};

static void progress_show(struct progress *p, const char *what, uint64_t done, uint64_t total)
{
	if (!p->tty)
		return;
	int pct = total ? (int)(done * 100 / total) : 100;
	if (pct == p->last)
		return;
	p->last = pct;
	char bar[41];
	int fill = pct * 40 / 100;
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = '\0';
	fprintf(stderr, "\rmu seal: %-10s [%s] %3d%%", what, bar, pct);
	fflush(stderr);
}

static void progress_end(struct progress *p)
{
	if (p->tty && p->last >= 0)
		fprintf(stderr, "\r\033[K");
	p->last = -1;
}

/* ---- seal ---- */

struct seal_job {
	const uint8_t *pt;
	uint8_t *buf; /* the batch: chunks first .. first+count-1 laid out as in the file */
	const struct mu_sealed_header *h;
	struct mu_gcm *gcm; /* one per thread */
	uint64_t first, count;
	_Atomic int failed;
};

static void seal_worker(void *ctx, int ith, int nth)
{
	struct seal_job *j = ctx;
	unsigned long b, e;
	uint64_t base_pt, base_file;
	size_t base_len;
	mu_sealed_chunk_span(j->h, j->first, &base_pt, &base_len, &base_file);
	mu_pool_split((unsigned long)j->count, ith, nth, &b, &e);
	for (unsigned long k = b; k < e; k++) {
		uint64_t i = j->first + k, pt_off, file_off;
		size_t len;
		mu_sealed_chunk_span(j->h, i, &pt_off, &len, &file_off);
		uint8_t *dst = j->buf + (file_off - base_file);
		if (len)
			memcpy(dst, j->pt + pt_off, len);
		if (mu_sealed_chunk_seal(&j->gcm[ith], j->h->hash, i, i + 1 == j->h->n_chunks, dst, len, dst + len))
			atomic_store(&j->failed, 1);
	}
}

/* Parses a byte count with an optional K/KiB or M/MiB suffix (binary units). */
static int parse_bytes(const char *flag, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s < '0' || *s > '9')
		goto bad;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	uint64_t mul = 1;
	if (!strcmp(end, "K") || !strcmp(end, "KiB") || !strcmp(end, "k"))
		mul = 1024;
	else if (!strcmp(end, "M") || !strcmp(end, "MiB"))
		mul = 1024 * 1024;
	else if (*end)
		goto bad;
	if (v > UINT64_MAX / mul)
		goto bad;
	*out = v * mul;
	return 0;
bad:
	fprintf(stderr, "mu: %s: '%s' is not a byte count (e.g. 4194304, 4096K, 4M)\n", flag, s);
	return -1;
}

static int default_threads(void)
{
	int n = pal_cpu_count();
	return n > MU_MAX_THREADS ? MU_MAX_THREADS : n;
}

/* Hashes, then encrypts and writes in batches. key is wiped by the caller. */
static enum mu_err seal_file(const struct pal_map *in, int fd, const char *tmp, const uint8_t key[static MU_KEY_LEN],
			     uint32_t chunk_size, struct mu_pool *pool, struct mu_sealed_header *h, struct mu_error *err)
{
	struct progress pg = {isatty(2), -1};
	uint8_t salt[MU_SEALED_SALT_LEN], digest[MU_SHA256_LEN], hdr[MU_SEALED_HEADER_LEN];
	struct mu_sha256_ctx sha;
	struct pal_secret sec = {0}, batch = {0};
	enum mu_err rc;
	int nth = mu_pool_threads(pool);

	if ((rc = pal_random(salt, sizeof salt, err)))
		return rc;
	mu_sha256_init(&sha);
	for (size_t off = 0; off < in->len; off += HASH_STEP) {
		size_t n = in->len - off < HASH_STEP ? in->len - off : HASH_STEP;
		mu_sha256_update(&sha, in->data + off, n);
		progress_show(&pg, "hashing", off + n, in->len);
	}
	mu_sha256_final(&sha, digest);
	mu_wipe(&sha, sizeof sha);
	progress_end(&pg);
	if ((rc = mu_sealed_header_build(h, hdr, key, salt, chunk_size, in->len, digest, err)))
		return rc;
	if ((rc = outfile_write_all(fd, hdr, sizeof hdr, tmp, err)))
		return rc;

	/* Key schedules and the plaintext batch live in secret memory (degrading quietly: this
	 * is the owner's machine, which holds the plaintext file anyway). */
	uint64_t per = SEAL_BATCH_BYTES / chunk_size;
	if (per < (uint64_t)nth)
		per = (uint64_t)nth;
	if (per > h->n_chunks)
		per = h->n_chunks;
	size_t batch_len = (size_t)per * ((size_t)chunk_size + MU_SEALED_TAG_LEN);
	if ((rc = pal_secret_alloc(&sec, 64 + (size_t)nth * sizeof(struct mu_gcm), PAL_SECRET_ALLOW_UNLOCKED, err)) ||
	    (rc = pal_secret_alloc(&batch, batch_len, PAL_SECRET_ALLOW_UNLOCKED | PAL_SECRET_NO_MEMFD, err)))
		goto out;
	uint8_t *k_chunk = sec.data; /* 32 bytes, then the contexts at a 64-byte boundary */
	struct mu_gcm *gcm = (struct mu_gcm *)(void *)(sec.data + 64);
	rc = mu_sealed_derive(key, salt, k_chunk, NULL);
	for (int t = 0; rc == MU_OK && t < nth; t++)
		rc = mu_gcm_init(&gcm[t], k_chunk, MU_KEY_LEN);
	mu_wipe(k_chunk, MU_KEY_LEN);
	if (rc) {
		mu_errf(err, rc, "chunk key setup failed");
		goto out;
	}

	struct seal_job j = {in->data, batch.data, h, gcm, 0, 0, 0};
	for (uint64_t first = 0; first < h->n_chunks; first += per) {
		uint64_t count = h->n_chunks - first < per ? h->n_chunks - first : per;
		uint64_t pt0, f0, pt1, f1;
		size_t l0, l1;
		j.first = first;
		j.count = count;
		mu_pool_run(pool, seal_worker, &j);
		if (atomic_load(&j.failed)) {
			rc = mu_errf(err, MU_ERR_INTERNAL, "encrypting a chunk failed");
			goto out;
		}
		mu_sealed_chunk_span(h, first, &pt0, &l0, &f0);
		mu_sealed_chunk_span(h, first + count - 1, &pt1, &l1, &f1);
		if ((rc = outfile_write_all(fd, batch.data, (size_t)(f1 + l1 + MU_SEALED_TAG_LEN - f0), tmp, err)))
			goto out;
		progress_show(&pg, "encrypting", first + count, h->n_chunks);
	}
	progress_end(&pg);
	for (int t = 0; t < nth; t++)
		mu_gcm_free(&gcm[t]);
out:
	progress_end(&pg);
	pal_secret_free(&sec);
	pal_secret_free(&batch);
	return rc;
}

static void seal_usage(FILE *f)
{
	fprintf(f, "usage: mu seal --key KEYFILE [--chunk-size N] [-t THREADS] [--force] IN.gguf OUT.mus\n\n"
		   "Encrypts and authenticates a GGUF model for the enclave (docs/sealed-format.md):\n"
		   "AES-256-GCM in chunks of N bytes (a power of two from 64K to 64M; default 4M),\n"
		   "keys derived from the 32-byte model key in KEYFILE (see mu keygen). IN must be a\n"
		   "valid GGUF. OUT is written to a temporary file and renamed into place; an existing\n"
		   "OUT is replaced only with --force.\n");
}

int cmd_seal(int argc, char **argv)
{
	const char *key_path = NULL, *chunk_s = NULL, *threads_s = NULL, *in_path = NULL, *out_path = NULL;
	int force = 0;
	for (int i = 1; i < argc; i++) {
		int r = 0;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			seal_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--force")) {
			force = 1;
		} else if ((r = cli_opt(argc, argv, &i, "--key", "-k", &key_path)) ||
			   (r = cli_opt(argc, argv, &i, "--chunk-size", NULL, &chunk_s)) ||
			   (r = cli_opt(argc, argv, &i, "-t", "--threads", &threads_s))) {
			if (r < 0)
				return 2;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "mu seal: unknown option '%s'\n", argv[i]);
			seal_usage(stderr);
			return 2;
		} else if (!in_path) {
			in_path = argv[i];
		} else if (!out_path) {
			out_path = argv[i];
		} else {
			fprintf(stderr, "mu seal: unexpected argument '%s'\n", argv[i]);
			seal_usage(stderr);
			return 2;
		}
	}
	if (!key_path || !in_path || !out_path) {
		seal_usage(stderr);
		return 2;
	}
	uint64_t chunk = MU_SEALED_CHUNK_DEFAULT;
	if (chunk_s && parse_bytes("--chunk-size", chunk_s, &chunk))
		return 2;
	if (!mu_sealed_chunk_size_valid(chunk)) {
		fprintf(stderr, "mu seal: --chunk-size: %" PRIu64 " is not a power of two from 64K (%u) to 64M (%u)\n",
			chunk, MU_SEALED_CHUNK_MIN, MU_SEALED_CHUNK_MAX);
		return 2;
	}
	uint32_t nth = (uint32_t)default_threads();
	if (threads_s && cli_u32("-t", threads_s, 1, MU_MAX_THREADS, &nth))
		return 2;
	if (!force && access(out_path, F_OK) == 0) {
		fprintf(stderr, "mu seal: %s exists (use --force to replace it)\n", out_path);
		return 1;
	}

	struct mu_error err;
	uint8_t key[MU_KEY_LEN];
	struct pal_map in = {0};
	void *gmem = NULL;
	size_t gmem_len = 0;
	struct mu_pool *pool = NULL;
	struct gguf g;
	char tmp[4096];
	int fd = -1, status = 1;
	uint64_t t0 = pal_now_ns();

	if (key_read("seal", key_path, key, &err)) {
		cli_error("seal", &err);
		return 1;
	}
	if (pal_map_file(&in, in_path, &err))
		goto fail;
	/* A sealed non-model helps nobody: the input must be a valid GGUF. */
	if (gguf_mem_size(in.data, in.len, &gmem_len, &err)) {
		mu_err_prefix(&err, "%s: not a valid GGUF model, refusing to seal it", in_path);
		goto fail;
	}
	if (!(gmem = pal_alloc(gmem_len, 64))) {
		mu_errf(&err, MU_ERR_NOMEM, "out of memory for the GGUF tables");
		goto fail;
	}
	if (gguf_parse(&g, in.data, in.len, gmem, gmem_len, &err)) {
		mu_err_prefix(&err, "%s: not a valid GGUF model, refusing to seal it", in_path);
		goto fail;
	}
	if (mu_pool_create(&pool, (int)nth, &err))
		goto fail;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out_path, (long)getpid()) >= sizeof tmp) {
		mu_errf(&err, MU_ERR_ARG, "output path too long");
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		mu_errf(&err, MU_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
		goto fail;
	}
	struct mu_sealed_header h;
	enum mu_err rc = seal_file(&in, fd, tmp, key, (uint32_t)chunk, pool, &h, &err);
	if (rc == MU_OK && fsync(fd) != 0)
		rc = mu_errf(&err, MU_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
	if (close(fd) != 0 && rc == MU_OK)
		rc = mu_errf(&err, MU_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
	fd = -1;
	if (rc == MU_OK)
		rc = outfile_commit(tmp, out_path, force, &err);
	if (rc) {
		unlink(tmp);
		goto fail;
	}
	double secs = (double)(pal_now_ns() - t0) / 1e9;
	printf("sealed %zu bytes in %" PRIu64 " chunks, %.0f MB/s\n", in.len, h.n_chunks,
	       secs > 0 ? (double)in.len / secs / 1e6 : 0.0);
	status = 0;
	goto out;
fail:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	cli_error("seal", &err);
out:
	mu_wipe(key, sizeof key);
	mu_pool_destroy(pool);
	pal_free(gmem, gmem_len);
	pal_unmap(&in);
	return status;
}

/* ---- unseal --check ---- */

static void unseal_usage(FILE *f)
{
	fprintf(f, "usage: mu unseal --check --key KEYFILE [-t THREADS] [--allow-unlocked] [--secretmem] IN.mus\n\n"
		   "Runs the enclave's unseal path on IN: every header check, every chunk tag and the\n"
		   "plaintext SHA-256, decrypting into locked, non-dumpable memory that is wiped after.\n"
		   "Prints the key id, plaintext size and digest, the memory protection and the speed.\n"
		   "No plaintext is written anywhere: there is deliberately no option to do so.\n"
		   "  --allow-unlocked  go on (with a warning) when memory cannot be locked\n"
		   "  --secretmem       decrypt into memfd_secret memory (slow to fault in on a VM)\n");
}

int cmd_unseal(int argc, char **argv)
{
	const char *key_path = NULL, *threads_s = NULL, *in_path = NULL;
	int check = 0;
	unsigned flags = 0;
	for (int i = 1; i < argc; i++) {
		int r = 0;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			unseal_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--check")) {
			check = 1;
		} else if (!strcmp(argv[i], "--allow-unlocked")) {
			flags |= MU_UNSEAL_ALLOW_UNLOCKED;
		} else if (!strcmp(argv[i], "--secretmem")) {
			flags |= MU_UNSEAL_SECRETMEM;
		} else if ((r = cli_opt(argc, argv, &i, "--key", "-k", &key_path)) ||
			   (r = cli_opt(argc, argv, &i, "-t", "--threads", &threads_s))) {
			if (r < 0)
				return 2;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "mu unseal: unknown option '%s'\n", argv[i]);
			unseal_usage(stderr);
			return 2;
		} else if (!in_path) {
			in_path = argv[i];
		} else {
			fprintf(stderr, "mu unseal: unexpected argument '%s'\n", argv[i]);
			unseal_usage(stderr);
			return 2;
		}
	}
	if (!check) {
		fprintf(stderr, "mu unseal: only --check is available: plaintext weights never leave the enclave, so "
				"there is no option to write them\n");
		return 2;
	}
	if (!key_path || !in_path) {
		unseal_usage(stderr);
		return 2;
	}
	uint32_t nth = (uint32_t)default_threads();
	if (threads_s && cli_u32("-t", threads_s, 1, MU_MAX_THREADS, &nth))
		return 2;

	struct mu_error err;
	uint8_t key[MU_KEY_LEN];
	struct pal_map in = {0};
	struct mu_pool *pool = NULL;
	struct mu_unsealed u = {0};
	void *gmem = NULL;
	size_t gmem_len = 0;
	int status = 1;

	if (key_read("unseal", key_path, key, &err)) {
		cli_error("unseal", &err);
		return 1;
	}
	if (pal_map_file(&in, in_path, &err) || mu_pool_create(&pool, (int)nth, &err))
		goto fail;
	uint64_t t0 = pal_now_ns();
	if (mu_unseal(in.data, in.len, key, pool, flags, in_path, &u, &err))
		goto fail;
	double secs = (double)(pal_now_ns() - t0) / 1e9;
	mu_wipe(key, sizeof key);

	/* The enclave hands this span to the GGUF reader; do the same, so a sealed file that is
	 * not a model is caught here too. */
	struct gguf g;
	enum mu_err grc = gguf_mem_size(u.mem.data, (size_t)u.size, &gmem_len, &err);
	if (grc == MU_OK && !(gmem = pal_alloc(gmem_len, 64)))
		grc = mu_errf(&err, MU_ERR_NOMEM, "out of memory for the GGUF tables");
	if (grc == MU_OK)
		grc = gguf_parse(&g, u.mem.data, (size_t)u.size, gmem, gmem_len, &err);
	if (grc) {
		mu_err_prefix(&err, "%s: authentic, but the plaintext is not a valid GGUF", in_path);
		goto fail;
	}

	char hex[2 * MU_SHA256_LEN + 1];
	printf("%s: ok: header, %" PRIu64 " chunk tags and the plaintext SHA-256 verified\n", in_path, u.n_chunks);
	print_key_id("key id     ", u.key_id);
	printf("plaintext  %" PRIu64 " bytes (%.1f MiB), GGUF v%u with %" PRIu64 " tensors, %" PRIu64
	       " chunks of %" PRIu32 " KiB\n",
	       u.size, (double)u.size / (1024.0 * 1024.0), g.version, g.n_tensors, u.n_chunks, u.chunk_size >> 10);
	mu_hex(u.digest, MU_SHA256_LEN, hex);
	printf("sha256     %s\n", hex);
	printf("memory     %s\n", pal_secret_prot_name(u.mem.prot));
	printf("unsealed   in %.3f s, %.2f GB/s on %u thread%s\n", secs, secs > 0 ? (double)u.size / secs / 1e9 : 0.0,
	       nth, nth == 1 ? "" : "s");
	if (u.mem.prot == PAL_SECRET_UNLOCKED)
		fprintf(stderr, "mu unseal: warning: the plaintext memory could not be locked (it may be swapped)\n");
	status = 0;
	goto out;
fail:
	cli_error("unseal", &err);
out:
	mu_wipe(key, sizeof key);
	pal_free(gmem, gmem_len);
	mu_unsealed_free(&u);
	mu_pool_destroy(pool);
	pal_unmap(&in);
	return status;
}
