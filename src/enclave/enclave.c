/* enclave.c — mu-enclave's startup, serving loop and first unlock (see enclave.h). */
#define _GNU_SOURCE
#include "enclave/enclave.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "enclave/sandbox.h"
#include "seal/sealed.h"
#include "wire/json.h"

#define SELF_EXE "/proc/self/exe"
#define SELF_EXE_MAX ((size_t)1 << 32)
#define MU_ENCLAVE_SECTOR 512u

void mu_enclave_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "mu-enclave: %s\n", line);
}

/* A sealed model on a disk (the VM's /dev/vda) is followed by zero bytes up to the next whole
 * sector. Exactly that padding is dropped; a shorter device, or anything else after the model,
 * is left for the unseal to report as truncation or extra data. */
static enum mu_err trim_padding(struct mu_enclave *e, const struct mu_sealed_header *h, struct mu_error *err)
{
	uint64_t n_chunks, file_size;
	enum mu_err rc = mu_sealed_layout(h->plaintext_size, h->chunk_size, &n_chunks, &file_size, err);
	if (rc)
		return mu_err_prefix(err, "%s", e->cfg.model);
	if (file_size > e->sealed.len || e->sealed.len - file_size >= MU_ENCLAVE_SECTOR)
		return MU_OK;
	for (size_t i = (size_t)file_size; i < e->sealed.len; i++)
		if (e->sealed.data[i] != 0)
			return MU_OK;
	e->sealed_len = (size_t)file_size;
	return MU_OK;
}

/* The config, the binary's hash, the sealed header and the measurement. */
enum mu_err mu_enclave_init(struct mu_enclave *e, const char *config_path, const char *model_path, int v0,
			    struct mu_error *err)
{
	enum mu_err rc;
	struct pal_map self;
	struct mu_sealed_header h;
	uint8_t hdr[MU_SEALED_HEADER_LEN];

	memset(e, 0, sizeof *e);
	e->v0 = v0;
	if ((rc = pal_read_file(config_path, MU_ENCLAVE_CONFIG_MAX, &e->config, &e->config_len, err)))
		return rc;
	if ((rc = mu_enclave_cfg_parse(&e->cfg, e->config, e->config_len, v0, err))) {
		mu_err_prefix(err, "%s", config_path);
		return rc;
	}
	if ((rc = pal_map_file(&self, SELF_EXE, err)))
		return rc;
	mu_sha256(self.data, self.len, e->binary_sha256);
	pal_unmap(&self);
	if (model_path) {
		if (strlen(model_path) >= sizeof e->cfg.model)
			return mu_errf(err, MU_ERR_RANGE, "the model path is longer than %zu bytes", sizeof e->cfg.model - 1);
		strcpy(e->cfg.model, model_path);
	}
	if ((rc = pal_map_file(&e->sealed, e->cfg.model, err)))
		return rc;
	if (e->sealed.len < MU_SEALED_HEADER_LEN)
		return mu_errf(err, MU_ERR_FORMAT, "%s: shorter than a sealed header (%u bytes)", e->cfg.model,
			       MU_SEALED_HEADER_LEN);
	/* the file is the host's and may change under us: measure a copy of the header (the unlock
	 * checks that the unseal used that same header) */
	memcpy(hdr, e->sealed.data, sizeof hdr);
	if ((rc = mu_sealed_header_parse(&h, hdr, sizeof hdr, e->cfg.model, err)))
		return rc;
	e->sealed_len = e->sealed.len;
	if (e->sealed.device && (rc = trim_padding(e, &h, err)))
		return rc;
	mu_sha256(hdr, sizeof hdr, e->header_sha256);
	memcpy(e->key_id, h.key_id, sizeof e->key_id);
	mu_measure(e->binary_sha256, e->config, e->config_len, e->header_sha256, e->measurement);
	return MU_OK;
}

