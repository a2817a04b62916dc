/* cmd_keys.c — `mu keys`: makes and manages the HTTP API's keys file (host/apikeys.h).
 *
 *     mu keys add    --file F --id ID [LIMITS]   the new key on stdout, once; only its hash is kept
 *     mu keys list   --file F                    one line per key: id and limits, never hashes
 *     mu keys set    --file F --id ID LIMITS     changes a key's limits
 *     mu keys remove --file F --id ID
 *     mu keys hash                               SHA-256 of a key read from stdin (keys made elsewhere)
 *
 * Every change loads the whole file (refusing a bad one), edits it in memory and saves it with
 * mu_keys_save: temporary file, fsync, rename, mode 0600. Exit codes: 0 done, 1 the file or
 * the change was refused, 2 usage. Neither a key nor its hash is ever written to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/apikeys.h"
#include "host/cli.h"
#include "seal/crypto.h"

#define KEYS_HASH_MAX_INPUT 4096u /* bytes of a key `mu keys hash` reads */
#define KEYS_HASH_MIN_SAFE 32u    /* shorter keys get a warning */

static const char limits_help[] =
	"  --rpm N           requests per minute (0: no rate limit)\n"
	"  --burst N         requests allowed at once, at least 1 (default max(1, rpm / 6); setting\n"
	"                    --rpm without --burst resets the burst to that default)\n"
	"  --daily-bytes N   output bytes per UTC day (0: no daily quota)\n"
	"  --total-bytes N   output bytes in total (0: no total quota)\n"
	"The output quotas are counted by mu proxy in <state dir>/ID.ledger and survive restarts.\n";

static void usage(FILE *f)
{
	fprintf(f, "usage: mu keys add    --file KEYS.json --id ID [--rpm N] [--burst N] [--daily-bytes N]\n"
		   "                     [--total-bytes N]\n"
		   "       mu keys list   --file KEYS.json\n"
		   "       mu keys set    --file KEYS.json --id ID [--rpm N] [--burst N] [--daily-bytes N]\n"
		   "                     [--total-bytes N]\n"
		   "       mu keys remove --file KEYS.json --id ID\n"
		   "       mu keys hash   < KEYFILE\n\n"
		   "Manages the API keys of mu proxy's HTTP API. A key is shown once, when `add` makes it;\n"
		   "the file keeps only its SHA-256 (mode 0600, written atomically). IDs are 1 to %d\n"
		   "characters of A-Z a-z 0-9 _ . -\n"
		   "'mu keys COMMAND --help' describes each command.\n",
		   MU_KEY_ID_MAX);
}

static void usage_add(FILE *f)
{
	fprintf(f, "usage: mu keys add --file KEYS.json --id ID [--rpm N] [--burst N] [--daily-bytes N]\n"
		   "                   [--total-bytes N]\n\n"
		   "Makes a new random key for ID and adds its SHA-256 to KEYS.json (created when missing).\n"
		   "The key is printed on stdout as the only line, once: it is not stored and cannot be shown\n"
		   "again. An ID already in the file is refused.\n%s",
		   limits_help);
}

static void usage_list(FILE *f)
{
	fprintf(f, "usage: mu keys list --file KEYS.json\n\n"
		   "Prints one line per key: its id and limits (\"none\" for no limit). Hashes are not shown.\n");
}

static void usage_set(FILE *f)
{
	fprintf(f, "usage: mu keys set --file KEYS.json --id ID [--rpm N] [--burst N] [--daily-bytes N]\n"
		   "                   [--total-bytes N]\n\n"
		   "Changes the limits of key ID; limits not named stay as they are. The key itself does not\n"
		   "change. mu proxy reads the file when it starts.\n%s",
		   limits_help);
}

static void usage_remove(FILE *f)
{
	fprintf(f, "usage: mu keys remove --file KEYS.json --id ID\n\n"
		   "Removes key ID: mu proxy refuses it once it restarts. Its quota ledger (ID.ledger in the\n"
		   "proxy's state directory) is left in place; a new key with the same ID would inherit its\n"
		   "counts.\n");
}

static void usage_hash(FILE *f)
{
	fprintf(f, "usage: mu keys hash < KEYFILE\n\n"
		   "Reads one key from stdin (one trailing newline is dropped) and prints its SHA-256 in hex,\n"
		   "for a keys file entry of a key made elsewhere. The key must be 1 to %u bytes of printable\n"
		   "ASCII without spaces (it travels as \"Authorization: Bearer KEY\").\n",
		   KEYS_HASH_MAX_INPUT);
}

