/* apikeys.c — the HTTP API's keys, their request-rate buckets and output quotas; see apikeys.h.
 *
 * Loading parses the whole file into a fresh array and checks every member before anything is
 * handed to the caller: a file that fails any check loads nothing. mu_keys_save writes only
 * what mu_keys_load accepts (the same checks run first), so a saved file always loads again.
 *
 * The request-rate bucket reuses struct mu_bucket (base/bucket.h) with a scaled token: one
 * bucket token is 1/60 of a request. A rate of R requests per minute is R/60 requests per
 * second, that is R tokens per second, so the bucket's "bytes per second" is exactly R and a
 * request takes 60 tokens; the burst of B requests is 60·B tokens. Time stays in nanoseconds,
 * so the arithmetic is the bucket's exact integer arithmetic with nothing rounded (scaling the
 * time instead, now_ns / 60, would round every refill interval that 60 ns does not divide).
 * The price is the bucket's burst limit: 60·B <= MU_EGRESS_MAX_BURST, so B <= KEYS_MAX_BURST,
 * and the rate is capped so that the default burst (rate / 6) always fits too.
 *
 * mu_keys_find compares the token's hash with every key's hash, accumulating the difference
 * with OR and selecting the index with masks (BearSSL's EQ/MUX style): the time it takes
 * depends on the number of keys only.
 */
#define _GNU_SOURCE
#include "host/apikeys.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/limits.h"
#include "host/cli.h"
#include "pal/pal.h"
#include "seal/crypto.h"
#include "wire/json.h"

#define KEYS_MAX_FILE (1u << 20)     /* bytes of a keys file; 1024 keys take about 230 KB */
#define KEYS_MAX_TOKENS (1u << 16)   /* room for MU_KEYS_MAX keys of 13 tokens and more, so that
				      * one key too many is refused by name, not by the parser */
#define KEYS_TOKEN_SCALE 60u         /* bucket tokens per request (see the top of this file) */
#define KEYS_MAX_BURST (MU_EGRESS_MAX_BURST / KEYS_TOKEN_SCALE) /* 71582788 requests */
#define KEYS_MAX_RPM (6 * KEYS_MAX_BURST)                       /* 429496728 requests a minute */
#define KEYS_MAX_BYTES ((uint64_t)INT64_MAX)                    /* what the JSON reader returns */
#define NS_PER_S 1000000000ull

static const char *const root_members[] = {"version", "keys"};
static const char *const key_members[] = {"id",    "sha256",             "requests_per_minute",
					  "burst", "daily_output_bytes", "total_output_bytes"};

static uint32_t default_burst(uint32_t rpm) { return rpm / 6 > 1 ? rpm / 6 : 1; }

static int id_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
	       c == '-';
}

/* The checks both load and save apply to one key (the ranges json_get_int already enforced on
 * load are repeated for save, whose input is a struct anybody may have filled). */
static enum mu_err check_key(const char *path, uint32_t i, const struct mu_apikey *k, struct mu_error *err)
{
	size_t n = strnlen(k->id, sizeof k->id);
	if (n == 0 || n > MU_KEY_ID_MAX)
		return mu_errf(err, MU_ERR_FORMAT, "%s: keys[%" PRIu32 "].id: must be 1 to %d characters", path, i,
			       MU_KEY_ID_MAX);
	for (size_t j = 0; j < n; j++)
		if (!id_char_ok((unsigned char)k->id[j]))
			return mu_errf(err, MU_ERR_FORMAT,
				       "%s: keys[%" PRIu32 "].id: character %zu is not one of A-Z a-z 0-9 _ . -", path, i,
				       j + 1);
	if (k->requests_per_minute > KEYS_MAX_RPM)
		return mu_errf(err, MU_ERR_RANGE, "%s: keys[%" PRIu32 "].requests_per_minute: at most %llu", path, i,
			       (unsigned long long)KEYS_MAX_RPM);
	if (k->burst > KEYS_MAX_BURST)
		return mu_errf(err, MU_ERR_RANGE, "%s: keys[%" PRIu32 "].burst: at most %llu", path, i,
			       (unsigned long long)KEYS_MAX_BURST);
	if (k->requests_per_minute > 0 && k->burst == 0)
		return mu_errf(err, MU_ERR_RANGE,
			       "%s: keys[%" PRIu32 "].burst: must be at least 1 when requests_per_minute is set", path, i);
	if (k->daily_bytes > KEYS_MAX_BYTES || k->total_bytes > KEYS_MAX_BYTES)
		return mu_errf(err, MU_ERR_RANGE, "%s: keys[%" PRIu32 "]: output limits are at most %" PRIu64 " bytes",
			       path, i, KEYS_MAX_BYTES);
	return MU_OK;
}

