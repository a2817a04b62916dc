/* test_apikeys.c — the HTTP API's keys (host/apikeys.h).
 *
 * Valid files load with every member as written (burst's default included); every kind of bad
 * file is refused whole with a message that names the file and the member; mu_keys_find hits
 * each key (hashes from Python's hashlib as known answers) and misses wrong, empty, long and
 * one-character-off tokens; the request bucket is driven by a table of times (no sleeps): the
 * burst goes, the next request is refused with the right Retry-After, which is always an upper
 * bound; output quotas are charged to exhaustion and stay exhausted after the state is thrown
 * away and reloaded (a restart); mu_key_new makes distinct well-formed keys; save and load
 * round-trip, the file has mode 0600 whatever the umask, and a refused save changes nothing. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/apikeys.h"
#include "seal/crypto.h"
#include "test.h"

static char dir[256];
static char path[512];

#define S 1000000000ull /* ns per second */
static const uint64_t T0 = 1000 * S;
static const uint64_t DAY = 20000;

/* Known answers (Python: hashlib.sha256(b"...").hexdigest()). */
#define KEY_ZERO "mu-0000000000000000000000000000000000000000000000000000000000000000"
#define HASH_ZERO "2745cea6818177368046024d268995faed5f14b5ee37499b64a5fced6d21a9ec"
#define KEY_SEQ "mu-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HASH_SEQ "26b13dd202b0454a3458040670f728db2763a3a8655c8fcf31a1417fc6b1c5fe"
#define KEY_HELLO "hello-key"
#define HASH_HELLO "3c3217948e8410d40cb524e0a92496133c253f8bdd5d0e5d257a280a4411fb21"
#define HASH_HELLO_UC "3C3217948E8410D40CB524E0A92496133C253F8BDD5D0E5D257A280A4411FB21"

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "wb");
	if (!f) {
		perror(p);
		exit(2);
	}
	fwrite(text, 1, strlen(text), f);
	fclose(f);
}

static char *read_all(const char *p)
{
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, n;
	char *b = malloc(cap + 1);
	n = fread(b, 1, cap, f);
	fclose(f);
	b[n] = '\0';
	return b;
}

/* A file with the three known-answer keys. */
static const char valid3[] =
	"{\"version\": 1, \"keys\": [\n"
	" {\"id\": \"alice\", \"sha256\": \"" HASH_ZERO "\", \"requests_per_minute\": 60, \"burst\": 10,"
	" \"daily_output_bytes\": 1000000, \"total_output_bytes\": 0},\n"
	" {\"id\": \"bob.B-2_x\", \"sha256\": \"" HASH_SEQ "\", \"requests_per_minute\": 600,"
	" \"daily_output_bytes\": 0, \"total_output_bytes\": 9223372036854775807},\n"
	" {\"id\": \"\\u0063arol\", \"sha256\": \"" HASH_HELLO_UC "\", \"requests_per_minute\": 0, \"burst\": 0,"
	" \"daily_output_bytes\": 0, \"total_output_bytes\": 0}\n"
	"]}\n";

static void test_load_valid(void)
{
	struct mu_keys ks;
	struct mu_error e = {0};
	write_file(path, valid3);
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK, "load: %s", e.msg);
	CHECK_EQ_INT(ks.n, 3);
	if (ks.n == 3) {
		uint8_t h[32];
		CHECK(!strcmp(ks.k[0].id, "alice") && ks.k[0].requests_per_minute == 60 && ks.k[0].burst == 10 &&
			      ks.k[0].daily_bytes == 1000000 && ks.k[0].total_bytes == 0,
		      "alice as written");
		mu_unhex(HASH_ZERO, 64, h, 32);
		CHECK(!memcmp(ks.k[0].hash, h, 32), "alice's hash");
		CHECK(!strcmp(ks.k[1].id, "bob.B-2_x") && ks.k[1].requests_per_minute == 600, "bob");
		CHECK(ks.k[1].burst == 100, "burst absent: rpm / 6 = 100, got %u", ks.k[1].burst);
		CHECK(ks.k[1].total_bytes == (uint64_t)INT64_MAX, "total up to INT64_MAX");
		CHECK(!strcmp(ks.k[2].id, "carol"), "an escaped id is decoded: %s", ks.k[2].id);
		mu_unhex(HASH_HELLO, 64, h, 32);
		CHECK(!memcmp(ks.k[2].hash, h, 32), "upper-case hex reads the same");
		CHECK(ks.k[2].requests_per_minute == 0 && ks.k[2].burst == 0, "burst 0 without a rate is allowed");
		CHECK(ks.k[0].has_ledger == 0 && ks.k[0].requests == 0, "no state before open_state");
	}
	mu_keys_free(&ks);
	CHECK(ks.n == 0 && ks.k == NULL, "free zeroes");

	/* small rates: the default burst is at least 1 */
	write_file(path, "{\"keys\": [{\"id\": \"a\", \"sha256\": \"" HASH_ZERO "\", \"requests_per_minute\": 5,"
			 " \"daily_output_bytes\": 0, \"total_output_bytes\": 0}], \"version\": 1.0}");
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK && ks.n == 1 && ks.k[0].burst == 1, "default burst 1: %s", e.msg);
	mu_keys_free(&ks);
	write_file(path, "{\"version\": 1, \"keys\": []}");
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK && ks.n == 0, "no keys: %s", e.msg);
	mu_keys_free(&ks);
	/* an id of exactly MU_KEY_ID_MAX characters */
	write_file(path, "{\"version\": 1, \"keys\": [{\"id\": \"abcdefghijklmnopqrstuvwxyz012345\", \"sha256\": \"" HASH_ZERO
			 "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0, \"total_output_bytes\": 0}]}");
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK && ks.n == 1 && strlen(ks.k[0].id) == MU_KEY_ID_MAX, "32-char id: %s",
	      e.msg);
	mu_keys_free(&ks);
}