struct keys_opts {
	const char *file, *id;
	int has_rpm, has_burst, has_daily, has_total;
	uint32_t rpm, burst;
	uint64_t daily, total;
};

/* Parses the options of one command (argv[0] is its name). with_id / with_limits say which are
 * allowed. Returns 0 to go on, 1 after --help (exit 0), 2 on a usage error (reported). */
static int parse_opts(int argc, char **argv, int with_id, int with_limits, void (*help)(FILE *),
		      struct keys_opts *o)
{
	const char *val;
	memset(o, 0, sizeof *o);
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			help(stdout);
			return 1;
		}
		if ((r = cli_opt(argc, argv, &i, "--file", NULL, &o->file)) ||
		    (with_id && (r = cli_opt(argc, argv, &i, "--id", NULL, &o->id)))) {
			if (r < 0)
				goto err;
			continue;
		}
		if (with_limits) {
			if ((r = cli_opt(argc, argv, &i, "--rpm", NULL, &val))) {
				if (r < 0 || cli_u32("--rpm", val, 0, UINT32_MAX, &o->rpm))
					goto err;
				o->has_rpm = 1;
				continue;
			}
			if ((r = cli_opt(argc, argv, &i, "--burst", NULL, &val))) {
				if (r < 0 || cli_u32("--burst", val, 1, UINT32_MAX, &o->burst))
					goto err;
				o->has_burst = 1;
				continue;
			}
			if ((r = cli_opt(argc, argv, &i, "--daily-bytes", NULL, &val))) {
				if (r < 0 || cli_u64("--daily-bytes", val, &o->daily))
					goto err;
				o->has_daily = 1;
				continue;
			}
			if ((r = cli_opt(argc, argv, &i, "--total-bytes", NULL, &val))) {
				if (r < 0 || cli_u64("--total-bytes", val, &o->total))
					goto err;
				o->has_total = 1;
				continue;
			}
		}
		fprintf(stderr, "mu keys %s: unexpected argument '%s'\n", argv[0], argv[i]);
		goto err;
	}
	if (!o->file) {
		fprintf(stderr, "mu keys %s: --file is required\n", argv[0]);
		goto err;
	}
	if (with_id && !o->id) {
		fprintf(stderr, "mu keys %s: --id is required\n", argv[0]);
		goto err;
	}
	if (with_id) { /* the same rule mu_keys_load applies, checked here to answer with a usage error */
		size_t n = strlen(o->id);
		int okc = n >= 1 && n <= MU_KEY_ID_MAX;
		for (size_t j = 0; okc && j < n; j++) {
			char c = o->id[j];
			okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
			      c == '.' || c == '-';
		}
		if (!okc) {
			fprintf(stderr, "mu keys %s: --id: must be 1 to %d characters of A-Z a-z 0-9 _ . -\n", argv[0],
				MU_KEY_ID_MAX);
			goto err;
		}
	}
	return 0;
err:
	help(stderr);
	return 2;
}

/* Applies the limits named in o to k (set and add). */
static void apply_limits(const struct keys_opts *o, struct mu_apikey *k)
{
	if (o->has_rpm) {
		k->requests_per_minute = o->rpm;
		k->burst = o->rpm / 6 > 1 ? o->rpm / 6 : 1; /* the file's default, apikeys.h */
	}
	if (o->has_burst)
		k->burst = o->burst;
	if (o->has_daily)
		k->daily_bytes = o->daily;
	if (o->has_total)
		k->total_bytes = o->total;
	if (o->has_burst && k->requests_per_minute == 0)
		fprintf(stderr, "mu keys: note: --burst has no effect while the key has no rate limit (--rpm)\n");
}

static int find_id(const struct mu_keys *ks, const char *id)
{
	for (uint32_t i = 0; i < ks->n; i++)
		if (!strcmp(ks->k[i].id, id))
			return (int)i;
	return -1;
}

static int load_or_fail(struct mu_keys *ks, const char *file, const char *cmd)
{
	struct mu_error err = {0};
	if (mu_keys_load(ks, file, &err) != MU_OK) {
		fprintf(stderr, "mu keys %s: %s\n", cmd, err.msg);
		return 1;
	}
	return 0;
}

