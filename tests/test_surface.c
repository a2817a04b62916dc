/* test_surface.c — the parts of `mu surface` that read other programs' output: the seccomp
 * filter evaluator (against hand-written programs and against the enclave's own filter) and
 * the link-map reader. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/sandbox.h"
#include "host/surface.h"
#include "test.h"

/* a filter text from instructions written as "code jt jf k" lines */
static enum mu_err eval_text(const char *text, struct surface_filter *f, struct surface_eval *ev, char *msg,
			     size_t cap)
{
	struct mu_error err = {0};
	enum mu_err rc = surface_filter_parse(f, text, strlen(text), &err);
	if (!rc)
		rc = surface_filter_eval(f, ev, &err);
	snprintf(msg, cap, "%s", err.msg);
	return rc;
}

#define HDR "mu-sandbox-filter 1\nmode vm\ndefault kill-process\n"

static void test_hand_written(void)
{
	static struct surface_filter f;
	struct surface_eval ev;
	char msg[256];
	/*  0: A = arch            1: arch == x86_64 ? 2 : 3(kill)   ... */
	const char *prog = HDR "rule 0 read\nrule 9 mmap\n"
			       "ins 32 0 0 4\n"          /* 0: A = arch */
			       "ins 21 1 0 3221225534\n" /* 1: A == AUDIT_ARCH_X86_64 ? 3 : 2 */
			       "ins 6 0 0 2147483648\n"  /* 2: kill-process */
			       "ins 32 0 0 0\n"          /* 3: A = nr */
			       "ins 21 0 1 0\n"          /* 4: nr == 0 ? 5 : 6 */
			       "ins 6 0 0 2147418112\n"  /* 5: allow */
			       "ins 21 0 4 9\n"          /* 6: nr == 9 ? 7 : 11 */
			       "ins 32 0 0 32\n"         /* 7: A = args[2] low */
			       "ins 69 1 0 4\n"          /* 8: A & PROT_EXEC ? 10 : 9 */
			       "ins 6 0 0 2147418112\n"  /* 9: allow */
			       "ins 6 0 0 327681\n"      /* 10: errno 1 */
			       "ins 6 0 0 2147483648\n"  /* 11: kill-process */
			       "end\n";
	enum mu_err rc = eval_text(prog, &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK, "eval: %s", msg);
	CHECK_EQ_INT(ev.verdict[0], SV_ALLOWED);
	CHECK_EQ_INT(ev.verdict[9], SV_CHECKED);
	CHECK_EQ_INT(ev.verdict[1], SV_REFUSED);
	CHECK_EQ_INT(ev.verdict[1023], SV_REFUSED);
	CHECK_EQ_INT(ev.allowed, 2);
	CHECK_EQ_INT(ev.checked, 1);
	CHECK_EQ_INT(ev.foreign_arch_action, 0x80000000u);
	CHECK_EQ_INT(ev.default_action, 0x80000000u);
	CHECK(!strcmp(surface_filter_name(&f, 9), "mmap"), "name");
	CHECK(surface_filter_name(&f, 1) == NULL, "no name");
	char a[32];
	surface_action_name(327681, a, sizeof a);
	CHECK(!strcmp(a, "errno 1"), "%s", a);
	static const struct {
		uint32_t action;
		const char *want;
	} names[] = {{0x80000000u, "kill-process"}, {0, "kill-thread"}, {0x00030007u, "trap"},
		     {0x7fc00000u, "user-notif"}, {0x7ff00000u, "trace"}, {0x7ffc0000u, "log"},
		     {0x7fff0000u, "allow"}, {0x12340000u, "unknown 0x12340000"}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		surface_action_name(names[i].action, a, sizeof a);
		CHECK(!strcmp(a, names[i].want), "0x%08x: %s", (unsigned)names[i].action, a);
	}

	/* an allow-all filter: every number allowed */
	rc = eval_text(HDR "ins 6 0 0 2147418112\nend\n", &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK && ev.allowed == SURFACE_NR_MAX && ev.checked == 0, "allow all: %zu", ev.allowed);
	/* arithmetic on an argument before the compare: arg0 - 5 == 0 allows nr 0 (checked) */
	rc = eval_text(HDR "ins 32 0 0 0\nins 21 0 4 0\nins 32 0 0 16\nins 20 0 0 5\nins 21 0 1 0\n"
			   "ins 6 0 0 2147418112\nins 6 0 0 2147483648\nend\n",
		       &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK && ev.verdict[0] == SV_CHECKED && ev.allowed == 1, "sub: %s %d", msg, ev.verdict[0]);
	/* two argument words at once: arg0 == 7 and arg1 == 9 */
	rc = eval_text(HDR "ins 32 0 0 16\nins 21 0 3 7\nins 32 0 0 24\nins 21 0 1 9\n"
			   "ins 6 0 0 2147418112\nins 6 0 0 2147483648\nend\n",
		       &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK && ev.allowed == SURFACE_NR_MAX && ev.checked == SURFACE_NR_MAX, "two words: %s %zu",
	      msg, ev.checked);
	/* a comparison with X, loaded from an argument through scratch memory */
	rc = eval_text(HDR "ins 32 0 0 16\nins 2 0 0 3\nins 97 0 0 3\nins 0 0 0 4\nins 29 0 1 0\n"
			   "ins 6 0 0 2147418112\nins 6 0 0 0\nend\n",
		       &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK && ev.checked == SURFACE_NR_MAX, "via X: %s %zu", msg, ev.checked);
	/* log lets the call run: allowed */
	rc = eval_text(HDR "ins 6 0 0 2147221504\nend\n", &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK && ev.allowed == SURFACE_NR_MAX && ev.checked == 0, "log: %zu", ev.allowed);
	/* RET A with A from an argument: may be anything, so checked */
	rc = eval_text(HDR "ins 32 0 0 16\nins 22 0 0 0\nend\n", &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK && ev.checked == SURFACE_NR_MAX, "ret A: %zu", ev.checked);
	/* division by X == 0 ends the program with 0 (kill-thread) */
	rc = eval_text(HDR "ins 0 0 0 8\nins 1 0 0 0\nins 60 0 0 0\nins 6 0 0 2147418112\nend\n", &f, &ev,
		       msg, sizeof msg);
	CHECK(rc == MU_OK && ev.allowed == 0 && ev.default_action == 0, "div X 0: %zu", ev.allowed);
	/* the return value from A: allow when nr is even (A = nr & 1; A == 0 ? allow : kill) */
	rc = eval_text(HDR "ins 32 0 0 0\nins 84 0 0 1\nins 21 0 1 0\nins 6 0 0 2147418112\n"
			   "ins 6 0 0 0\nend\n",
		       &f, &ev, msg, sizeof msg);
	CHECK(rc == MU_OK && ev.allowed == SURFACE_NR_MAX / 2 && ev.verdict[2] == SV_ALLOWED &&
		      ev.verdict[3] == SV_REFUSED,
	      "even: %zu", ev.allowed);
}