/* One key object with the member `name` replaced by `member` (NULL: left out); "" keeps all. */
static void key_json(char *out, size_t cap, const char *name, const char *member)
{
	static const char *const names[] = {"id", "sha256", "requests_per_minute", "burst", "daily_output_bytes",
					    "total_output_bytes"};
	static const char *const vals[] = {"\"alice\"", "\"" HASH_ZERO "\"", "60", "10", "1000", "0"};
	size_t n = (size_t)snprintf(out, cap, "{");
	int first = 1;
	for (size_t i = 0; i < 6; i++) {
		const char *v = vals[i];
		if (!strcmp(names[i], name)) {
			if (!member)
				continue;
			v = member;
		}
		n += (size_t)snprintf(out + n, cap - n, "%s\"%s\": %s", first ? "" : ", ", names[i], v);
		first = 0;
	}
	snprintf(out + n, cap - n, "}");
}

struct bad_case {
	const char *what;
	const char *text; /* the whole file, or NULL to build it from name/member */
	const char *name, *member;
	enum mu_err code;
	const char *msg; /* a substring of the message */
};

static void test_load_refusals(void)
{
	static const struct bad_case cases[] = {
		/* the root */
		{"not an object", "[]", NULL, NULL, MU_ERR_FORMAT, "one JSON object"},
		{"unknown root member", "{\"version\": 1, \"keys\": [], \"extra\": 1}", NULL, NULL, MU_ERR_FORMAT,
		 "unknown field \"extra\""},
		{"missing version", "{\"keys\": []}", NULL, NULL, MU_ERR_FORMAT, "missing member \"version\""},
		{"missing keys", "{\"version\": 1}", NULL, NULL, MU_ERR_FORMAT, "missing member \"keys\""},
		{"version 2", "{\"version\": 2, \"keys\": []}", NULL, NULL, MU_ERR_UNSUPPORTED, "version: 2"},
		{"version 0", "{\"version\": 0, \"keys\": []}", NULL, NULL, MU_ERR_UNSUPPORTED, "version: 0"},
		{"version a string", "{\"version\": \"1\", \"keys\": []}", NULL, NULL, MU_ERR_FORMAT,
		 "version: must be a number"},
		{"version a fraction", "{\"version\": 1.5, \"keys\": []}", NULL, NULL, MU_ERR_RANGE, "version: must be an integer"},
		{"keys an object", "{\"version\": 1, \"keys\": {}}", NULL, NULL, MU_ERR_FORMAT, "keys: must be an array"},
		{"trailing bytes", "{\"version\": 1, \"keys\": []} x", NULL, NULL, MU_ERR_FORMAT, "not a valid keys file"},
		{"two documents", "{\"version\": 1, \"keys\": []}{}", NULL, NULL, MU_ERR_FORMAT, "not a valid keys file"},
		{"duplicate root member", "{\"version\": 1, \"keys\": [], \"keys\": []}", NULL, NULL, MU_ERR_FORMAT,
		 "duplicate"},
		{"empty file", "", NULL, NULL, MU_ERR_FORMAT, "not a valid keys file"},
		{"a key that is not an object", "{\"version\": 1, \"keys\": [\"mu-abc\"]}", NULL, NULL, MU_ERR_FORMAT,
		 "keys[0]: must be an object"},
		/* one key's members */
		{"unknown key member", "{\"version\": 1, \"keys\": [{\"id\": \"a\", \"colour\": 1}]}", NULL, NULL,
		 MU_ERR_FORMAT, "keys[0]: offset"},
		{"missing id", NULL, "id", NULL, MU_ERR_FORMAT, "keys[0]: missing member \"id\""},
		{"missing sha256", NULL, "sha256", NULL, MU_ERR_FORMAT, "keys[0]: missing member \"sha256\""},
		{"missing rpm", NULL, "requests_per_minute", NULL, MU_ERR_FORMAT, "missing member \"requests_per_minute\""},
		{"missing daily", NULL, "daily_output_bytes", NULL, MU_ERR_FORMAT, "missing member \"daily_output_bytes\""},
		{"missing total", NULL, "total_output_bytes", NULL, MU_ERR_FORMAT, "missing member \"total_output_bytes\""},
		{"id a number", NULL, "id", "5", MU_ERR_FORMAT, "keys[0].id: must be a string"},
		{"id empty", NULL, "id", "\"\"", MU_ERR_FORMAT, "keys[0].id: must be 1 to 32"},
		{"id 33 characters", NULL, "id", "\"abcdefghijklmnopqrstuvwxyz0123456\"", MU_ERR_FORMAT,
		 "keys[0].id: must be 1 to 32"},
		{"id with a space", NULL, "id", "\"al ice\"", MU_ERR_FORMAT, "keys[0].id: character 3"},
		{"id with a slash", NULL, "id", "\"../x\"", MU_ERR_FORMAT, "keys[0].id: character 3"},
		{"id with a NUL", NULL, "id", "\"a\\u0000b\"", MU_ERR_FORMAT, "keys[0].id: character 2"},
		{"id not ASCII", NULL, "id", "\"caf\\u00e9\"", MU_ERR_FORMAT, "keys[0].id: character 4"},
		{"sha256 a number", NULL, "sha256", "1", MU_ERR_FORMAT, "keys[0].sha256: must be a string"},
		{"sha256 63 digits", NULL, "sha256", "\"2745cea6818177368046024d268995faed5f14b5ee37499b64a5fced6d21a9e\"",
		 MU_ERR_FORMAT, "keys[0].sha256: not 64 hex digits"},
		{"sha256 65 digits", NULL, "sha256", "\"2745cea6818177368046024d268995faed5f14b5ee37499b64a5fced6d21a9ec0\"",
		 MU_ERR_FORMAT, "keys[0].sha256: not 64 hex digits"},
		{"sha256 not hex", NULL, "sha256", "\"2745cea6818177368046024d268995faed5f14b5ee37499b64a5fced6d21a9eg\"",
		 MU_ERR_FORMAT, "keys[0].sha256: not 64 hex digits"},
		{"sha256 the key itself", NULL, "sha256", "\"" KEY_ZERO "\"", MU_ERR_FORMAT, "not 64 hex digits"},
		{"rpm a string", NULL, "requests_per_minute", "\"60\"", MU_ERR_FORMAT,
		 "keys[0].requests_per_minute: must be a number"},
		{"rpm null", NULL, "requests_per_minute", "null", MU_ERR_FORMAT, "requests_per_minute: must be a number"},
		{"rpm negative", NULL, "requests_per_minute", "-1", MU_ERR_RANGE, "requests_per_minute: must be an integer"},
		{"rpm a fraction", NULL, "requests_per_minute", "1.5", MU_ERR_RANGE, "must be an integer"},
		{"rpm too large", NULL, "requests_per_minute", "4294967296", MU_ERR_RANGE, "must be an integer from 0 to"},
		{"burst a bool", NULL, "burst", "true", MU_ERR_FORMAT, "keys[0].burst: must be a number"},
		{"burst 0 with a rate", NULL, "burst", "0", MU_ERR_RANGE, "keys[0].burst: must be at least 1"},
		{"burst too large", NULL, "burst", "71582789", MU_ERR_RANGE, "keys[0].burst"},
		{"daily an array", NULL, "daily_output_bytes", "[]", MU_ERR_FORMAT, "daily_output_bytes: must be a number"},
		{"daily negative", NULL, "daily_output_bytes", "-5", MU_ERR_RANGE, "daily_output_bytes: must be an integer"},
		{"total above INT64_MAX", NULL, "total_output_bytes", "9223372036854775808", MU_ERR_RANGE,
		 "total_output_bytes: must be an integer"},
		{"duplicate member in a key",
		 "{\"version\": 1, \"keys\": [{\"id\": \"a\", \"id\": \"b\", \"sha256\": \"" HASH_ZERO
		 "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0, \"total_output_bytes\": 0}]}",
		 NULL, NULL, MU_ERR_FORMAT, "duplicate"},
		/* across keys */
		{"duplicate id",
		 "{\"version\": 1, \"keys\": ["
		 "{\"id\": \"a\", \"sha256\": \"" HASH_ZERO "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0,"
		 " \"total_output_bytes\": 0},"
		 "{\"id\": \"b\", \"sha256\": \"" HASH_SEQ "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0,"
		 " \"total_output_bytes\": 0},"
		 "{\"id\": \"a\", \"sha256\": \"" HASH_HELLO "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0,"
		 " \"total_output_bytes\": 0}]}",
		 NULL, NULL, MU_ERR_FORMAT, "keys[2].id: \"a\" is also keys[0]"},
		{"duplicate hash (in another case)",
		 "{\"version\": 1, \"keys\": ["
		 "{\"id\": \"a\", \"sha256\": \"" HASH_HELLO "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0,"
		 " \"total_output_bytes\": 0},"
		 "{\"id\": \"b\", \"sha256\": \"" HASH_HELLO_UC "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0,"
		 " \"total_output_bytes\": 0}]}",
		 NULL, NULL, MU_ERR_FORMAT, "keys[1].sha256: the same hash as keys[0]"},
		{"a bad second key",
		 "{\"version\": 1, \"keys\": ["
		 "{\"id\": \"a\", \"sha256\": \"" HASH_HELLO "\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0,"
		 " \"total_output_bytes\": 0},"
		 "{\"id\": \"b\", \"sha256\": \"xx\", \"requests_per_minute\": 0, \"daily_output_bytes\": 0,"
		 " \"total_output_bytes\": 0}]}",
		 NULL, NULL, MU_ERR_FORMAT, "keys[1].sha256: not 64 hex digits"},
	};
	char text[2048];
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct bad_case *t = &cases[c];
		if (t->text) {
			snprintf(text, sizeof text, "%s", t->text);
		} else {
			char key[1024];
			key_json(key, sizeof key, t->name, t->member);
			snprintf(text, sizeof text, "{\"version\": 1, \"keys\": [%s]}", key);
		}
		write_file(path, text);
		struct mu_keys ks = {.n = 77};
		struct mu_error e = {0};
		enum mu_err rc = mu_keys_load(&ks, path, &e);
		CHECK(rc == t->code, "%s: code %s, wanted %s (%s)", t->what, mu_err_name(rc), mu_err_name(t->code), e.msg);
		CHECK(strstr(e.msg, t->msg) != NULL, "%s: message '%s' lacks '%s'", t->what, e.msg, t->msg);
		CHECK(!strncmp(e.msg, path, strlen(path)), "%s: message names the file: %s", t->what, e.msg);
		CHECK(ks.n == 0 && ks.k == NULL, "%s: nothing loaded", t->what);
		CHECK(!strstr(e.msg, "mu-0000"), "%s: no key text in the message", t->what);
		mu_keys_free(&ks);
	}

	/* a key made of valid members all around, as a control for the table's builder */
	key_json(text + 100, sizeof text - 100, "", NULL);
	snprintf(text, 100, "{\"version\": 1, \"keys\": [");
	memmove(text + strlen(text), text + 100, strlen(text + 100) + 1);
	strcat(text, "]}");
	write_file(path, text);
	struct mu_keys ks;
	struct mu_error e = {0};
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK && ks.n == 1, "the table's control key loads: %s", e.msg);
	mu_keys_free(&ks);

	/* a missing file */
	char missing[600];
	snprintf(missing, sizeof missing, "%s/none.json", dir);
	CHECK(mu_keys_load(&ks, missing, &e) == MU_ERR_IO && strstr(e.msg, missing), "missing file: %s", e.msg);
}