/* No two keys share an id or a hash. Quadratic, but n <= MU_KEYS_MAX and this runs at load. */
static enum mu_err check_unique(const char *path, const struct mu_apikey *k, uint32_t n, struct mu_error *err)
{
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = 0; j < i; j++) {
			if (!strcmp(k[i].id, k[j].id))
				return mu_errf(err, MU_ERR_FORMAT, "%s: keys[%" PRIu32 "].id: \"%s\" is also keys[%" PRIu32 "]",
					       path, i, k[i].id, j);
			if (!memcmp(k[i].hash, k[j].hash, sizeof k[i].hash))
				return mu_errf(err, MU_ERR_FORMAT,
					       "%s: keys[%" PRIu32 "].sha256: the same hash as keys[%" PRIu32 "]", path, i, j);
		}
	return MU_OK;
}

/* ---- loading ---- */

/* An integer member of obj in [0, hi]; *present says whether it was there at all (NULL: it
 * must be). where is "keys[3]" or "" for the root, for the message. */
static enum mu_err get_uint(const struct json_doc *d, uint32_t obj, const char *path, const char *where,
			    const char *name, uint64_t hi, uint64_t *out, int *present, struct mu_error *err)
{
	const char *dot = *where ? "." : "";
	uint32_t t = json_obj_get(d, obj, name);
	int64_t v = 0;
	if (present)
		*present = t != JSON_NONE;
	if (t == JSON_NONE) {
		if (present)
			return MU_OK;
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s%smissing member \"%s\"", path, where, *where ? ": " : "",
			       name);
	}
	if (json_type(d, t) != JSON_NUMBER)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s%s%s: must be a number, not %s", path, where, dot, name,
			       json_type_name((enum json_type)json_type(d, t)));
	if (json_get_int(d, t, 0, (int64_t)hi, &v, NULL) != MU_OK)
		return mu_errf(err, MU_ERR_RANGE, "%s: %s%s%s: must be an integer from 0 to %" PRIu64, path, where, dot,
			       name, hi);
	*out = (uint64_t)v;
	return MU_OK;
}

static enum mu_err load_key(const struct json_doc *d, uint32_t obj, const char *path, uint32_t i,
			    struct mu_apikey *k, struct mu_error *err)
{
	char where[32];
	enum mu_err rc;
	snprintf(where, sizeof where, "keys[%" PRIu32 "]", i);

	if (json_type(d, obj) != JSON_OBJECT)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s: must be an object", path, where);
	if ((rc = json_obj_only(d, obj, key_members, sizeof key_members / sizeof key_members[0], err)) != MU_OK) {
		mu_err_prefix(err, "%s: %s", path, where);
		return rc;
	}

