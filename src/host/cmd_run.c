/* cmd_run.c — `mu run`: local inference for development. Generated text goes to stdout as it
 * is produced; everything else (load time, speeds, warnings) goes to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "engine/sampler.h"
#include "host/cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu run -m MODEL.gguf -p TEXT [options]\n\n"
		"Generates a continuation of TEXT and prints prompt and continuation on stdout.\n"
		"  -n N                 tokens to generate at most (default 256); stops early at EOS\n"
		"  --temp T             temperature, 0 = greedy (default 0.8)\n"
		"  --seed S             sampler seed (default 1): the same seed gives the same text\n"
		"  --top-k K            keep the K most likely tokens (default 40, 0 = off)\n"
		"  --top-p P            nucleus sampling (default 0.95, 1 = off)\n"
		"  --min-p P            drop tokens below P x the top probability (default 0.05, 0 = off)\n"
		"  --repeat-penalty R   penalize the last --repeat-last-n tokens (default 1.0 = off)\n"
		"  --repeat-last-n N    window of the repeat penalty (default 64)\n"
		"  -t THREADS           worker threads (default 1)\n"
		"  --ctx N              context length (default min(trained context, 4096))\n"
		"  --kv-type f16|f32    how the KV cache stores keys and values (default f16: rounded to\n"
		"                       half precision when stored; f32 keeps them as computed)\n"
		"  --no-prompt          print only the generated text\n"
		"  --chat               TEXT is a user message: render it with the model's chat template,\n"
		"                       print only the assistant's reply, stop at the end of its turn\n"
		"  --system TEXT        a system message (implies --chat)\n"
		"  --template NAME      force a template: llama3, llama31, chatml, llama2, plain\n"
		"  --date DATE          the date Llama 3.1/3.2 templates show (default \"" MU_CHAT_DEFAULT_DATE "\")\n\n"
		"Without --chat, TEXT is plain completion input and prompt plus continuation are printed.\n"
		"Message text is never searched for special tokens: \"<|eot_id|>\" typed by a user stays text.\n");
}

/* Writes a token's text through the streaming decoder: only whole UTF-8 characters reach
 * stdout, a character split across tokens waits for its last byte. */
