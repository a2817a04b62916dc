/* test.h — the plain assertion macros every test binary uses. Each binary ends with
 * `return test_done();`, which prints the closing line "N passed, N failed". */
#ifndef MU_TESTS_TEST_H
#define MU_TESTS_TEST_H

#include <stdio.h>

static int test_passed_n, test_failed_n;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (cond) {                                                           \
			test_passed_n++;                                              \
		} else {                                                              \
			test_failed_n++;                                              \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fputc('\n', stderr);                                          \
		}                                                                     \
	} while (0)

/* Like CHECK but quiet on success; counts one assertion either way. */
#define CHECK_EQ_INT(a, b) CHECK((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))

static inline int test_done(void)
{
	printf("%d passed, %d failed\n", test_passed_n, test_failed_n);
	return test_failed_n ? 1 : 0;
}

#endif