/* MU_KEYS_MAX keys load; one more refuses the file. */
static void test_too_many(void)
{
	size_t cap = (MU_KEYS_MAX + 1) * 256 + 64, n = 0;
	char *text = malloc(cap);
	for (uint32_t count = MU_KEYS_MAX; count <= MU_KEYS_MAX + 1; count++) {
		n = (size_t)snprintf(text, cap, "{\"version\": 1, \"keys\": [");
		for (uint32_t i = 0; i < count; i++) {
			uint8_t h[32];
			char hex[65], id[16];
			snprintf(id, sizeof id, "k%u", i);
			mu_sha256(id, strlen(id), h);
			mu_hex(h, 32, hex);
			n += (size_t)snprintf(text + n, cap - n,
					      "%s{\"id\": \"%s\", \"sha256\": \"%s\", \"requests_per_minute\": 0,"
					      " \"daily_output_bytes\": 0, \"total_output_bytes\": 0}",
					      i ? "," : "", id, hex);
		}
		snprintf(text + n, cap - n, "]}");
		write_file(path, text);
		struct mu_keys ks;
		struct mu_error e = {0};
		enum mu_err rc = mu_keys_load(&ks, path, &e);
		if (count == MU_KEYS_MAX) {
			CHECK(rc == MU_OK && ks.n == MU_KEYS_MAX, "%u keys load: %s", count, e.msg);
			CHECK(ks.n == MU_KEYS_MAX && mu_keys_find(&ks, "k1023", 5) == 1023, "the last key is found");
		} else {
			CHECK(rc == MU_ERR_RANGE && strstr(e.msg, "1025 keys, at most 1024"), "%u keys refused: %s", count,
			      e.msg);
			CHECK(ks.n == 0 && ks.k == NULL, "nothing loaded");
		}
		mu_keys_free(&ks);
	}
	free(text);
}

