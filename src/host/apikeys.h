/* apikeys.h — the HTTP API's keys and their limits (docs/http.md).
 *
 * A key is "mu-" followed by 64 lower-case hex digits (32 random bytes from the OS). It is
 * shown once, when `mu keys add` makes it; the keys file keeps only its SHA-256, so the file
 * is not a secret that lets anyone in. Clients present it as "Authorization: Bearer <key>".
 *
 * Keys file (strict JSON, written atomically with mode 0600 by `mu keys`):
 *     {"version": 1, "keys": [
 *        {"id": "alice", "sha256": "<64 hex>", "requests_per_minute": 60, "burst": 10,
 *         "daily_output_bytes": 1000000, "total_output_bytes": 0}, ...]}
 * id: 1..MU_KEY_ID_MAX bytes of [A-Za-z0-9_.-], unique; sha256: unique. The limits are
 * integers; 0 means none. requests_per_minute and burst make a token bucket of requests (burst
 * defaults to max(1, requests_per_minute / 6) when absent; it must be >= 1 when
 * requests_per_minute is set). Unknown members, duplicates, a missing member other than burst,
 * a wrong type or more than MU_KEYS_MAX keys refuse the whole file (no partial load).
 *
 * Output quotas persist: each key with an output limit has its own budget ledger
 * (host/ledger.h), "<state dir>/<id>.ledger", charged before the bytes are released, so a
 * restart never resets a key's quota. The request-rate bucket lives in memory only.
 */
#ifndef MU_HOST_APIKEYS_H
#define MU_HOST_APIKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "base/bucket.h"
#include "base/err.h"
#include "host/ledger.h"

#define MU_KEY_ID_MAX 32
#define MU_KEYS_MAX 1024
#define MU_KEY_TEXT_LEN 67 /* "mu-" + 64 hex */

struct mu_apikey {
	char id[MU_KEY_ID_MAX + 1];
	uint8_t hash[32]; /* SHA-256 of the key text */
	uint32_t requests_per_minute, burst;
	uint64_t daily_bytes, total_bytes;
	/* state */
	struct mu_bucket rate; /* of requests; valid when requests_per_minute > 0 */
	int has_ledger;        /* daily_bytes or total_bytes set and mu_keys_open_state ran */
	struct mu_ledger ledger;
	uint64_t requests, refused; /* since start (for /metrics) */
};

struct mu_keys {
	uint32_t n;
	struct mu_apikey *k; /* n entries, calloc'd */
};

/* Loads and validates a keys file; err names the file and the member at fault. */
enum mu_err mu_keys_load(struct mu_keys *ks, const char *path, struct mu_error *err);
/* Opens (creating when missing; the directory must exist) the ledger of every key with an
 * output limit in dir, each charging reserve_bytes ahead (see ledger.h), and starts every rate
 * bucket full at now_ns. */
enum mu_err mu_keys_open_state(struct mu_keys *ks, const char *dir, uint64_t reserve_bytes, uint64_t now_ns,
			       struct mu_error *err);
void mu_keys_free(struct mu_keys *ks);

/* The index of the key whose hash is SHA-256(token[0..n)), or -1. Compares the hash with every
 * key's in constant time (no early exit), so timing tells nothing about which bytes matched. */
int mu_keys_find(const struct mu_keys *ks, const char *token, size_t n);

/* Takes one request from key i's rate bucket at now_ns: 0 when it may go (or the key has no
 * rate limit); 1 when it may not, with *retry_s the whole seconds (>= 1) until it may. */
int mu_keys_take_request(struct mu_keys *ks, uint32_t i, uint64_t now_ns, uint32_t *retry_s);

/* Output quota of key i: bytes it may still receive on UTC day `day` (UINT64_MAX: no quota). */
uint64_t mu_keys_remaining(const struct mu_keys *ks, uint32_t i, uint64_t day);
/* Charges n bytes to key i's ledger (MU_OK when it has none). As mu_ledger_charge: MU_ERR_RANGE
 * when the quota does not allow n more bytes (err names the key id and the quota, never the
 * key), MU_ERR_IO when the charge could not be made durable. */
enum mu_err mu_keys_charge(struct mu_keys *ks, uint32_t i, uint64_t n, uint64_t day, struct mu_error *err);

/* ---- the keys file, for `mu keys` ---- */

/* Makes a new key: writes its text (MU_KEY_TEXT_LEN bytes + NUL) to out and its hash. */
enum mu_err mu_key_new(char out[MU_KEY_TEXT_LEN + 1], uint8_t hash[32], struct mu_error *err);
/* Writes ks (ids, hashes, limits) to path: temporary file, fsync, rename, directory fsync;
 * mode 0600. */
enum mu_err mu_keys_save(const struct mu_keys *ks, const char *path, struct mu_error *err);

#endif