static enum mu_err read_psk(struct mu_enclave *e, struct mu_error *err)
{
	struct pal_map m;
	enum mu_err rc = pal_map_file(&m, e->cfg.v0_key_file, err);
	if (rc)
		return rc;
	if (m.len != MU_KEY_LEN) {
		size_t n = m.len;
		pal_unmap(&m);
		return mu_errf(err, MU_ERR_FORMAT, "%s: a key file holds exactly 32 bytes, this one %zu", e->cfg.v0_key_file,
			       n);
	}
	memcpy(e->sec->psk, m.data, MU_KEY_LEN);
	pal_unmap(&m);
	return MU_OK;
}

/* Buffers, secrets, egress, pool and channel: everything but the model. */
enum mu_err mu_enclave_start(struct mu_enclave *e, struct mu_error *err)
{
	enum mu_err rc;
	size_t v0_mem = 0;
	const struct json_limits v0_lim = {.max_bytes = MU_WIRE_MAX_FRAME, .max_depth = 1, .max_tokens = 16,
					   .max_string = MU_WIRE_MAX_FRAME, .max_number = MU_WIRE_MAX_NUMBER};

	signal(SIGPIPE, SIG_IGN); /* a vanished peer is a write error, not the end of the process */
	if ((rc = pal_secret_alloc(&e->sec_mem, sizeof *e->sec, 0, err)))
		return mu_err_prefix(err, "secret memory for keys");
	e->sec = (struct mu_enclave_secrets *)(void *)e->sec_mem.data;
	if (e->v0 && (rc = read_psk(e, err)))
		return rc;
	if ((rc = json_mem_size(&v0_lim, MU_WIRE_MAX_FRAME, &v0_mem, err)))
		return rc;
	e->msg_mem_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
	if (v0_mem > e->msg_mem_len)
		e->msg_mem_len = v0_mem;
	e->in = pal_alloc(MU_WIRE_MAX_FRAME, 64);
	e->msg_mem = pal_alloc(e->msg_mem_len, 64);
	e->out = pal_alloc(MU_ENCLAVE_OUT_CAP, 64);
	e->text = pal_alloc((size_t)MU_WIRE_MAX_FRAME + 1, 64);
	if (!e->in || !e->msg_mem || !e->out || !e->text)
		return mu_errf(err, MU_ERR_NOMEM, "out of memory for the frame buffers");
	if ((rc = mu_egress_init(&e->eg, e->cfg.egress_bytes_per_s, e->cfg.egress_burst_bytes, !e->cfg.no_egress_limit,
				 err)))
		return mu_err_prefix(err, "egress");
	if ((rc = mu_pool_create(&e->pool, (int)e->cfg.threads, err)))
		return rc;
	return mu_chan_open(&e->ch, &e->cfg, e->in, err);
}

void mu_enclave_free(struct mu_enclave *e)
{
	mu_infer_free(&e->inf);
	if (e->pool)
		mu_pool_destroy(e->pool);
	if (e->ch.lfd >= 0 && e->ch.kind)
		close(e->ch.lfd);
	if (e->ch.fd >= 0 && e->ch.kind)
		close(e->ch.fd);
	pal_free(e->in, MU_WIRE_MAX_FRAME);
	pal_free(e->msg_mem, e->msg_mem_len);
	pal_free(e->out, MU_ENCLAVE_OUT_CAP);
	pal_free(e->text, (size_t)MU_WIRE_MAX_FRAME + 1);
	pal_secret_free(&e->sec_mem);
	if (e->sealed.data)
		pal_unmap(&e->sealed);
	if (e->config)
		pal_free(e->config, e->config_len + 1);
	memset(e, 0, sizeof *e);
}