	uint32_t t = json_obj_get(d, obj, "id");
	if (t == JSON_NONE)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s: missing member \"id\"", path, where);
	if (json_type(d, t) != JSON_STRING)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s.id: must be a string", path, where);
	if (json_str_len(d, t) == 0 || json_str_len(d, t) > MU_KEY_ID_MAX)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s.id: must be 1 to %d characters", path, where, MU_KEY_ID_MAX);
	size_t idn = 0;
	if ((rc = json_str_decode(d, t, k->id, sizeof k->id, &idn, err)) != MU_OK) {
		mu_err_prefix(err, "%s: %s.id", path, where);
		return rc;
	}
	if (strlen(k->id) != idn) /* a \u0000 inside; check_key sees only the C string */
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s.id: character %zu is not one of A-Z a-z 0-9 _ . -", path,
			       where, strlen(k->id) + 1);

	t = json_obj_get(d, obj, "sha256");
	if (t == JSON_NONE)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s: missing member \"sha256\"", path, where);
	if (json_type(d, t) != JSON_STRING)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s.sha256: must be a string", path, where);
	/* 64 hex digits, either case (mu_unhex); mu keys writes lower case. */
	char hex[2 * MU_SHA256_LEN + 1];
	size_t hn = 0;
	if (json_str_len(d, t) != 2 * MU_SHA256_LEN || json_str_decode(d, t, hex, sizeof hex, &hn, NULL) != MU_OK ||
	    mu_unhex(hex, hn, k->hash, sizeof k->hash) != 0)
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s.sha256: not 64 hex digits", path, where);

	uint64_t rpm = 0, burst = 0;
	int has_burst = 0;
	if ((rc = get_uint(d, obj, path, where, "requests_per_minute", KEYS_MAX_RPM, &rpm, NULL, err)) != MU_OK ||
	    (rc = get_uint(d, obj, path, where, "burst", KEYS_MAX_BURST, &burst, &has_burst, err)) != MU_OK ||
	    (rc = get_uint(d, obj, path, where, "daily_output_bytes", KEYS_MAX_BYTES, &k->daily_bytes, NULL, err)) !=
		    MU_OK ||
	    (rc = get_uint(d, obj, path, where, "total_output_bytes", KEYS_MAX_BYTES, &k->total_bytes, NULL, err)) !=
		    MU_OK)
		return rc;
	k->requests_per_minute = (uint32_t)rpm;
	k->burst = has_burst ? (uint32_t)burst : default_burst(k->requests_per_minute);
	return check_key(path, i, k, err);
}

enum mu_err mu_keys_load(struct mu_keys *ks, const char *path, struct mu_error *err)
{
	const struct json_limits lim = {.max_bytes = KEYS_MAX_FILE,
					.max_depth = 4, /* root > keys > one key; one more so that a
							 * member of the wrong type is named */
					.max_tokens = KEYS_MAX_TOKENS,
					.max_string = 4 * MU_SHA256_LEN,
					.max_number = 32,
					.flags = 0};
	uint8_t *src = NULL;
	size_t len = 0, need = 0;
	void *mem = NULL;
	struct mu_apikey *k = NULL;
	struct json_doc d;
	uint64_t version = 0;
	uint32_t n = 0;
	enum mu_err rc;