static int save_or_fail(const struct mu_keys *ks, const char *file, const char *cmd)
{
	struct mu_error err = {0};
	if (mu_keys_save(ks, file, &err) != MU_OK) {
		fprintf(stderr, "mu keys %s: %s (the file was not changed)\n", cmd, err.msg);
		return 1;
	}
	return 0;
}

static int keys_add(int argc, char **argv)
{
	struct keys_opts o;
	struct mu_keys ks = {0};
	struct mu_error err = {0};
	struct stat sb;
	char key[MU_KEY_TEXT_LEN + 1];
	int r = parse_opts(argc, argv, 1, 1, usage_add, &o);
	if (r)
		return r == 1 ? 0 : 2;

	if (stat(o.file, &sb) != 0 && errno == ENOENT) {
		fprintf(stderr, "mu keys add: %s does not exist; creating it\n", o.file);
	} else if (load_or_fail(&ks, o.file, "add")) {
		return 1;
	}
	if (find_id(&ks, o.id) >= 0) {
		fprintf(stderr, "mu keys add: %s: a key with id \"%s\" exists already (remove it first, or use mu keys set "
				"to change its limits)\n",
			o.file, o.id);
		mu_keys_free(&ks);
		return 1;
	}
	if (ks.n >= MU_KEYS_MAX) {
		fprintf(stderr, "mu keys add: %s: holds %d keys already, the most a keys file may hold\n", o.file,
			MU_KEYS_MAX);
		mu_keys_free(&ks);
		return 1;
	}
	struct mu_apikey *grown = realloc(ks.k, ((size_t)ks.n + 1) * sizeof *grown);
	if (!grown) {
		fprintf(stderr, "mu keys add: out of memory\n");
		mu_keys_free(&ks);
		return 1;
	}
	ks.k = grown;
	struct mu_apikey *k = &ks.k[ks.n];
	memset(k, 0, sizeof *k);
	memcpy(k->id, o.id, strlen(o.id) + 1);
	k->burst = 1;
	apply_limits(&o, k);
	if (mu_key_new(key, k->hash, &err) != MU_OK) {
		cli_error("keys add", &err);
		mu_keys_free(&ks);
		return 1;
	}
	ks.n++;
	int code = save_or_fail(&ks, o.file, "add");
	mu_keys_free(&ks);
	if (code == 0) {
		/* Saved: the key may be shown now, and only now. */
		printf("%s\n", key);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "mu keys add: the key could not be written to stdout; remove key \"%s\" and add it "
					"again\n",
				o.id);
			code = 1;
		} else {
			fprintf(stderr, "mu keys add: added key \"%s\" to %s. The key above is shown only this once: "
					"store it now (the file keeps only its SHA-256).\n",
				o.id, o.file);
		}
	}
	mu_wipe(key, sizeof key);
	return code;
}

static void print_limit(const char *name, uint64_t v)
{
	if (v)
		printf(" %s=%" PRIu64, name, v);
	else
		printf(" %s=none", name);
}

static int keys_list(int argc, char **argv)
{
	struct keys_opts o;
	struct mu_keys ks = {0};
	int r = parse_opts(argc, argv, 0, 0, usage_list, &o);
	if (r)
		return r == 1 ? 0 : 2;
	if (load_or_fail(&ks, o.file, "list"))
		return 1;
	for (uint32_t i = 0; i < ks.n; i++) {
		const struct mu_apikey *k = &ks.k[i];
		printf("%s", k->id);
		print_limit("rpm", k->requests_per_minute);
		if (k->requests_per_minute)
			printf(" burst=%" PRIu32, k->burst);
		else
			printf(" burst=-");
		print_limit("daily_bytes", k->daily_bytes);
		print_limit("total_bytes", k->total_bytes);
		printf("\n");
	}
	if (ks.n == 0)
		fprintf(stderr, "mu keys list: %s holds no keys\n", o.file);
	mu_keys_free(&ks);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mu keys list: cannot write to stdout\n");
		return 1;
	}
	return 0;
}