static void test_refused_programs(void)
{
	static struct surface_filter f;
	struct surface_eval ev;
	char msg[256];
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"mu-sandbox-filter 2\nend\n", "does not start"},
		{HDR "ins 6 0 0 0\n", "no \"end\""},
		{HDR "end\n", "no instructions"},
		{HDR "ins 6 0 0 0\nend\nins 6 0 0 0\n", "after \"end\""},
		{HDR "ins 21 5 0 1\nins 6 0 0 0\nend\n", "jumps past the end"},
		{HDR "ins 5 0 0 7\nins 6 0 0 0\nend\n", "jumps past the end"},
		{HDR "ins 32 0 0 64\nins 6 0 0 0\nend\n", "outside seccomp_data"},
		{HDR "ins 32 0 0 2\nins 6 0 0 0\nend\n", "outside seccomp_data"},
		{HDR "ins 32 0 0 0\nend\n", "does not end in a return"},
		{HDR "ins 48 0 0 0\nins 6 0 0 0\nend\n", "a load seccomp refuses"},
		{HDR "ins 52 0 0 0\nins 6 0 0 0\nend\n", "divides by zero"},
		{HDR "ins 148 0 0 3\nins 6 0 0 0\nend\n", "modulo"},
		{HDR "ins 100 0 0 32\nins 6 0 0 0\nend\n", "shifts by 32"},
		{HDR "ins 2 0 0 16\nins 6 0 0 0\nend\n", "scratch slot"},
		{HDR "ins 6 0 0\nend\n", "malformed instruction"},
		{HDR "ins 65536 0 0 0\nend\n", "malformed instruction"},
		{HDR "ins 6 256 0 0\nend\n", "malformed instruction"},
		{HDR "ins 6 0 0 4294967296\nend\n", "malformed instruction"},
		{HDR "rule 1024 x\nins 6 0 0 0\nend\n", "malformed rule"},
		{HDR "rule 1 \nins 6 0 0 0\nend\n", "malformed rule"},
		{HDR "bogus\nend\n", "unexpected text"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum mu_err rc = eval_text(bad[i].text, &f, &ev, msg, sizeof msg);
		CHECK(rc != MU_OK && strstr(msg, bad[i].want), "case %zu: %s (want %s)", i, msg, bad[i].want);
	}
}