	memset(ks, 0, sizeof *ks);
	if ((rc = pal_read_file(path, KEYS_MAX_FILE, &src, &len, err)) != MU_OK)
		return rc;
	if ((rc = json_mem_size(&lim, len, &need, err)) != MU_OK) {
		mu_err_prefix(err, "%s", path);
		goto out;
	}
	if (!(mem = pal_alloc(need, 16))) {
		rc = mu_errf(err, MU_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	if ((rc = json_parse(&d, src, len, &lim, mem, need, err)) != MU_OK) {
		mu_err_prefix(err, "%s: not a valid keys file", path);
		goto out;
	}
	if (json_type(&d, 0) != JSON_OBJECT) {
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: a keys file is one JSON object", path);
		goto out;
	}
	/* The version first: a later version may have members this build does not know. */
	if ((rc = get_uint(&d, 0, path, "", "version", INT64_MAX, &version, NULL, err)) != MU_OK)
		goto out;
	if (version != 1) {
		rc = mu_errf(err, MU_ERR_UNSUPPORTED, "%s: version: %" PRIu64 " (this build reads version 1)", path,
			     version);
		goto out;
	}
	if ((rc = json_obj_only(&d, 0, root_members, sizeof root_members / sizeof root_members[0], err)) != MU_OK) {
		mu_err_prefix(err, "%s", path);
		goto out;
	}
	uint32_t arr = json_obj_get(&d, 0, "keys");
	if (arr == JSON_NONE) {
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: missing member \"keys\"", path);
		goto out;
	}
	if (json_type(&d, arr) != JSON_ARRAY) {
		rc = mu_errf(err, MU_ERR_FORMAT, "%s: keys: must be an array", path);
		goto out;
	}
	n = d.tok[arr].count;
	if (n > MU_KEYS_MAX) {
		rc = mu_errf(err, MU_ERR_RANGE, "%s: keys: %" PRIu32 " keys, at most %d", path, n, MU_KEYS_MAX);
		goto out;
	}
	if (!(k = calloc(n ? n : 1, sizeof *k))) {
		rc = mu_errf(err, MU_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	struct json_iter it;
	uint32_t kt, v, i = 0;
	json_iter_init(&it, &d, arr);
	while (json_iter_next(&it, &kt, &v)) {
		if ((rc = load_key(&d, v, path, i, &k[i], err)) != MU_OK)
			goto out;
		i++;
	}
	if (i != n) {
		rc = mu_errf(err, MU_ERR_INTERNAL, "%s: keys: counted %" PRIu32 " of %" PRIu32, path, i, n);
		goto out;
	}
	if ((rc = check_unique(path, k, n, err)) != MU_OK)
		goto out;
	ks->n = n;
	ks->k = k;
	k = NULL;
out:
	free(k);
	if (mem)
		pal_free(mem, need);
	if (src)
		pal_free(src, len + 1);
	return rc;
}

static int has_quota(const struct mu_apikey *k) { return k->daily_bytes != 0 || k->total_bytes != 0; }

enum mu_err mu_keys_open_state(struct mu_keys *ks, const char *dir, uint64_t reserve_bytes, uint64_t now_ns,
			       struct mu_error *err)
{
	/* Never hand the ledger a NULL err: mu_err_prefix(NULL, ...) returns MU_OK, and the ledger
	 * returns what it returns, so a malformed ledger would open as an empty one. */
	struct mu_error local;
	enum mu_err rc = MU_OK;
	uint32_t i;
	if (!err)
		err = &local;
	for (i = 0; i < ks->n; i++) {
		struct mu_apikey *k = &ks->k[i];
		k->has_ledger = 0;
		memset(&k->rate, 0, sizeof k->rate);
		if (k->requests_per_minute > 0) {
			/* tokens of 1/60 request: R per second is R requests per minute (top of file) */
			rc = mu_bucket_init(&k->rate, k->requests_per_minute, (uint64_t)k->burst * KEYS_TOKEN_SCALE,
					    now_ns, err);
			if (rc != MU_OK) {
				mu_err_prefix(err, "key \"%s\": request rate", k->id);
				break;
			}
		}
		if (!has_quota(k))
			continue;
		if (!dir || !*dir) {
			rc = mu_errf(err, MU_ERR_ARG, "key \"%s\" has an output quota, but no state directory was given",
				     k->id);
			break;
		}
		char lpath[sizeof k->ledger.path];
		int m = snprintf(lpath, sizeof lpath, "%s/%s.ledger", dir, k->id);
		if (m < 0 || (size_t)m >= sizeof lpath) {
			rc = mu_errf(err, MU_ERR_ARG, "key \"%s\": the state directory's name is too long", k->id);
			break;
		}
		const struct mu_ledger_limits lim = {
			.daily_bytes = k->daily_bytes, .total_bytes = k->total_bytes, .reserve_bytes = reserve_bytes};
		if ((rc = mu_ledger_open(&k->ledger, lpath, &lim, err)) != MU_OK) {
			mu_err_prefix(err, "key \"%s\": output quota", k->id);
			break;
		}
		k->has_ledger = 1;
	}
	if (rc != MU_OK) /* all or nothing: a key whose state is not open refuses (fails closed) */
		for (uint32_t j = 0; j <= i && j < ks->n; j++) {
			ks->k[j].has_ledger = 0;
			memset(&ks->k[j].rate, 0, sizeof ks->k[j].rate);
		}
	return rc;
}

void mu_keys_free(struct mu_keys *ks)
{
	if (!ks)
		return;
	free(ks->k);
	memset(ks, 0, sizeof *ks);
}

/* ---- per request ---- */

int mu_keys_find(const struct mu_keys *ks, const char *token, size_t n)
{
	uint8_t h[MU_SHA256_LEN];
	uint32_t hit = 0, idx = 0;
	if (n == 0 || !token)
		return -1; /* an empty token is never a key, whatever hash a file lists */
	mu_sha256(token, n, h);
	for (uint32_t i = 0; i < ks->n; i++) {
		uint32_t diff = 0;
		for (size_t j = 0; j < MU_SHA256_LEN; j++)
			diff |= (uint32_t)(h[j] ^ ks->k[i].hash[j]);
		/* diff is 0..255: (diff - 1) >> 8 is 1 for 0 (wraps to 0xffffffff) and 0 otherwise */
		uint32_t eq = ((diff - 1) >> 8) & 1;
		uint32_t mask = (uint32_t)0 - eq;
		hit |= eq;
		idx |= i & mask; /* hashes are unique: at most one i sets bits */
	}
	mu_wipe(h, sizeof h);
	return hit ? (int)idx : -1; /* only whether some key matched shows, as the reply does anyway */
}

int mu_keys_take_request(struct mu_keys *ks, uint32_t i, uint64_t now_ns, uint32_t *retry_s)
{
	assert(i < ks->n);
	struct mu_apikey *k = &ks->k[i];
	struct mu_bucket *b = &k->rate;
	k->requests++;
	if (retry_s)
		*retry_s = 0;
	if (k->requests_per_minute == 0)
		return 0;
	if (b->rate == 0) { /* mu_keys_open_state did not run (or failed): refuse, never allow */
		k->refused++;
		if (retry_s)
			*retry_s = 60;
		return 1;
	}
	if (mu_bucket_available(b, now_ns) >= KEYS_TOKEN_SCALE) {
		uint64_t got = mu_bucket_grant(b, KEYS_TOKEN_SCALE, now_ns, NULL);
		assert(got == KEYS_TOKEN_SCALE);
		(void)got;
		return 0;
	}
	k->refused++;
	if (retry_s) {
		/* The bucket was refilled up to last_ns (>= now_ns; later when the clock went back). A
		 * whole request is there once (60 - tokens) tokens less the fraction frac (in 1e-9
		 * token) have come in at rate tokens per second: wait = ceil(need / rate) ns after
		 * last_ns, and the bucket's refill then adds at least need (bucket.c), so the Retry-After
		 * below, rounded up to whole seconds, is an upper bound. */
		uint64_t need = (KEYS_TOKEN_SCALE - b->tokens) * NS_PER_S - b->frac;
		uint64_t wait = need / b->rate + (need % b->rate != 0);
		uint64_t ready = b->last_ns > UINT64_MAX - wait ? UINT64_MAX : b->last_ns + wait;
		uint64_t dt = ready - now_ns; /* last_ns >= now_ns after the refill */
		uint64_t s = dt / NS_PER_S + (dt % NS_PER_S != 0);
		*retry_s = s < 1 ? 1 : s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
	}
	return 1;
}

uint64_t mu_keys_remaining(const struct mu_keys *ks, uint32_t i, uint64_t day)
{
	assert(i < ks->n);
	const struct mu_apikey *k = &ks->k[i];
	if (!has_quota(k))
		return UINT64_MAX;
	if (!k->has_ledger)
		return 0; /* a quota whose ledger is not open allows nothing */
	return mu_ledger_remaining(&k->ledger, day);
}

enum mu_err mu_keys_charge(struct mu_keys *ks, uint32_t i, uint64_t n, uint64_t day, struct mu_error *err)
{
	assert(i < ks->n);
	struct mu_apikey *k = &ks->k[i];
	struct mu_error local; /* as in mu_keys_open_state: the ledger always gets an err */
	if (!err)
		err = &local;
	if (!has_quota(k))
		return MU_OK;
	if (!k->has_ledger)
		return mu_errf(err, MU_ERR_STATE, "key \"%s\": output quota: its ledger is not open", k->id);
	enum mu_err rc = mu_ledger_charge(&k->ledger, n, day, err);
	if (rc != MU_OK)
		mu_err_prefix(err, "key \"%s\": output quota", k->id);
	return rc;
}

/* ---- the keys file, for `mu keys` ---- */

enum mu_err mu_key_new(char out[MU_KEY_TEXT_LEN + 1], uint8_t hash[32], struct mu_error *err)
{
	uint8_t raw[32];
	enum mu_err rc = pal_random(raw, sizeof raw, err);
	if (rc != MU_OK) {
		mu_err_prefix(err, "cannot make a key");
		goto out;
	}
	memcpy(out, "mu-", 3);
	mu_hex(raw, sizeof raw, out + 3); /* 64 digits and the NUL */
	mu_sha256(out, MU_KEY_TEXT_LEN, hash);
out:
	mu_wipe(raw, sizeof raw);
	return rc;
}

enum mu_err mu_keys_save(const struct mu_keys *ks, const char *path, struct mu_error *err)
{
	/* One line per key; a line is at most about 250 bytes (ids are 32, numbers 20 digits). */
	const size_t line_max = 320;
	char *buf = NULL, tmp[4096];
	size_t cap, len = 0;
	int fd = -1, created = 0;
	enum mu_err rc;

	if (ks->n > MU_KEYS_MAX)
		return mu_errf(err, MU_ERR_RANGE, "%s: %" PRIu32 " keys, at most %d", path, ks->n, MU_KEYS_MAX);
	for (uint32_t i = 0; i < ks->n; i++)
		if ((rc = check_key(path, i, &ks->k[i], err)) != MU_OK)
			return rc;
	if ((rc = check_unique(path, ks->k, ks->n, err)) != MU_OK)
		return rc;
	cap = (size_t)ks->n * line_max + 64;
	if (!(buf = malloc(cap)))
		return mu_errf(err, MU_ERR_NOMEM, "%s: out of memory", path);
	len = (size_t)snprintf(buf, cap, "{\"version\": 1, \"keys\": [%s", ks->n ? "\n" : "");
	for (uint32_t i = 0; i < ks->n; i++) {
		const struct mu_apikey *k = &ks->k[i];
		char hex[2 * MU_SHA256_LEN + 1];
		mu_hex(k->hash, sizeof k->hash, hex);
		int m = snprintf(buf + len, cap - len,
				 "  {\"id\": \"%s\", \"sha256\": \"%s\", \"requests_per_minute\": %" PRIu32
				 ", \"burst\": %" PRIu32 ", \"daily_output_bytes\": %" PRIu64
				 ", \"total_output_bytes\": %" PRIu64 "}%s\n",
				 k->id, hex, k->requests_per_minute, k->burst, k->daily_bytes, k->total_bytes,
				 i + 1 < ks->n ? "," : "");
		if (m < 0 || (size_t)m >= cap - len) {
			rc = mu_errf(err, MU_ERR_INTERNAL, "%s: keys[%" PRIu32 "] does not fit its line", path, i);
			goto out;
		}
		len += (size_t)m;
	}
	int m = snprintf(buf + len, cap - len, "]}\n");
	if (m < 0 || (size_t)m >= cap - len) {
		rc = mu_errf(err, MU_ERR_INTERNAL, "%s: the file does not fit its buffer", path);
		goto out;
	}
	len += (size_t)m;

	/* temporary file beside the target, fsync'd, then renamed over it (outfile_commit) */
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
		rc = mu_errf(err, MU_ERR_ARG, "%s: file name too long", path);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = mu_errf(err, MU_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	created = 1;
	if (fchmod(fd, 0600) != 0) { /* exactly 0600, whatever the umask */
		rc = mu_errf(err, MU_ERR_IO, "%s: cannot chmod %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	if ((rc = outfile_write_all(fd, buf, len, tmp, err)) != MU_OK)
		goto out;
	if (fsync(fd) != 0) {
		rc = mu_errf(err, MU_ERR_IO, "%s: cannot fsync %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	int c = close(fd);
	fd = -1;
	if (c != 0) {
		rc = mu_errf(err, MU_ERR_IO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	rc = outfile_commit(tmp, path, 1, err);
out:
	if (fd >= 0)
		close(fd);
	if (rc != MU_OK && created)
		unlink(tmp); /* outfile_commit leaves it to us when the rename fails */
	free(buf);
	return rc;
}
