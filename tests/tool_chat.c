/* tool_chat.c — renders a conversation with a vocabulary's chat template, for tests/cli_chat.sh.
 *
 *   tool_chat VOCAB.gguf TEXT_OUT [--template NAME] [--no-gen] ROLE CONTENT [ROLE CONTENT ...]
 *
 * Writes the rendered prompt to TEXT_OUT and prints the token ids on stdout, space-separated.
 * ROLE is system, user or assistant. Exit status 1 with a message on any refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "pal/pal.h"

int main(int argc, char **argv)
{
	struct mu_error err;
	struct pal_map map;
	struct gguf g;
	struct mu_tokenizer tok;
	size_t need, tok_need;
	int gen = 1, forced = -1, i = 3;

	if (argc < 5) {
		fprintf(stderr, "usage: tool_chat VOCAB.gguf TEXT_OUT [--template NAME] [--no-gen] ROLE CONTENT ...\n");
		return 2;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--no-gen"))
			gen = 0;
		else if (!strcmp(argv[i], "--template") && i + 1 < argc)
			forced = mu_chat_template_from_name(argv[++i]);
		else {
			fprintf(stderr, "tool_chat: bad option %s\n", argv[i]);
			return 2;
		}
	}
	if ((argc - i) % 2 || argc - i < 2) {
		fprintf(stderr, "tool_chat: messages come in ROLE CONTENT pairs\n");
		return 2;
	}
	if (pal_map_file(&map, argv[1], &err) || gguf_mem_size(map.data, map.len, &need, &err)) {
		fprintf(stderr, "tool_chat: %s\n", err.msg);
		return 1;
	}
	void *gmem = malloc(need);
	if (gguf_parse(&g, map.data, map.len, gmem, need, &err) || mu_tokenizer_mem_size(&g, &tok_need, &err)) {
		fprintf(stderr, "tool_chat: %s\n", err.msg);
		return 1;
	}
	void *tmem = malloc(tok_need);
	if (mu_tokenizer_init(&tok, &g, tmem, tok_need, &err)) {
		fprintf(stderr, "tool_chat: %s\n", err.msg);
		return 1;
	}

	size_t n = (size_t)(argc - i) / 2, total = 0;
	struct mu_chat_msg *msgs = calloc(n, sizeof *msgs);
	for (size_t k = 0; k < n; k++) {
		const char *role = argv[i + 2 * (int)k], *content = argv[i + 2 * (int)k + 1];
		msgs[k].role = !strcmp(role, "system") ? MU_ROLE_SYSTEM : !strcmp(role, "user") ? MU_ROLE_USER : MU_ROLE_ASSISTANT;
		if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
			fprintf(stderr, "tool_chat: unknown role %s\n", role);
			return 2;
		}
		msgs[k].content = content;
		msgs[k].len = strlen(content);
		total += msgs[k].len;
	}
	enum mu_chat_template c = forced >= 0 ? (enum mu_chat_template)forced : mu_chat_detect(&g, &tok);
	struct mu_chat_render r = {.cap = total + 4096, .max_parts = 16 * n + 16};
	r.text = malloc(r.cap);
	r.parts = malloc(r.max_parts * sizeof *r.parts);
	if (mu_chat_render(c, &tok, msgs, n, gen, NULL, &r, &err)) {
		fprintf(stderr, "tool_chat: %s\n", err.msg);
		return 1;
	}
	FILE *f = fopen(argv[2], "wb");
	if (!f || fwrite(r.text, 1, r.len, f) != r.len || fclose(f)) {
		fprintf(stderr, "tool_chat: cannot write %s\n", argv[2]);
		return 1;
	}
	size_t max_ids = r.len + 16, n_ids = 0, scratch_len = mu_tokenizer_scratch_size(r.len);
	int32_t *ids = malloc(max_ids * sizeof *ids);
	void *scratch = malloc(scratch_len);
	struct mu_arena a;
	mu_arena_init(&a, scratch, scratch_len);
	if (mu_chat_encode(&tok, &r, ids, max_ids, &n_ids, &a, &err)) {
		fprintf(stderr, "tool_chat: %s\n", err.msg);
		return 1;
	}
	for (size_t k = 0; k < n_ids; k++)
		printf("%s%d", k ? " " : "", ids[k]);
	printf("\n");
	fprintf(stderr, "template %s\n", mu_chat_template_name(c));
	free(scratch);
	free(ids);
	free(r.text);
	free(r.parts);
	free(msgs);
	free(tmem);
	free(gmem);
	pal_unmap(&map);
	return 0;
}