static void test_find(void)
{
	struct mu_keys ks;
	struct mu_error e = {0};
	write_file(path, valid3);
	if (mu_keys_load(&ks, path, &e) != MU_OK) {
		CHECK(0, "load: %s", e.msg);
		return;
	}
	CHECK_EQ_INT(mu_keys_find(&ks, KEY_ZERO, strlen(KEY_ZERO)), 0);
	CHECK_EQ_INT(mu_keys_find(&ks, KEY_SEQ, strlen(KEY_SEQ)), 1);
	CHECK_EQ_INT(mu_keys_find(&ks, KEY_HELLO, strlen(KEY_HELLO)), 2);
	CHECK_EQ_INT(mu_keys_find(&ks, "", 0), -1);
	CHECK_EQ_INT(mu_keys_find(&ks, NULL, 0), -1);
	CHECK_EQ_INT(mu_keys_find(&ks, KEY_ZERO, strlen(KEY_ZERO) - 1), -1); /* a prefix */
	CHECK_EQ_INT(mu_keys_find(&ks, KEY_HELLO "x", strlen(KEY_HELLO) + 1), -1);
	CHECK_EQ_INT(mu_keys_find(&ks, "mu-", 3), -1);
	CHECK_EQ_INT(mu_keys_find(&ks, HASH_ZERO, 64), -1); /* the hash is not the key */
	/* a token that differs in one character, at every position */
	char tok[MU_KEY_TEXT_LEN + 1];
	int misses = 0;
	for (size_t i = 0; i < MU_KEY_TEXT_LEN; i++) {
		memcpy(tok, KEY_SEQ, sizeof tok);
		tok[i] = tok[i] == 'f' ? 'e' : 'f';
		misses += mu_keys_find(&ks, tok, MU_KEY_TEXT_LEN) == -1;
	}
	CHECK_EQ_INT(misses, MU_KEY_TEXT_LEN);
	/* the key's text with upper-case hex is another token */
	CHECK_EQ_INT(mu_keys_find(&ks, "mu-0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 67), -1);
	/* a long token */
	size_t big = 1 << 20;
	char *lng = malloc(big);
	memset(lng, 'a', big);
	memcpy(lng, KEY_ZERO, strlen(KEY_ZERO));
	CHECK_EQ_INT(mu_keys_find(&ks, lng, big), -1);
	free(lng);
	/* token with an embedded NUL: the length counts, not the C string */
	CHECK_EQ_INT(mu_keys_find(&ks, KEY_HELLO "\0", strlen(KEY_HELLO) + 1), -1);
	mu_keys_free(&ks);
	struct mu_keys none = {0};
	CHECK_EQ_INT(mu_keys_find(&none, KEY_ZERO, strlen(KEY_ZERO)), -1);
}

/* A keys set in memory with one key of the given limits, its state opened at T0 in dir. */
static void one_key(struct mu_keys *ks, const char *id, uint32_t rpm, uint32_t burst, uint64_t daily, uint64_t total)
{
	ks->n = 1;
	ks->k = calloc(1, sizeof *ks->k);
	snprintf(ks->k[0].id, sizeof ks->k[0].id, "%s", id);
	mu_sha256(id, strlen(id), ks->k[0].hash);
	ks->k[0].requests_per_minute = rpm;
	ks->k[0].burst = burst;
	ks->k[0].daily_bytes = daily;
	ks->k[0].total_bytes = total;
}

struct step {
	uint64_t t;     /* ns after T0 */
	int refused;    /* what take_request returns */
	uint32_t retry; /* its retry seconds when refused */
};

static void run_steps(const char *what, uint32_t rpm, uint32_t burst, const struct step *s, size_t n)
{
	struct mu_keys ks;
	struct mu_error e = {0};
	one_key(&ks, "r", rpm, burst, 0, 0);
	CHECK(mu_keys_open_state(&ks, NULL, 1, T0, &e) == MU_OK, "%s: open: %s", what, e.msg);
	for (size_t i = 0; i < n; i++) {
		uint32_t retry = 12345;
		int r = mu_keys_take_request(&ks, 0, T0 + s[i].t, &retry);
		CHECK(r == s[i].refused && (r ? retry == s[i].retry : retry == 0),
		      "%s: step %zu at +%" PRIu64 " ns: got %d retry %u, wanted %d retry %u", what, i, s[i].t, r, retry,
		      s[i].refused, s[i].retry);
	}
	mu_keys_free(&ks);
}

static void test_rate(void)
{
	/* 60 a minute, burst 3: three at once, then one a second */
	static const struct step a[] = {
		{0, 0, 0},           {0, 0, 0},           {0, 0, 0},
		{0, 1, 1},           {S / 2, 1, 1},       {S - 1, 1, 1},
		{S, 0, 0},           {S, 1, 1},           {S + S / 3, 1, 1},
		{10 * S, 0, 0},      {10 * S, 0, 0},      {10 * S, 0, 0}, /* full again, but only 3 */
		{10 * S, 1, 1},      {12 * S, 0, 0},      {12 * S, 0, 0},
		{12 * S, 1, 1},
	};
	run_steps("60/min burst 3", 60, 3, a, sizeof a / sizeof a[0]);
	/* 1 a minute: the retry is the whole minute, then counts down */
	static const struct step b[] = {
		{0, 0, 0}, {0, 1, 60}, {1, 1, 60}, {S, 1, 59}, {59 * S + S / 2, 1, 1}, {60 * S - 1, 1, 1}, {60 * S, 0, 0},
		{60 * S, 1, 60},
	};
	run_steps("1/min", 1, 1, b, sizeof b / sizeof b[0]);
	/* 7 a minute: one per 60/7 s = 8571428571.43 ns, so the bucket is full again at 8571428572
	 * ns; what comes in while it is full is lost (it holds one request), so the next is there
	 * another 8571428572 ns on */
	static const struct step c[] = {
		{0, 0, 0},          {0, 1, 9},           {8571428571, 1, 1},  {8571428572, 0, 0},
		{8571428572, 1, 9}, {17142857143, 1, 1}, {17142857144, 0, 0},
	};
	run_steps("7/min", 7, 1, c, sizeof c / sizeof c[0]);
	/* 7 a minute with a burst of 2: taken one at a time as they come, nothing is lost to the
	 * cap, and the n-th request after the burst comes at ceil(n * 60/7 s) exactly */
	static const struct step c2[] = {
		{0, 0, 0},           {0, 0, 0},           {0, 1, 9},
		{8571428572, 0, 0},  {17142857142, 1, 1}, {17142857143, 0, 0},
		{25714285714, 1, 1}, {25714285715, 0, 0},
	};
	run_steps("7/min burst 2", 7, 2, c2, sizeof c2 / sizeof c2[0]);
	/* a clock that goes back: refused, and the retry counts from the later time seen */
	static const struct step d[] = {{5 * S, 0, 0}, {0, 1, 6}, {5 * S, 1, 1}, {6 * S, 0, 0}};
	run_steps("clock back", 60, 1, d, sizeof d / sizeof d[0]);
	/* the largest rate and burst */
	struct mu_keys ks;
	struct mu_error e = {0};
	one_key(&ks, "big", 429496728, 71582788, 0, 0);
	CHECK(mu_keys_open_state(&ks, NULL, 1, T0, &e) == MU_OK, "largest rate and burst: %s", e.msg);
	uint32_t retry = 0;
	CHECK(mu_keys_take_request(&ks, 0, T0, &retry) == 0, "largest: one goes");
	mu_keys_free(&ks);

	/* no rate limit: always, and counted */
	one_key(&ks, "free", 0, 0, 0, 0);
	CHECK(mu_keys_open_state(&ks, NULL, 1, T0, &e) == MU_OK, "open: %s", e.msg);
	int refused = 0;
	for (int i = 0; i < 1000; i++)
		refused += mu_keys_take_request(&ks, 0, T0, &retry);
	CHECK(refused == 0 && retry == 0 && ks.k[0].requests == 1000 && ks.k[0].refused == 0, "unlimited");
	mu_keys_free(&ks);

	/* counters, and a key whose state was never opened refuses (fails closed) */
	one_key(&ks, "c", 60, 2, 0, 0);
	CHECK(mu_keys_take_request(&ks, 0, T0, &retry) == 1 && retry >= 1, "no open_state: refused");
	CHECK(mu_keys_open_state(&ks, NULL, 1, T0, &e) == MU_OK, "open: %s", e.msg);
	for (int i = 0; i < 5; i++)
		mu_keys_take_request(&ks, 0, T0, &retry);
	CHECK(ks.k[0].requests == 6 && ks.k[0].refused == 4, "counters: %" PRIu64 " requests, %" PRIu64 " refused",
	      ks.k[0].requests, ks.k[0].refused);
	mu_keys_free(&ks);

	/* Retry-After is an upper bound: for many rates and bursts, a request refused at t with
	 * retry r goes at t + r seconds (on a copy of the state); and it is tight to the second:
	 * at t + (r - 1) seconds it would still be refused, except when r is 1. */
	uint64_t x = 88172645463325252ull; /* xorshift64 */
	int bound_ok = 0, tight_ok = 0, tries = 0;
	for (int round = 0; round < 300; round++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint32_t rpm = 1 + (uint32_t)(x % 5000);
		uint32_t burst = 1 + (uint32_t)((x >> 20) % 8);
		one_key(&ks, "p", rpm, burst, 0, 0);
		mu_keys_open_state(&ks, NULL, 1, T0, &e);
		uint64_t t = T0;
		for (int k = 0; k < 40; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			t += x % (3 * S / (rpm / 60 + 1) + 1);
			if (mu_keys_take_request(&ks, 0, t, &retry) == 0)
				continue;
			tries++;
			struct mu_apikey copy = ks.k[0];
			struct mu_keys one = {.n = 1, .k = &copy};
			uint32_t r2;
			bound_ok += mu_keys_take_request(&one, 0, t + (uint64_t)retry * S, &r2) == 0;
			copy = ks.k[0];
			tight_ok += retry == 1 || mu_keys_take_request(&one, 0, t + (uint64_t)(retry - 1) * S, &r2) == 1;
		}
		mu_keys_free(&ks);
	}
	CHECK(tries > 500 && bound_ok == tries && tight_ok == tries, "retry bound: %d of %d, tight: %d", bound_ok, tries,
	      tight_ok);
}

static void ledger_path(char *out, size_t cap, const char *id)
{
	snprintf(out, cap, "%s/%s.ledger", dir, id);
}

static void test_quota(void)
{
	struct mu_keys ks;
	struct mu_error e = {0};
	char lp[600];

	/* daily quota 1000 for alice, total 500 for bob, none for carol */
	write_file(path, "{\"version\": 1, \"keys\": ["
			 "{\"id\": \"alice\", \"sha256\": \"" HASH_ZERO "\", \"requests_per_minute\": 0,"
			 " \"daily_output_bytes\": 1000, \"total_output_bytes\": 0},"
			 "{\"id\": \"bob\", \"sha256\": \"" HASH_SEQ "\", \"requests_per_minute\": 0,"
			 " \"daily_output_bytes\": 0, \"total_output_bytes\": 500},"
			 "{\"id\": \"carol\", \"sha256\": \"" HASH_HELLO "\", \"requests_per_minute\": 0,"
			 " \"daily_output_bytes\": 0, \"total_output_bytes\": 0}]}");
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK, "load: %s", e.msg);
	CHECK(mu_keys_open_state(&ks, dir, 100, T0, &e) == MU_OK, "open_state: %s", e.msg);
	CHECK(ks.k[0].has_ledger && ks.k[1].has_ledger && !ks.k[2].has_ledger, "ledgers only for keys with quotas");
	CHECK(mu_keys_remaining(&ks, 0, DAY) == 1000, "alice: 1000 left");
	CHECK(mu_keys_remaining(&ks, 1, DAY) == 500, "bob: 500 left");
	CHECK(mu_keys_remaining(&ks, 2, DAY) == UINT64_MAX, "carol: no quota");
	CHECK(mu_keys_charge(&ks, 0, 400, DAY, &e) == MU_OK, "alice 400: %s", e.msg);
	ledger_path(lp, sizeof lp, "alice");
	CHECK(access(lp, F_OK) == 0, "alice's ledger is %s", lp);
	CHECK(mu_keys_remaining(&ks, 0, DAY) == 600, "alice: 600 left, got %" PRIu64, mu_keys_remaining(&ks, 0, DAY));
	CHECK(mu_keys_charge(&ks, 0, 600, DAY, &e) == MU_OK, "alice 600: %s", e.msg);
	CHECK(mu_keys_remaining(&ks, 0, DAY) == 0, "alice: exhausted");
	e.msg[0] = '\0';
	CHECK(mu_keys_charge(&ks, 0, 1, DAY, &e) == MU_ERR_RANGE, "alice: one more byte refused");
	CHECK(strstr(e.msg, "key \"alice\"") && strstr(e.msg, "daily"), "message names the key and quota: %s", e.msg);
	CHECK(!strstr(e.msg, KEY_ZERO) && !strstr(e.msg, HASH_ZERO), "message holds no key or hash");
	CHECK(mu_keys_charge(&ks, 1, 300, DAY, &e) == MU_OK && mu_keys_charge(&ks, 1, 201, DAY, &e) == MU_ERR_RANGE,
	      "bob: 300 then 201 of 500 refused");
	CHECK(strstr(e.msg, "key \"bob\"") && strstr(e.msg, "total"), "bob's message: %s", e.msg);
	CHECK(mu_keys_charge(&ks, 1, 200, DAY, &e) == MU_OK, "bob: the last 200 go: %s", e.msg);
	CHECK(mu_keys_charge(&ks, 2, 1u << 30, DAY, &e) == MU_OK, "carol: unlimited");
	ledger_path(lp, sizeof lp, "carol");
	CHECK(access(lp, F_OK) != 0, "carol has no ledger file");
	CHECK(mu_keys_charge(&ks, 0, 0, DAY, &e) == MU_OK, "a zero charge always goes");

	/* a restart: state thrown away, file and state reloaded */
	mu_keys_free(&ks);
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK, "reload: %s", e.msg);
	CHECK(mu_keys_open_state(&ks, dir, 100, T0 + 5 * S, &e) == MU_OK, "reopen: %s", e.msg);
	CHECK(mu_keys_remaining(&ks, 0, DAY) == 0, "alice still exhausted after the restart, %" PRIu64 " left",
	      mu_keys_remaining(&ks, 0, DAY));
	CHECK(mu_keys_charge(&ks, 0, 1, DAY, &e) == MU_ERR_RANGE, "alice still refused after the restart");
	CHECK(mu_keys_remaining(&ks, 1, DAY) == 0 && mu_keys_charge(&ks, 1, 1, DAY, &e) == MU_ERR_RANGE,
	      "bob still refused after the restart");
	/* the next day: the daily quota is back, the total one is not */
	CHECK(mu_keys_remaining(&ks, 0, DAY + 1) == 1000, "alice tomorrow: 1000");
	CHECK(mu_keys_charge(&ks, 0, 999, DAY + 1, &e) == MU_OK, "alice tomorrow: %s", e.msg);
	CHECK(mu_keys_remaining(&ks, 1, DAY + 1) == 0 && mu_keys_charge(&ks, 1, 1, DAY + 1, &e) == MU_ERR_RANGE,
	      "bob tomorrow: still out");
	mu_keys_free(&ks);

	/* state that cannot open: no directory given, a directory that does not exist. The keys
	 * with quotas then refuse everything. */
	CHECK(mu_keys_load(&ks, path, &e) == MU_OK, "reload: %s", e.msg);
	CHECK(mu_keys_open_state(&ks, NULL, 100, T0, &e) == MU_ERR_ARG && strstr(e.msg, "alice"), "no dir: %s", e.msg);
	CHECK(mu_keys_remaining(&ks, 0, DAY + 5) == 0, "not open: nothing left");
	CHECK(mu_keys_charge(&ks, 0, 1, DAY + 5, &e) == MU_ERR_STATE, "not open: charge refused: %s", e.msg);
	CHECK(mu_keys_charge(&ks, 2, 1, DAY + 5, &e) == MU_OK, "a key without quota is not affected");
	char nodir[600];
	snprintf(nodir, sizeof nodir, "%s/missing", dir);
	CHECK(mu_keys_open_state(&ks, nodir, 100, T0, &e) == MU_ERR_IO && strstr(e.msg, "alice"), "missing dir: %s",
	      e.msg);
	CHECK(mu_keys_open_state(&ks, dir, 0, T0, &e) == MU_ERR_ARG, "reserve 0 refused: %s", e.msg);
	/* a damaged ledger refuses to open (never reset) */
	ledger_path(lp, sizeof lp, "bob");
	write_file(lp, "{\"version\":1,\"day\":1}");
	CHECK(mu_keys_open_state(&ks, dir, 100, T0, &e) == MU_ERR_FORMAT && strstr(e.msg, "bob"), "bad ledger: %s",
	      e.msg);
	CHECK(!ks.k[0].has_ledger && !ks.k[1].has_ledger, "all or nothing");
	/* a ledger the JSON parser refuses, with no err to fill: still refused (ledger.c returns
	 * mu_err_prefix's value there, which is MU_OK for a NULL err) */
	write_file(lp, "{\"version\":1,\"day\":20000,\"day_bytes\":500,\"total_bytes\":500} trailing");
	CHECK(mu_keys_open_state(&ks, dir, 100, T0, &e) == MU_ERR_FORMAT, "trailing bytes in a ledger: %s", e.msg);
	CHECK(mu_keys_open_state(&ks, dir, 100, T0, NULL) == MU_ERR_FORMAT, "bad ledger, no err: still refused");
	CHECK(mu_keys_remaining(&ks, 1, DAY + 5) == 0, "bad ledger, no err: nothing left");
	mu_keys_free(&ks);
}

