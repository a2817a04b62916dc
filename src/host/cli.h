/* cli.h — small helpers shared by the `mu` subcommands: strict argument parsing and the
 * session that opens a model file (map, parse, bind weights, thread pool, run state). */
#ifndef MU_HOST_CLI_H
#define MU_HOST_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/pool.h"
#include "engine/chat.h"
#include "engine/tokenizer.h"
#include "pal/pal.h"

/* Each subcommand: returns the process exit code (0 ok, 1 runtime error, 2 usage). */
int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gen_model(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_kbs(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_unseal(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_ask(int argc, char **argv);
int cmd_exfil(int argc, char **argv);

/* mu ask's exchange with the proxy, shared with mu exfil measure (cmd_ask.c). */
struct ask_result {
	uint64_t bytes;  /* every byte received, frame headers included */
	double seconds;
	int ended;       /* a done message came; then: */
	int finish;      /* enum mu_finish */
	long long prompt_tokens, completion_tokens;
};
/* Connects to the proxy at addr, sends the encoded generate frame and reads the answer to
 * request id. With out, token text is written there and the answer must end within
 * timeout_ms; without, reading stops timeout_ms after the request was sent, counting what
 * arrived (or earlier, when the answer ends). Returns 0, or 1 after reporting the trouble (messages
 * prefixed with who). */
int ask_exchange(const char *who, const char *addr, const uint8_t *frame, size_t frame_len, const char *id,
		 uint32_t timeout_ms, FILE *out, struct ask_result *res);
int cmd_audit(int argc, char **argv);
int cmd_surface(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_vm(int argc, char **argv);

/* If argv[*i] is `name` (or `alt`), stores the next argument in *val, advances *i and
 * returns 1; a missing value is reported and returns -1. Otherwise returns 0. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char *alt, const char **val);
/* Strict number parsing: the whole string must be a number in [lo, hi]. */
int cli_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out);
/* A table of integer options: if argv[*i] is one of them, parses its value into its dst within
 * [lo, hi] and returns 1 (-1 when the value is missing or out of range, reported); 0 otherwise. */
struct cli_u32_opt {
	const char *flag;
	uint32_t *dst, lo, hi;
};
int cli_opt_u32s(int argc, char **argv, int *i, const struct cli_u32_opt *t, size_t n);
int cli_u64(const char *flag, const char *s, uint64_t *out);
int cli_f32(const char *flag, const char *s, float lo, float hi, float *out);
void cli_error(const char *cmd, const struct mu_error *e);

struct mu_session {
	struct pal_map map; /* the file, or for a model to run its copy (session_open_any) */
	int copied;         /* map is the copy, packed for the kernel path */
	struct gguf g;
	void *gguf_mem;
	size_t gguf_mem_len;
	struct mu_model *model;
	struct mu_pool *pool;
	void *ctx_mem;
	size_t ctx_mem_len;
	struct mu_ctx ctx;
	struct mu_tokenizer tok;
	void *tok_mem;
	size_t tok_mem_len;
	int has_tok;
};

/* Opens path; with load_model = 0 only the GGUF is parsed (mu info on any GGUF).
 * n_ctx 0 means min(trained context, 4096). The KV cache is F16. */
enum mu_err session_open(struct mu_session *s, const char *path, int load_model, uint32_t n_ctx, int n_threads,
			 struct mu_error *err);
/* The longest context a session opens when none is asked for (mu_model_default_ctx). */
#define SESSION_MAX_DEFAULT_CTX 4096u
/* The same with the KV cache type (MU_DTYPE_F16 or MU_DTYPE_F32). */
enum mu_err session_open_kv(struct mu_session *s, const char *path, int load_model, uint32_t n_ctx, int n_threads,
			    enum mu_dtype kv_type, struct mu_error *err);
/* A model to run (load_model) is read into anonymous memory advised for 2 MiB pages, as
 * mu-enclave holds unsealed weights, and packed there for the kernel path (mu_model_pack), as
 * mu-enclave does; when that memory cannot be had it runs from the file's mapping, with a
 * warning. session_open_mapped runs it on the file's read-only mapping anyway (4 KiB
 * page-cache pages, the GGUF layout): the comparison mu bench --load map makes. */
enum mu_err session_open_mapped(struct mu_session *s, const char *path, uint32_t n_ctx, int n_threads,
				struct mu_error *err);
/* --kv-type's value ("f16" or "f32"); reports a bad one as "mu CMD: --kv-type: ..." and
 * returns -1. */
int cli_kv_type(const char *cmd, const char *s, enum mu_dtype *out);
void session_close(struct mu_session *s);

/* Loads the GGUF's tokenizer into s->tok (once). */
enum mu_err session_tokenizer(struct mu_session *s, struct mu_error *err);
/* Encodes text (BOS per the vocabulary's add_bos); *ids is allocated, free() it. */
enum mu_err session_encode(struct mu_session *s, const char *text, int32_t **ids, uint32_t *n, struct mu_error *err);

/* Renders messages with template tmpl and encodes them; *ids is allocated, free() it. */
enum mu_err session_chat_encode(struct mu_session *s, enum mu_chat_template tmpl, const struct mu_chat_msg *msgs,
				size_t n, const char *date, int32_t **ids, uint32_t *n_ids, struct mu_error *err);

/* Renames a complete, fsync'd temporary file over out (replace) or next to nothing (no replace:
 * an existing out is refused), then fsyncs the directory. On failure tmp is left for the caller
 * to unlink. */
enum mu_err outfile_commit(const char *tmp, const char *out, int replace, struct mu_error *err);
/* Writes buf to out whole or not at all: a temporary file next to it, fsync'd, then
 * outfile_commit. */
enum mu_err outfile_write(const char *out, const void *buf, size_t len, int replace, struct mu_error *err);
/* Writes all len bytes to fd (retrying short writes and EINTR); path names it in errors. */
enum mu_err outfile_write_all(int fd, const void *buf, size_t len, const char *path, struct mu_error *err);

/* Parses "1,2,3" into at most max ids. */
int cli_parse_tokens(const char *s, int32_t *out, uint32_t max, uint32_t *n);

#endif