static enum mu_err emit(struct mu_session *s, struct mu_tok_stream *st, int32_t id, uint8_t *buf, size_t cap,
			struct mu_error *err)
{
	size_t n = 0;
	enum mu_err rc = mu_tok_stream_push(st, &s->tok, id, buf, cap, &n, err);
	if (rc == MU_OK && n)
		fwrite(buf, 1, n, stdout);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	const char *model = NULL, *prompt = NULL, *val;
	uint32_t n_gen = 256, threads = 1, n_ctx = 0, top_k = 40, last_n = 64;
	float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, penalty = 1.0f;
	uint64_t seed = 1;
	int echo = 1, chat = 0, forced = -1;
	const char *system = NULL, *date = NULL, *tmpl_name = NULL;
	enum mu_dtype kv_type = MU_DTYPE_F16;

	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--no-prompt")) {
			echo = 0;
			continue;
		}
		if (!strcmp(argv[i], "--chat")) {
			chat = 1;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "-m", "--model", &model)) ||
		    (r = cli_opt(argc, argv, &i, "-p", "--prompt", &prompt)) ||
		    (r = cli_opt(argc, argv, &i, "--system", NULL, &system)) ||
		    (r = cli_opt(argc, argv, &i, "--template", NULL, &tmpl_name)) ||
		    (r = cli_opt(argc, argv, &i, "--date", NULL, &date))) {
			if (r < 0)
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--kv-type", NULL, &val))) {
			if (r < 0 || cli_kv_type("run", val, &kv_type))
				return 2;
			continue;
		}
		if ((r = cli_opt(argc, argv, &i, "--seed", NULL, &val))) {
			if (r < 0 || cli_u64("--seed", val, &seed))
				return 2;
			continue;
		}
		struct {
			const char *flag, *alt;
			uint32_t *dst, lo, hi;
		} ints[] = {{"-n", "--n-predict", &n_gen, 0, MU_MAX_CTX},
			    {"-t", "--threads", &threads, 1, MU_MAX_THREADS},
			    {"--ctx", NULL, &n_ctx, 1, MU_MAX_CTX},
			    {"--top-k", NULL, &top_k, 0, MU_MAX_VOCAB},
			    {"--repeat-last-n", NULL, &last_n, 0, MU_MAX_CTX}};
		struct {
			const char *flag;
			float *dst, lo, hi;
		} floats[] = {{"--temp", &temp, 0.0f, 100.0f},
			      {"--top-p", &top_p, 0.0f, 1.0f},
			      {"--min-p", &min_p, 0.0f, 1.0f},
			      {"--repeat-penalty", &penalty, 0.0f, 100.0f}};
		int matched = 0;
		for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !matched; k++)
			if ((r = cli_opt(argc, argv, &i, ints[k].flag, ints[k].alt, &val))) {
				if (r < 0 || cli_u32(ints[k].flag, val, ints[k].lo, ints[k].hi, ints[k].dst))
					return 2;
				matched = 1;
			}
		for (size_t k = 0; k < sizeof floats / sizeof floats[0] && !matched; k++)
			if ((r = cli_opt(argc, argv, &i, floats[k].flag, NULL, &val))) {
				if (r < 0 || cli_f32(floats[k].flag, val, floats[k].lo, floats[k].hi, floats[k].dst))
					return 2;
				matched = 1;
			}
		if (matched)
			continue;
		fprintf(stderr, "mu run: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (!model || !prompt) {
		fprintf(stderr, "mu run: -m MODEL and -p TEXT are required\n");
		usage(stderr);
		return 2;
	}

	if (system || tmpl_name || date)
		chat = 1;
	if (tmpl_name && (forced = mu_chat_template_from_name(tmpl_name)) < 0) {
		fprintf(stderr, "mu run: unknown template '%s' (llama3, llama31, chatml, llama2, plain)\n", tmpl_name);
		return 2;
	}

	struct mu_sampler_config cfg;
	mu_sampler_config_default(&cfg);
	cfg.temperature = temp;
	cfg.top_k = (int32_t)top_k;
	cfg.top_p = top_p;
	cfg.min_p = min_p;
	cfg.repeat_penalty = penalty;
	cfg.repeat_last_n = (int32_t)last_n;
	cfg.seed = seed;
	struct mu_error err;
	if (mu_sampler_config_check(&cfg, &err)) {
		cli_error("run", &err);
		return 2;
	}

	struct mu_session s;
	uint64_t t_load = pal_now_ns();
	if (session_open_kv(&s, model, 1, n_ctx, (int)threads, kv_type, &err)) {
		cli_error("run", &err);
		return 1;
	}
	int32_t *ids = NULL;
	uint32_t n_prompt = 0;
	void *smem = NULL;
	size_t smem_len = 0;
	int code = 1;
	struct mu_sampler sampler;
	struct mu_tok_stream stream;
	uint8_t *piece = NULL;
	size_t piece_cap = 0;
	enum mu_chat_template tmpl = MU_CHAT_PLAIN;

	if (chat) {
		if (session_tokenizer(&s, &err))
			goto fail;
		tmpl = forced >= 0 ? (enum mu_chat_template)forced : mu_chat_detect(&s.g, &s.tok);
		struct mu_chat_msg msgs[2];
		size_t n_msgs = 0;
		if (system)
			msgs[n_msgs++] = (struct mu_chat_msg){MU_ROLE_SYSTEM, system, strlen(system)};
		msgs[n_msgs++] = (struct mu_chat_msg){MU_ROLE_USER, prompt, strlen(prompt)};
		if (session_chat_encode(&s, tmpl, msgs, n_msgs, date, &ids, &n_prompt, &err))
			goto fail;
		echo = 0;
		fprintf(stderr, "mu run: chat template %s\n", mu_chat_template_name(tmpl));
	} else if (session_encode(&s, prompt, &ids, &n_prompt, &err)) {
		goto fail;
	}
	if (n_prompt == 0) {
		fprintf(stderr, "mu run: the prompt encodes to no tokens and the vocabulary adds no BOS\n");
		goto out;
	}
	if (n_prompt >= s.ctx.n_ctx) {
		fprintf(stderr, "mu run: the prompt is %u tokens, the context only %u (use --ctx)\n", n_prompt, s.ctx.n_ctx);
		goto out;
	}
	int32_t *grown = realloc(ids, ((size_t)n_prompt + n_gen + 1) * sizeof *ids);
	if (!grown) {
		fprintf(stderr, "mu run: out of memory\n");
		goto out;
	}
	ids = grown;
	/* Sample only ids the vocabulary can spell: models may pad their output matrix past the
	 * vocabulary (Qwen does), and a vocabulary larger than the model cannot be embedded. */
	uint32_t n_sample = s.tok.n_vocab;
	if (n_sample > s.model->hp.n_vocab) {
		fprintf(stderr, "mu run: the vocabulary has %u tokens but the model only %u embeddings\n", n_sample,
			s.model->hp.n_vocab);
		goto out;
	}
	smem_len = mu_sampler_mem_size(n_sample);
	smem = malloc(smem_len);
	if (!smem) {
		fprintf(stderr, "mu run: out of memory\n");
		goto out;
	}
	if (mu_sampler_init(&sampler, &cfg, n_sample, smem, smem_len, &err))
		goto fail;
	fprintf(stderr,
		"mu run: %s: %s, %u layers, %u-token vocabulary, context %u (%s KV), %u thread%s, loaded in %.0f ms\n",
		model, mu_arch_name(s.model->hp.arch), s.model->hp.n_layer, s.model->hp.n_vocab, s.ctx.n_ctx,
		mu_dtype_get(kv_type)->name, threads, threads == 1 ? "" : "s", (double)(pal_now_ns() - t_load) / 1e6);

	piece_cap = mu_tok_stream_max_out(&s.tok);
	piece = malloc(piece_cap);
	if (!piece) {
		fprintf(stderr, "mu run: out of memory\n");
		goto out;
	}
	mu_tok_stream_init(&stream, MU_TOKENIZER_STRIP_SPACE, echo ? -1 : ids[n_prompt - 1]);
	for (uint32_t i = 0; echo && i < n_prompt; i++)
		if (emit(&s, &stream, ids[i], piece, piece_cap, &err))
			goto fail;
	fflush(stdout);

	uint64_t t0 = pal_now_ns();
	if (mu_forward(&s.ctx, ids, n_prompt, &err))
		goto fail;
	uint64_t t1 = pal_now_ns();
	uint32_t n_out = 0;
	const char *stop = "length limit";
	while (n_out < n_gen) {
		int32_t next;
		if (mu_sampler_sample(&sampler, s.ctx.logits, ids, n_prompt + n_out, &next, &err))
			goto fail;
		if (chat ? mu_tokenizer_is_eog(&s.tok, next) : (next == s.tok.eos || next == s.tok.bos)) {
			stop = chat ? "end of turn" : next == s.tok.eos ? "end of text" : "start of a new text";
			break;
		}
		ids[n_prompt + n_out] = next;
		if (emit(&s, &stream, next, piece, piece_cap, &err))
			goto fail;
		fflush(stdout);
		n_out++;
		if (s.ctx.pos >= s.ctx.n_ctx) {
			stop = "context full";
			break;
		}
		if (n_out < n_gen && mu_forward(&s.ctx, &next, 1, &err))
			goto fail;
	}
	uint64_t t2 = pal_now_ns();
	size_t tail = 0;
	if (mu_tok_stream_flush(&stream, piece, piece_cap, &tail, &err))
		goto fail;
	fwrite(piece, 1, tail, stdout);
	printf("\n");
	fflush(stdout);
	fprintf(stderr, "mu run: prompt %u tokens at %.1f tok/s; generated %u tokens at %.1f tok/s; stopped: %s\n",
		n_prompt, n_prompt / ((double)(t1 - t0) * 1e-9 + 1e-12), n_out,
		n_out / ((double)(t2 - t1) * 1e-9 + 1e-12), stop);
	code = 0;
	goto out;
fail:
	cli_error("run", &err);
out:
	free(piece);
	free(smem);
	free(ids);
	session_close(&s);
	return code;
}
