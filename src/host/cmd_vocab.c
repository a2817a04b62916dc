/* cmd_vocab.c — `mu vocab --from-hf tokenizer.json [...] -o vocab.gguf`: a vocab-only GGUF
 * (no tensors) in llama.cpp's key layout, from a Hugging Face byte-level BPE tokenizer.
 *
 * Read from tokenizer.json (every field checked, every error names its JSON path):
 *   model.type            "BPE" (anything else is refused)
 *   model.vocab           {token: id}; ids unique, 0 <= id < MU_MAX_VOCAB
 *   model.merges          ["a b", ...] or [["a", "b"], ...]; a, b and a+b must be tokens
 *   model.ignore_merges   default false; expected true for llama-bpe, false otherwise
 *   added_tokens          [{id, content, special}]; may extend the id range, or repeat a
 *                         vocab entry with the same id and content
 *   normalizer            null, or NFC (only with qwen2)
 *   pre_tokenizer         a Split on one of the known regexes (+ ByteLevel without regex), or
 *                         ByteLevel with its own (GPT-2) regex; --pre NAME forces the name
 *   post_processor        a TemplateProcessing that starts (ends) with a special token means
 *                         add_bos (add_eos) unless tokenizer_config.json says otherwise
 * Read from tokenizer_config.json (--config): bos_token, eos_token, pad_token (a string or
 * {"content": ...}, resolved to ids), add_bos_token, add_eos_token, chat_template (a string,
 * or a list of {name, template} from which "default" is taken).
 *
 * Ids that no token claims are filled with "[PAD<id>]" of type unused. Token types: 1 normal
 * (vocab), 3 control (added, special), 4 user-defined (added, not special), 5 unused (gaps).
 * The output is a pure function of the inputs and is written atomically.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/limits.h"
#include "host/cli.h"
#include "host/vocab_hf.h"
#include "wire/json.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mu vocab --from-hf tokenizer.json [--config tokenizer_config.json]\n"
		"                [--chat-template FILE] [--name NAME] [--pre NAME] -o vocab.gguf\n\n"
		"Builds a vocab-only GGUF (no tensors, llama.cpp's key layout) from a Hugging Face\n"
		"byte-level BPE tokenizer, so the engine can tokenize with it.\n\n"
		"  --from-hf FILE        tokenizer.json (model.type must be BPE)\n"
		"  --config FILE         tokenizer_config.json: bos/eos/pad tokens, add_bos_token,\n"
		"                        add_eos_token, chat_template\n"
		"  --chat-template FILE  the chat template text (overrides the config's)\n"
		"  --name NAME           general.name (default: the input's directory name)\n"
		"  --pre NAME            force the pre-tokenizer: llama-bpe, qwen2 or gpt-2\n"
		"                        (default: recognized from pre_tokenizer's regex)\n"
		"  -o, --output FILE     the GGUF to write (replaced atomically)\n\n"
		"Ids without a token become \"[PAD<id>]\" of type unused. Every input error names\n"
		"its JSON path, e.g. \"model.merges[17]: expected a string or a 2-element array\".\n");
}

/* ---- the tokenizer_config.json side ---- */

/* A token named by the config: a string, {"content": string}, or null/absent. */
static enum mu_err config_token(const struct json_doc *d, const char *key, const struct hf_vocab *v, int32_t *id,
				struct mu_error *err)
{
	uint32_t t = json_obj_get(d, 0, key);
	*id = -1;
	if (t == JSON_NONE || json_is_null(d, t))
		return MU_OK;
	if (json_type(d, t) == JSON_OBJECT) {
		uint32_t c = json_obj_get(d, t, "content");
		if (json_type(d, c) != JSON_STRING)
			return mu_errf(err, MU_ERR_FORMAT, "%s.content: expected a string", key);
		t = c;
	} else if (json_type(d, t) != JSON_STRING) {
		return mu_errf(err, MU_ERR_FORMAT, "%s: expected a string, an object with \"content\", or null", key);
	}
	uint32_t n = json_str_len(d, t);
	char *s = malloc((size_t)n + 1);
	if (!s)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	enum mu_err rc = json_str_decode(d, t, s, (size_t)n + 1, NULL, err);
	if (rc == MU_OK) {
		*id = hf_vocab_find(v, s, n);
		if (*id < 0) {
			char shown[64];
			hf_show(s, n, shown, sizeof shown);
			rc = mu_errf(err, MU_ERR_FORMAT, "%s: \"%s\" is not a token of the vocabulary", key, shown);
		}
	}
	free(s);
	return rc;
}