/* The enclave's own filter, dumped as `mu-enclave --sandbox-filter` does, allows exactly the
 * table's names: in process mode all of them, in the VM all but accept and accept4. */
static void test_enclave_filter(void)
{
	static struct surface_filter f;
	struct surface_eval ev;
	struct mu_error err = {0};
	size_t n_names;
	const char *const *names = mu_sandbox_allowed(&n_names);
	for (int accept = 0; accept < 2; accept++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		CHECK(m != NULL, "open_memstream");
		if (!m)
			return;
		enum mu_err rc = mu_sandbox_dump(m, accept, &err);
		fclose(m);
		CHECK(rc == MU_OK, "dump: %s", err.msg);
		rc = surface_filter_parse(&f, buf, len, &err);
		CHECK(rc == MU_OK, "parse: %s", err.msg);
		rc = surface_filter_eval(&f, &ev, &err);
		CHECK(rc == MU_OK, "eval: %s", err.msg);
		free(buf);
		if (rc)
			return;
		CHECK(!strcmp(f.mode, accept ? "process" : "vm"), "mode %s", f.mode);
		size_t want = accept ? n_names : n_names - 2;
		CHECK(ev.allowed == want, "accept=%d: %zu allowed, the table has %zu", accept, ev.allowed, want);
		/* every allowed number has a rule name from the table, and every table name (but the
		 * accepts in the VM) is allowed */
		size_t named = 0;
		for (uint32_t nr = 0; nr < SURFACE_NR_MAX; nr++) {
			if (ev.verdict[nr] == SV_REFUSED)
				continue;
			const char *nm = surface_filter_name(&f, nr);
			int in_table = 0;
			for (size_t i = 0; nm && i < n_names; i++)
				in_table |= !strcmp(nm, names[i]);
			CHECK(in_table, "nr %u (%s) is allowed but not in the table", nr, nm ? nm : "?");
			named++;
		}
		CHECK_EQ_INT(named, want);
		/* the argument checks show: mmap (PROT_EXEC), futex (op), fcntl (cmd), tgkill (own
		 * tgid), sendto (no address) are allowed only for some arguments */
		static const uint32_t checked[] = {9, 10, 202, 72, 234, 44};
		for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++)
			CHECK(ev.verdict[checked[i]] == SV_CHECKED, "nr %u: verdict %d", checked[i],
			      ev.verdict[checked[i]]);
		CHECK_EQ_INT(ev.verdict[0], SV_ALLOWED);  /* read */
		CHECK_EQ_INT(ev.verdict[2], SV_REFUSED);  /* open */
		CHECK_EQ_INT(ev.verdict[59], SV_REFUSED); /* execve */
		CHECK_EQ_INT(ev.verdict[41], SV_REFUSED); /* socket */
		CHECK_EQ_INT(ev.verdict[43], accept ? SV_ALLOWED : SV_REFUSED); /* accept */
		CHECK_EQ_INT(ev.foreign_arch_action, 0x80000000u);
		CHECK_EQ_INT(ev.x32_action, 0x80000000u);
	}
}