static void test_new_and_save(void)
{
	enum { N = 64 };
	static char keys[N][MU_KEY_TEXT_LEN + 1];
	struct mu_keys ks = {.n = N, .k = calloc(N, sizeof(struct mu_apikey))};
	struct mu_error e = {0};
	int well_formed = 1, distinct = 1, hashes = 1;
	for (int i = 0; i < N; i++) {
		uint8_t h[32];
		CHECK(mu_key_new(keys[i], ks.k[i].hash, &e) == MU_OK, "mu_key_new: %s", e.msg);
		well_formed &= strlen(keys[i]) == MU_KEY_TEXT_LEN && !strncmp(keys[i], "mu-", 3);
		for (int j = 3; j < MU_KEY_TEXT_LEN; j++)
			well_formed &= (keys[i][j] >= '0' && keys[i][j] <= '9') || (keys[i][j] >= 'a' && keys[i][j] <= 'f');
		mu_sha256(keys[i], MU_KEY_TEXT_LEN, h);
		hashes &= !memcmp(h, ks.k[i].hash, 32);
		for (int j = 0; j < i; j++)
			distinct &= strcmp(keys[i], keys[j]) != 0;
		snprintf(ks.k[i].id, sizeof ks.k[i].id, "key-%d", i);
		ks.k[i].requests_per_minute = (uint32_t)(i * 7);
		ks.k[i].burst = (uint32_t)(i + 1);
		ks.k[i].daily_bytes = (uint64_t)i * 1000;
		ks.k[i].total_bytes = i % 3 ? (uint64_t)INT64_MAX - (uint64_t)i : 0;
	}
	CHECK(well_formed, "keys are mu- and 64 lower-case hex digits");
	CHECK(distinct, "keys are distinct");
	CHECK(hashes, "hash is SHA-256 of the text");

	/* save with a permissive umask and a strict one: the mode is 0600 either way */
	mode_t old = umask(0);
	CHECK(mu_keys_save(&ks, path, &e) == MU_OK, "save: %s", e.msg);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600, "mode 0600 with umask 0: %o", sb.st_mode & 07777);
	umask(0277);
	CHECK(mu_keys_save(&ks, path, &e) == MU_OK, "save: %s", e.msg);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600, "mode 0600 with umask 0277: %o", sb.st_mode & 07777);
	umask(old);

	/* the file holds no key text */
	char *text = read_all(path);
	int leaked = 0;
	for (int i = 0; i < N; i++)
		leaked += strstr(text, keys[i] + 3) != NULL;
	CHECK(leaked == 0, "no key text in the file");
	free(text);

	struct mu_keys back;
	CHECK(mu_keys_load(&back, path, &e) == MU_OK, "load the saved file: %s", e.msg);
	int same = back.n == ks.n;
	for (uint32_t i = 0; same && i < ks.n; i++)
		same = !strcmp(back.k[i].id, ks.k[i].id) && !memcmp(back.k[i].hash, ks.k[i].hash, 32) &&
		       back.k[i].requests_per_minute == ks.k[i].requests_per_minute && back.k[i].burst == ks.k[i].burst &&
		       back.k[i].daily_bytes == ks.k[i].daily_bytes && back.k[i].total_bytes == ks.k[i].total_bytes;
	CHECK(same, "round trip keeps every id, hash and limit");
	int found = 0;
	for (int i = 0; i < N; i++)
		found += mu_keys_find(&back, keys[i], MU_KEY_TEXT_LEN) == i;
	CHECK_EQ_INT(found, N);
	mu_keys_free(&back);

	/* a save that would not load again is refused and changes nothing */
	char *before = read_all(path);
	strcpy(ks.k[5].id, "bad id");
	CHECK(mu_keys_save(&ks, path, &e) == MU_ERR_FORMAT && strstr(e.msg, "keys[5].id"), "bad id: %s", e.msg);
	strcpy(ks.k[5].id, "key-4");
	CHECK(mu_keys_save(&ks, path, &e) == MU_ERR_FORMAT && strstr(e.msg, "keys[5].id"), "duplicate id: %s", e.msg);
	strcpy(ks.k[5].id, "key-5");
	memcpy(ks.k[6].hash, ks.k[2].hash, 32);
	CHECK(mu_keys_save(&ks, path, &e) == MU_ERR_FORMAT && strstr(e.msg, "keys[6].sha256"), "duplicate hash: %s",
	      e.msg);
	mu_sha256("x", 1, ks.k[6].hash);
	ks.k[7].burst = 0;
	CHECK(mu_keys_save(&ks, path, &e) == MU_ERR_RANGE && strstr(e.msg, "keys[7].burst"), "burst 0: %s", e.msg);
	ks.k[7].burst = 1;
	ks.k[8].daily_bytes = (uint64_t)INT64_MAX + 1;
	CHECK(mu_keys_save(&ks, path, &e) == MU_ERR_RANGE, "bytes above INT64_MAX: %s", e.msg);
	ks.k[8].daily_bytes = 0;
	char *after = read_all(path);
	CHECK(before && after && !strcmp(before, after), "refused saves left the file alone");
	free(before);
	free(after);
	/* nothing but the file (and no temporary) in the directory, ledgers aside */
	DIR *dh = opendir(dir);
	int stray = 0;
	struct dirent *de;
	while (dh && (de = readdir(dh)))
		stray += strstr(de->d_name, ".tmp") != NULL;
	if (dh)
		closedir(dh);
	CHECK_EQ_INT(stray, 0);

	/* the empty set round-trips */
	struct mu_keys empty = {0};
	CHECK(mu_keys_save(&empty, path, &e) == MU_OK, "save empty: %s", e.msg);
	CHECK(mu_keys_load(&back, path, &e) == MU_OK && back.n == 0, "load empty: %s", e.msg);
	mu_keys_free(&back);
	/* a save into a directory that does not exist */
	char nowhere[600];
	snprintf(nowhere, sizeof nowhere, "%s/no/keys.json", dir);
	CHECK(mu_keys_save(&ks, nowhere, &e) == MU_ERR_IO, "save into a missing directory: %s", e.msg);
	mu_keys_free(&ks);
}

static void cleanup(void)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	char p[600];
	while (dh && (de = readdir(dh))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (dh)
		closedir(dh);
	rmdir(dir);
}

int main(void)
{
	snprintf(dir, sizeof dir, "%s/mu_test_apikeys.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof path, "%s/keys.json", dir);
	test_load_valid();
	test_load_refusals();
	test_too_many();
	test_find();
	test_rate();
	test_quota();
	test_new_and_save();
	cleanup();
	return test_done();
}