static enum mu_err config_bool(const struct json_doc *d, const char *key, int *out, struct mu_error *err)
{
	uint32_t t = json_obj_get(d, 0, key);
	if (t == JSON_NONE || json_is_null(d, t))
		return MU_OK; /* *out keeps "not said" (-1) */
	if (json_get_bool(d, t, out, err) != MU_OK)
		return mu_err_prefix(err, "%s", key);
	return MU_OK;
}

/* chat_template: a string, or [{name, template}] of which "default" is taken. *out is malloc'd. */
static enum mu_err config_template(const struct json_doc *d, char **out, struct mu_error *err)
{
	uint32_t t = json_obj_get(d, 0, "chat_template");
	*out = NULL;
	if (t == JSON_NONE || json_is_null(d, t))
		return MU_OK;
	if (json_type(d, t) == JSON_ARRAY) {
		struct json_iter it;
		uint32_t e, found = JSON_NONE, i = 0;
		json_iter_init(&it, d, t);
		for (; json_iter_next(&it, NULL, &e); i++) {
			uint32_t name = json_obj_get(d, e, "name"), text = json_obj_get(d, e, "template");
			if (json_type(d, name) != JSON_STRING || json_type(d, text) != JSON_STRING)
				return mu_errf(err, MU_ERR_FORMAT,
					       "chat_template[%u]: expected an object with string \"name\" and \"template\"", i);
			if (json_str_eq(d, name, "default"))
				found = text;
		}
		if (found == JSON_NONE)
			return mu_errf(err, MU_ERR_FORMAT, "chat_template: no template named \"default\" in the list");
		t = found;
	} else if (json_type(d, t) != JSON_STRING) {
		return mu_errf(err, MU_ERR_FORMAT, "chat_template: expected a string or a list of named templates");
	}
	if (d->tok[t].flags & JSON_TOK_NUL)
		return mu_errf(err, MU_ERR_FORMAT, "chat_template: contains a NUL character");
	uint32_t n = json_str_len(d, t);
	*out = malloc((size_t)n + 1);
	if (!*out)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	return json_str_decode(d, t, *out, (size_t)n + 1, NULL, err);
}

struct special {
	int32_t bos, eos, pad;
	int add_bos, add_eos; /* -1: not said */
	char *chat_template;
};

static enum mu_err read_config(const char *path, const struct hf_vocab *v, struct special *sp, struct mu_error *err)
{
	struct hf_json f;
	enum mu_err rc = hf_json_load(&f, path, err);
	if (rc != MU_OK)
		return rc;
	const struct json_doc *d = &f.doc;
	if (json_type(d, 0) != JSON_OBJECT)
		rc = mu_errf(err, MU_ERR_FORMAT, "expected a JSON object at the top level");
	if (rc == MU_OK && (rc = config_token(d, "bos_token", v, &sp->bos, err)) == MU_OK &&
	    (rc = config_token(d, "eos_token", v, &sp->eos, err)) == MU_OK &&
	    (rc = config_token(d, "pad_token", v, &sp->pad, err)) == MU_OK &&
	    (rc = config_bool(d, "add_bos_token", &sp->add_bos, err)) == MU_OK &&
	    (rc = config_bool(d, "add_eos_token", &sp->add_eos, err)) == MU_OK)
		rc = config_template(d, &sp->chat_template, err);
	hf_json_free(&f);
	if (rc != MU_OK)
		mu_err_prefix(err, "%s", path);
	return rc;
}

static enum mu_err read_template_file(const char *path, char **out, struct mu_error *err)
{
	uint8_t *p;
	size_t n;
	enum mu_err rc = pal_read_file(path, MU_GGUF_MAX_STRING, &p, &n, err);
	if (rc != MU_OK)
		return rc;
	size_t bad = json_utf8_check(p, n);
	if (bad != n || memchr(p, 0, n)) {
		pal_free(p, n + 1);
		return mu_errf(err, MU_ERR_FORMAT, "%s: %s at byte %zu", path,
			       bad != n ? "invalid UTF-8" : "NUL byte", bad != n ? bad : (size_t)((uint8_t *)memchr(p, 0, n) - p));
	}
	*out = malloc(n + 1);
	if (!*out) {
		pal_free(p, n + 1);
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	}
	memcpy(*out, p, n + 1);
	pal_free(p, n + 1);
	return MU_OK;
}