static size_t map_n;
static uint64_t map_bytes;
static char map_seen[512];
static void on_sec(void *ctx, const struct surface_map_sec *s)
{
	(void)ctx;
	size_t l = strlen(map_seen);
	if (!s->file) {
		snprintf(map_seen + l, sizeof map_seen - l, "[%s %llx+%llx]", s->out, (unsigned long long)s->addr,
			 (unsigned long long)s->size);
		return;
	}
	map_n++;
	map_bytes += s->size;
	snprintf(map_seen + l, sizeof map_seen - l, "%s@%s;", s->out, s->file);
}

static void test_map(void)
{
	static const char map[] =
		"Archive member included to satisfy reference by file (symbol)\n\n"
		"/usr/lib/libc.a(memcpy.lo)\n                              obj/a.o (memcpy)\n\n"
		"Discarded input sections\n\n .text          0x0000000000000000       0x10 obj/gone.o\n\n"
		"Linker script and memory map\n\n"
		"LOAD obj/a.o\n"
		".text           0x0000000000001000      0x200\n"
		" *(.text.unlikely .text.*_unlikely .text.unlikely.*)\n"
		" .text          0x0000000000001000       0x40 obj/a.o\n"
		"                0x0000000000001000                main\n"
		" *fill*         0x0000000000001040        0x0 \n"
		" .text.a_very_long_section_name_that_wraps\n"
		"                0x0000000000001040       0x30 obj/a.o\n"
		" .text          0x0000000000001070       0x90 /usr/lib/libc.a(memcpy.lo)\n"
		" .text          0x0000000000001100        0x0 obj/empty.o\n"
		".rodata.a_long_output_section_name\n"
		"                0x0000000000002000       0x20\n"
		" .rodata.x      0x0000000000002000       0x20 obj/a.o\n"
		".debug_info     0x0000000000000000      0x100\n"
		" .debug_info    0x0000000000000000      0x100 obj/a.o\n";
	char *copy = strdup(map);
	struct mu_error err = {0};
	enum mu_err rc = surface_map_parse(copy, sizeof map, on_sec, NULL, &err);
	CHECK(rc == MU_OK, "map: %s", err.msg);
	CHECK_EQ_INT(map_n, 5);
	CHECK_EQ_INT(map_bytes, 0x40 + 0x30 + 0x90 + 0x20 + 0x100);
	CHECK(!strcmp(map_seen, "[.text 1000+200].text@obj/a.o;.text@obj/a.o;.text@/usr/lib/libc.a(memcpy.lo);"
				"[.rodata.a_long_output_section_name 2000+20].rodata.a_long_output_section_name@obj/a.o;"
				"[.debug_info 0+100].debug_info@obj/a.o;"),
	      "%s", map_seen);
	free(copy);

	char not_map[] = "hello\n";
	rc = surface_map_parse(not_map, sizeof not_map, on_sec, NULL, &err);
	CHECK(rc == MU_ERR_FORMAT && strstr(err.msg, "not a GNU ld link map"), "%s", err.msg);
	char empty[] = "Linker script and memory map\n\n";
	rc = surface_map_parse(empty, sizeof empty, on_sec, NULL, &err);
	CHECK(rc == MU_ERR_FORMAT && strstr(err.msg, "no input sections"), "%s", err.msg);
}

int main(void)
{
	test_hand_written();
	test_refused_programs();
	test_enclave_filter();
	test_map();
	return test_done();
}
