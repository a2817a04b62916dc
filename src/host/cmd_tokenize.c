/* cmd_tokenize.c — `mu tokenize`: the token ids of a text, space-separated on one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mu tokenize -m MODEL_OR_VOCAB.gguf -p TEXT [--special] [--no-bos] [--pieces]\n\n"
		   "Prints the ids of TEXT under the file's vocabulary (any GGUF with a tokenizer, including\n"
		   "vocab-only files from mu vocab).\n"
		   "  --special   text spelling a control or user-defined token (\"<|eot_id|>\") becomes that\n"
		   "              token; without it such text is tokenized as ordinary characters\n"
		   "  --no-bos    do not add BOS (EOS) even when the vocabulary asks for them\n"
		   "  --pieces    print id:piece pairs instead of bare ids\n");
}

int cmd_tokenize(int argc, char **argv)
{
	const char *model = NULL, *prompt = NULL;
	int special = 0, bos = 1, pieces = 0;
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--special")) {
			special = 1;
			continue;
		}
		if (!strcmp(argv[i], "--no-bos")) {
			bos = 0;
			continue;
		}
		if (!strcmp(argv[i], "--pieces")) {
			pieces = 1;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "-m", "--model", &model)) ||
		    (r = cli_opt(argc, argv, &i, "-p", "--prompt", &prompt))) {
			if (r < 0)
				return 2;
			continue;
		}
		fprintf(stderr, "mu tokenize: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (!model || !prompt) {
		fprintf(stderr, "mu tokenize: -m and -p are required\n");
		usage(stderr);
		return 2;
	}

	struct mu_session s;
	struct mu_error err;
	int code = 1;
	size_t len = strlen(prompt), n = 0, max = len + 8;
	size_t scratch_len = mu_tokenizer_scratch_size(len);
	int32_t *ids = malloc(max * sizeof *ids);
	void *scratch = malloc(scratch_len ? scratch_len : 1);
	if (!ids || !scratch) {
		fprintf(stderr, "mu tokenize: out of memory\n");
		free(ids);
		free(scratch);
		return 1;
	}
	if (session_open(&s, model, 0, 0, 1, &err) || session_tokenizer(&s, &err)) {
		cli_error("tokenize", &err);
		goto out_free;
	}
	struct mu_arena a;
	mu_arena_init(&a, scratch, scratch_len);
	unsigned flags = (bos ? MU_TOKENIZER_ADD_SPECIAL : 0) | (special ? MU_TOKENIZER_PARSE_SPECIAL : 0);
	if (mu_tokenizer_encode(&s.tok, prompt, len, flags, ids, max, &n, &a, &err)) {
		cli_error("tokenize", &err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		printf("%s%d", i ? " " : "", ids[i]);
		if (pieces) {
			/* the raw piece as stored in the vocabulary, shown with escapes */
			const uint8_t *p = s.tok.piece[ids[i]];
			putchar(':');
			for (uint32_t k = 0; k < s.tok.piece_len[ids[i]]; k++)
				if (p[k] < 0x20 || p[k] == 0x7f || p[k] == '\\')
					printf("\\x%02x", p[k]);
				else
					putchar(p[k]);
		}
	}
	printf("\n");
	code = 0;
out:
	session_close(&s);
out_free:
	free(ids);
	free(scratch);
	return code;
}