/* ---- writing ---- */

struct job {
	const char *in, *config, *template_path, *name, *pre, *out;
};

static enum mu_err write_gguf(int fd, const struct hf_vocab *v, const struct special *sp, const char *name,
			      struct mu_error *err)
{
	struct gguf_writer *w = gguf_writer_new(GGUF_DEFAULT_ALIGNMENT);
	if (!w)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory");
	const struct hf_pre *pre = v->pre;
	enum mu_err rc;
	if ((rc = gguf_w_str(w, "general.architecture", pre->arch, err)) ||
	    (rc = gguf_w_str(w, "general.name", name, err)) ||
	    (rc = gguf_w_str(w, "tokenizer.ggml.model", "gpt2", err)) ||
	    (rc = gguf_w_str(w, "tokenizer.ggml.pre", pre->name, err)) ||
	    (rc = gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, v->tok_len, v->n, err)) ||
	    (rc = gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v->type, v->n, err)) ||
	    (rc = gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merge, v->merge_len, v->n_merges, err)))
		goto out;
	if (sp->bos >= 0 && (rc = gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)sp->bos, err)))
		goto out;
	if (sp->eos >= 0 && (rc = gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)sp->eos, err)))
		goto out;
	if (sp->pad >= 0 && (rc = gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)sp->pad, err)))
		goto out;
	if ((rc = gguf_w_bool(w, "tokenizer.ggml.add_bos_token", sp->add_bos == 1, err)) ||
	    (rc = gguf_w_bool(w, "tokenizer.ggml.add_eos_token", sp->add_eos == 1, err)))
		goto out;
	if (sp->chat_template && (rc = gguf_w_str(w, "tokenizer.chat_template", sp->chat_template, err)))
		goto out;
	if ((rc = gguf_w_begin(w, fd, err)) == MU_OK)
		rc = gguf_w_end(w, err);
out:
	gguf_writer_free(w);
	return rc;
}

/* Temporary file in the output's directory, fsync, rename over the output, fsync the
 * directory: the output path holds either the old file or the complete new one. */
static enum mu_err write_atomic(const char *out, const struct hf_vocab *v, const struct special *sp,
				const char *name, struct mu_error *err)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid()) >= sizeof tmp)
		return mu_errf(err, MU_ERR_ARG, "output path too long");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot create", tmp);
	enum mu_err rc = write_gguf(fd, v, sp, name, err);
	if (rc == MU_OK && fsync(fd) != 0)
		rc = mu_errf(err, MU_ERR_IO, "%s: fsync failed", tmp);
	if (close(fd) != 0 && rc == MU_OK)
		rc = mu_errf(err, MU_ERR_IO, "%s: close failed", tmp);
	if (rc == MU_OK)
		rc = outfile_commit(tmp, out, 1, err);
	if (rc != MU_OK)
		unlink(tmp);
	return rc;
}

/* general.name default: the name of the directory holding the tokenizer file. */
static void default_name(const char *path, char *buf, size_t cap)
{
	const char *end = strrchr(path, '/');
	const char *start = end;
	if (end && end > path) {
		start = end - 1;
		while (start > path && start[-1] != '/')
			start--;
		if (end - start > 0 && strncmp(start, "..", (size_t)(end - start)) != 0 &&
		    strncmp(start, ".", (size_t)(end - start)) != 0) {
			snprintf(buf, cap, "%.*s", (int)(end - start), start);
			return;
		}
	}
	snprintf(buf, cap, "vocab");
}