enum mu_unlock_rc mu_enclave_unlock(struct mu_enclave *e, struct mu_error *err)
{
	enum mu_err rc;
	if (e->inf.loaded) {
		/* a later unlock must carry the very key the model was sealed with */
		uint8_t id[MU_SEALED_KEY_ID_LEN];
		mu_sealed_key_id(e->sec->key, id);
		mu_wipe(e->sec->key, sizeof e->sec->key);
		if (!mu_ct_eq(id, e->key_id, sizeof id)) {
			mu_enclave_log("unlock refused: the key is not the model key already loaded");
			return MU_UNLOCK_REFUSED;
		}
		return MU_UNLOCK_OK;
	}
	uint64_t t0 = pal_now_ns();
	rc = mu_infer_unseal(&e->inf, e->sealed.data, e->sealed_len, e->sec->key, e->pool, e->cfg.secretmem, e->cfg.model,
			     err);
	mu_wipe(e->sec->key, sizeof e->sec->key);
	if (rc) {
		mu_enclave_log("unseal failed: %s", err->msg);
		return rc == MU_ERR_AUTH || rc == MU_ERR_FORMAT || rc == MU_ERR_RANGE ? MU_UNLOCK_REFUSED
										 : MU_UNLOCK_INTERNAL;
	}
	/* The header was read again from the host's file (or disk) for the unseal: it must be the
	 * one measured at startup, or the model served would not be the model attested. */
	if (!mu_ct_eq(e->inf.u.header_hash, e->header_sha256, sizeof e->header_sha256)) {
		mu_enclave_log("unlock refused: the sealed model's header changed since it was measured");
		mu_infer_free(&e->inf);
		return MU_UNLOCK_REFUSED;
	}
	if ((rc = mu_infer_setup(&e->inf, &e->cfg, e->pool, err))) {
		mu_enclave_log("the unsealed model does not load: %s", err->msg);
		mu_infer_free(&e->inf);
		return MU_UNLOCK_INTERNAL;
	}
	if ((rc = mu_sandbox_enter(&(struct mu_sandbox_opts){.allow_accept = e->cfg.channel_kind == MU_CHANNEL_LISTEN},
				   err))) {
		mu_enclave_log("cannot enter the sandbox: %s; wiping the model and stopping", err->msg);
		mu_infer_free(&e->inf);
		return MU_UNLOCK_FATAL;
	}
	mu_enclave_log("model \"%s\" unsealed into %s memory (%llu bytes) and loaded in %llu ms: context %u, %u thread%s; "
		       "sandbox entered",
		       e->inf.name, pal_secret_prot_name(e->inf.u.mem.prot), (unsigned long long)e->inf.u.size,
		       (unsigned long long)((pal_now_ns() - t0) / 1000000u), e->inf.n_ctx, e->cfg.threads,
		       e->cfg.threads == 1 ? "" : "s");
	return MU_UNLOCK_OK;
}

enum mu_err mu_enclave_send(struct mu_enclave *e, size_t len, struct mu_error *err)
{
	return mu_egress_frame(&e->eg, e->out, len, err);
}

enum mu_err mu_enclave_send_error(struct mu_enclave *e, const char *id, enum mu_wire_code code, const char *message,
				  struct mu_error *err)
{
	char *body = (char *)e->out + MU_FRAME_HDR;
	size_t cap = MU_ENCLAVE_OUT_CAP - MU_FRAME_HDR;
	size_t len = mu_msg_error(body, cap, id, code, message);
	if (len == 0)
		len = mu_msg_error(body, cap, NULL, code, "error");
	if (len == 0)
		return mu_errf(err, MU_ERR_INTERNAL, "an error frame did not encode");
	return mu_enclave_send(e, len, err);
}

int mu_enclave_serve(struct mu_enclave *e)
{
	struct mu_error err = {0};
	for (;;) {
		if (mu_chan_accept(&e->ch, &err) != MU_OK) {
			mu_enclave_log("%s", err.msg);
			struct timespec ts = {0, 100000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		e->n_conn++;
		mu_egress_attach(&e->eg, e->ch.fd);
		mu_enclave_log("connection %llu opened", (unsigned long long)e->n_conn);
		enum mu_session_rc rc = e->v0 ? mu_session_v0(e) : mu_session_v1(e);
		mu_egress_attach(&e->eg, -1);
		mu_chan_close_conn(&e->ch);
		mu_enclave_log("connection %llu closed", (unsigned long long)e->n_conn);
		if (rc == MU_SESSION_FATAL)
			return 1;
	}
}