static int keys_set(int argc, char **argv)
{
	struct keys_opts o;
	struct mu_keys ks = {0};
	int r = parse_opts(argc, argv, 1, 1, usage_set, &o);
	if (r)
		return r == 1 ? 0 : 2;
	if (!o.has_rpm && !o.has_burst && !o.has_daily && !o.has_total) {
		fprintf(stderr, "mu keys set: name at least one limit to change\n");
		usage_set(stderr);
		return 2;
	}
	if (load_or_fail(&ks, o.file, "set"))
		return 1;
	int i = find_id(&ks, o.id);
	if (i < 0) {
		fprintf(stderr, "mu keys set: %s: no key with id \"%s\" (mu keys list shows the ids)\n", o.file, o.id);
		mu_keys_free(&ks);
		return 1;
	}
	apply_limits(&o, &ks.k[i]);
	int code = save_or_fail(&ks, o.file, "set");
	mu_keys_free(&ks);
	if (code == 0)
		fprintf(stderr, "mu keys set: changed the limits of key \"%s\" in %s\n", o.id, o.file);
	return code;
}

static int keys_remove(int argc, char **argv)
{
	struct keys_opts o;
	struct mu_keys ks = {0};
	int r = parse_opts(argc, argv, 1, 0, usage_remove, &o);
	if (r)
		return r == 1 ? 0 : 2;
	if (load_or_fail(&ks, o.file, "remove"))
		return 1;
	int i = find_id(&ks, o.id);
	if (i < 0) {
		fprintf(stderr, "mu keys remove: %s: no key with id \"%s\" (mu keys list shows the ids)\n", o.file, o.id);
		mu_keys_free(&ks);
		return 1;
	}
	memmove(&ks.k[i], &ks.k[i + 1], (ks.n - (uint32_t)i - 1) * sizeof ks.k[0]);
	ks.n--;
	int code = save_or_fail(&ks, o.file, "remove");
	mu_keys_free(&ks);
	if (code == 0)
		fprintf(stderr, "mu keys remove: removed key \"%s\" from %s\n", o.id, o.file);
	return code;
}

static int keys_hash(int argc, char **argv)
{
	char buf[KEYS_HASH_MAX_INPUT + 3]; /* a key, "\r\n", and one byte to see a longer one */
	uint8_t h[MU_SHA256_LEN];
	char hex[2 * MU_SHA256_LEN + 1];
	size_t n = 0;
	int code = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage_hash(stdout);
			return 0;
		}
		fprintf(stderr, "mu keys hash: unexpected argument '%s' (the key is read from stdin, never taken as an "
				"argument)\n",
			argv[i]);
		usage_hash(stderr);
		return 2;
	}
	for (;;) {
		ssize_t got = read(STDIN_FILENO, buf + n, sizeof buf - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, "mu keys hash: cannot read stdin: %s\n", strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == sizeof buf)
			break;
	}
	if (n == sizeof buf) {
		fprintf(stderr, "mu keys hash: the key is longer than %u bytes\n", KEYS_HASH_MAX_INPUT);
		goto out;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		fprintf(stderr, "mu keys hash: stdin holds no key\n");
		goto out;
	}
	if (n > KEYS_HASH_MAX_INPUT) {
		fprintf(stderr, "mu keys hash: the key is longer than %u bytes\n", KEYS_HASH_MAX_INPUT);
		goto out;
	}
	for (size_t j = 0; j < n; j++)
		if ((unsigned char)buf[j] <= 0x20 || (unsigned char)buf[j] >= 0x7f) {
			fprintf(stderr, "mu keys hash: byte %zu of the key is a space, a control byte or not ASCII: an HTTP "
					"bearer token cannot carry it\n",
				j + 1);
			goto out;
		}
	if (n < KEYS_HASH_MIN_SAFE)
		fprintf(stderr, "mu keys hash: warning: a key of %zu characters may be guessable; mu keys add makes keys "
				"of 32 random bytes\n",
			n);
	mu_sha256(buf, n, h);
	mu_hex(h, sizeof h, hex);
	printf("%s\n", hex);
	code = fflush(stdout) == 0 ? 0 : 1;
	if (code)
		fprintf(stderr, "mu keys hash: cannot write to stdout\n");
out:
	mu_wipe(buf, sizeof buf);
	mu_wipe(h, sizeof h);
	return code;
}

int cmd_keys(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} sub[] = {
		{"add", keys_add}, {"list", keys_list}, {"set", keys_set}, {"remove", keys_remove}, {"hash", keys_hash},
	};
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
		if (!strcmp(argv[1], sub[i].name))
			return sub[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mu keys: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