static int run_job(const struct job *j)
{
	struct mu_error err;
	struct hf_vocab v;
	struct special sp = {.bos = -1, .eos = -1, .pad = -1, .add_bos = -1, .add_eos = -1, .chat_template = NULL};
	char name[256];
	uint64_t t0 = pal_now_ns();
	enum mu_err rc = hf_vocab_load(&v, j->in, j->pre, &err);
	if (rc != MU_OK) {
		cli_error("vocab", &err);
		return 1;
	}
	if (j->config && (rc = read_config(j->config, &v, &sp, &err)) != MU_OK)
		goto fail;
	if (j->template_path) {
		free(sp.chat_template);
		sp.chat_template = NULL;
		if ((rc = read_template_file(j->template_path, &sp.chat_template, &err)) != MU_OK)
			goto fail;
	}
	/* The post-processor's template fills in what the config does not say. */
	if (sp.bos < 0)
		sp.bos = v.tp_bos;
	if (sp.eos < 0)
		sp.eos = v.tp_eos;
	if (sp.add_bos < 0)
		sp.add_bos = v.tp_bos >= 0;
	if (sp.add_eos < 0)
		sp.add_eos = v.tp_eos >= 0;
	if (sp.add_bos == 1 && sp.bos < 0) {
		rc = mu_errf(&err, MU_ERR_FORMAT, "add_bos_token is true but no BOS token is known (set bos_token in the config)");
		goto fail;
	}
	if (sp.add_eos == 1 && sp.eos < 0) {
		rc = mu_errf(&err, MU_ERR_FORMAT, "add_eos_token is true but no EOS token is known (set eos_token in the config)");
		goto fail;
	}
	if (j->name)
		snprintf(name, sizeof name, "%s", j->name);
	else
		default_name(j->in, name, sizeof name);
	if ((rc = write_atomic(j->out, &v, &sp, name, &err)) != MU_OK)
		goto fail;

	char ids[96] = "";
	int k = 0;
	if (sp.bos >= 0)
		k += snprintf(ids + k, sizeof ids - (size_t)k, ", bos %d", sp.bos);
	if (sp.eos >= 0)
		k += snprintf(ids + k, sizeof ids - (size_t)k, ", eos %d", sp.eos);
	if (sp.pad >= 0)
		snprintf(ids + k, sizeof ids - (size_t)k, ", pad %d", sp.pad);
	fprintf(stderr,
		"mu vocab: %s: %u tokens (%u added, %u unused), %u merges, pre %s, normalizer %s%s, add_bos %s, "
		"chat template %s; %.2f s\n",
		j->out, v.n, v.n_added, v.n_gaps, v.n_merges, v.pre->name, v.nfc ? "NFC" : "none", ids,
		sp.add_bos == 1 ? "true" : "false", sp.chat_template ? "yes" : "no", (double)(pal_now_ns() - t0) * 1e-9);
	free(sp.chat_template);
	hf_vocab_free(&v);
	return 0;
fail:
	cli_error("vocab", &err);
	free(sp.chat_template);
	hf_vocab_free(&v);
	return 1;
}

int cmd_vocab(int argc, char **argv)
{
	struct job j = {0};
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if ((r = cli_opt(argc, argv, &i, "--from-hf", NULL, &j.in)) ||
		    (r = cli_opt(argc, argv, &i, "--config", NULL, &j.config)) ||
		    (r = cli_opt(argc, argv, &i, "--chat-template", NULL, &j.template_path)) ||
		    (r = cli_opt(argc, argv, &i, "--name", NULL, &j.name)) ||
		    (r = cli_opt(argc, argv, &i, "--pre", NULL, &j.pre)) ||
		    (r = cli_opt(argc, argv, &i, "-o", "--output", &j.out))) {
			if (r < 0)
				return 2;
			continue;
		}
		fprintf(stderr, "mu vocab: unexpected argument '%s'\n", argv[i]);
		usage(stderr);
		return 2;
	}
	if (!j.in || !j.out) {
		fprintf(stderr, "mu vocab: --from-hf and -o are required\n");
		usage(stderr);
		return 2;
	}
	if (j.pre && !hf_pre_by_name(j.pre)) {
		fprintf(stderr, "mu vocab: --pre must be llama-bpe, qwen2 or gpt-2, not '%s'\n", j.pre);
		return 2;
	}
	if (j.name && (strlen(j.name) >= 256 || json_utf8_check(j.name, strlen(j.name)) != strlen(j.name))) {
		fprintf(stderr, "mu vocab: --name must be UTF-8 of at most 255 bytes\n");
		return 2;
	}
	return run_job(&j);
}
