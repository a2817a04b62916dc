/* cmd_audit.c — `mu audit verify FILE`: checks a hash-chained audit log written by mu proxy
 * (host/audit.h) and prints one line about it.
 *
 *     FILE: ok, N records, head HASH        exit 0
 *     FILE: line K: WHY                     exit 1 (the first broken line, or an incomplete
 *                                           last line the writer did not finish)
 *     mu audit: FILE: cannot open: ...      exit 1 (on stderr)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "host/audit.h"
#include "host/cli.h"
#include "seal/crypto.h"

static void audit_usage(FILE *f)
{
	fprintf(f, "usage: mu audit verify FILE\n\n"
		   "Checks a hash-chained audit log: every line is one strict JSON object, seq counts 1, 2, 3 ...\n"
		   "with no gaps, and each prev is the SHA-256 of the line before. Prints\n"
		   "  FILE: ok, N records, head HASH\n"
		   "and exits 0, or names the first broken line and exits 1. An edited line usually shows as\n"
		   "a prev mismatch on the line after it; an edit of the last line changes only the head, so\n"
		   "compare HASH with a copy of it kept elsewhere.\n");
}

int cmd_audit(int argc, char **argv)
{
	const char *file = NULL;
	int verify = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			audit_usage(stdout);
			return 0;
		} else if (!verify && !strcmp(argv[i], "verify")) {
			verify = 1;
		} else if (verify && !file && argv[i][0] != '-') {
			file = argv[i];
		} else {
			fprintf(stderr, "mu audit: unexpected argument '%s'\n", argv[i]);
			audit_usage(stderr);
			return 2;
		}
	}
	if (!verify || !file) {
		audit_usage(stderr);
		return 2;
	}

	struct mu_audit_report rep;
	struct mu_error err = {0};
	if (mu_audit_verify(file, &rep, &err) != MU_OK) {
		cli_error("audit", &err);
		return 1;
	}
	if (rep.bad_line) {
		printf("%s: line %" PRIu64 ": %s\n", file, rep.bad_line, rep.why);
		return 1;
	}
	if (rep.torn_tail) {
		printf("%s: line %" PRIu64 ": incomplete last line (%d bytes without a newline: the writer stopped "
		       "mid-record; mu proxy cuts it off and records audit_recovered when it reopens the log)\n",
		       file, rep.lines + 1, rep.torn_tail);
		return 1;
	}
	char head[2 * MU_SHA256_LEN + 1];
	mu_hex(rep.head, MU_SHA256_LEN, head);
	printf("%s: ok, %" PRIu64 " records, head %s\n", file, rep.lines, head);
	return 0;
}
