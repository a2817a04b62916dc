/* chat.c — the chat template families of chat.h, rendered by hand. */
#include "engine/chat.h"

#include <string.h>
#include <utf8proc.h>

static const char *const template_names[] = {
	[MU_CHAT_PLAIN] = "plain",   [MU_CHAT_LLAMA2] = "llama2", [MU_CHAT_LLAMA3] = "llama3",
	[MU_CHAT_LLAMA31] = "llama31", [MU_CHAT_CHATML] = "chatml",
};

const char *mu_chat_template_name(enum mu_chat_template c)
{
	return (size_t)c < sizeof template_names / sizeof template_names[0] ? template_names[c] : "?";
}

int mu_chat_template_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof template_names / sizeof template_names[0]; i++)
		if (!strcmp(name, template_names[i]))
			return (int)i;
	return -1;
}

static int str_has(struct gguf_str s, const char *needle)
{
	size_t n = strlen(needle);
	if (n > s.len)
		return 0;
	for (uint64_t i = 0; i + n <= s.len; i++)
		if (!memcmp(s.ptr + i, needle, n))
			return 1;
	return 0;
}

static int32_t find_special(const struct mu_tokenizer *t, const char *s)
{
	return mu_tokenizer_find(t, (const uint8_t *)s, strlen(s));
}

enum mu_chat_template mu_chat_detect(const struct gguf *g, const struct mu_tokenizer *t)
{
	struct gguf_str tmpl, arch;
	int found = 0, has_arch = 0;

	if (gguf_get_str(g, "tokenizer.chat_template", &tmpl, &found, NULL) == MU_OK && found) {
		if (str_has(tmpl, "<|start_header_id|>"))
			return str_has(tmpl, "Cutting Knowledge Date") ? MU_CHAT_LLAMA31 : MU_CHAT_LLAMA3;
		if (str_has(tmpl, "<|im_start|>"))
			return MU_CHAT_CHATML;
		if (str_has(tmpl, "[INST]"))
			return MU_CHAT_LLAMA2;
	}
	if (gguf_get_str(g, "general.architecture", &arch, &has_arch, NULL) == MU_OK && has_arch &&
	    (gguf_str_eq(arch, "qwen2") || gguf_str_eq(arch, "qwen3")) && find_special(t, "<|im_start|>") >= 0)
		return MU_CHAT_CHATML;
	if (find_special(t, "<|start_header_id|>") >= 0 && find_special(t, "<|eot_id|>") >= 0)
		return MU_CHAT_LLAMA3;
	if (find_special(t, "<|im_start|>") >= 0 && find_special(t, "<|im_end|>") >= 0)
		return MU_CHAT_CHATML;
	return MU_CHAT_PLAIN;
}

/* ---- building a render ---- */

struct builder {
	const struct mu_tokenizer *t;
	struct mu_chat_render *out;
	struct mu_error *err;
	enum mu_err rc; /* sticky: the first failure wins, later appends do nothing */
};

static void put_part(struct builder *b, int32_t id, const char *s, size_t n)
{
	struct mu_chat_render *o = b->out;
	if (b->rc)
		return;
	if (n > o->cap - o->len) {
		b->rc = mu_errf(b->err, MU_ERR_RANGE, "rendered prompt exceeds %zu bytes", o->cap);
		return;
	}
	/* extend the previous text part when both are text */
	if (id < 0 && o->n_parts && o->parts[o->n_parts - 1].id < 0) {
		o->parts[o->n_parts - 1].len += n;
	} else {
		if (o->n_parts >= o->max_parts) {
			b->rc = mu_errf(b->err, MU_ERR_RANGE, "rendered prompt exceeds %zu parts", o->max_parts);
			return;
		}
		o->parts[o->n_parts++] = (struct mu_chat_part){.id = id, .off = o->len, .len = n};
	}
	memcpy(o->text + o->len, s, n);
	o->len += n;
}

static void text(struct builder *b, const char *s, size_t n)
{
	if (n)
		put_part(b, -1, s, n);
}

static void lit(struct builder *b, const char *s) { text(b, s, strlen(s)); }

/* A marker the template writes itself ("<think>"): its token when the vocabulary has one (Qwen 3
 * does, as a user-defined token), else plain text. */
static void marker(struct builder *b, const char *s)
{
	int32_t id = find_special(b->t, s);
	if (id >= 0 && b->t->type[id] != MU_TOKEN_NORMAL)
		put_part(b, id, s, strlen(s));
	else
		lit(b, s);
}

static void special(struct builder *b, const char *s)
{
	if (b->rc)
		return;
	int32_t id = find_special(b->t, s);
	if (id < 0) {
		b->rc = mu_errf(b->err, MU_ERR_UNSUPPORTED, "chat template needs the token %s, which the vocabulary lacks", s);
		return;
	}
	put_part(b, id, s, strlen(s));
}

/* A special token by id (BOS/EOS, whose spelling differs between vocabularies). */
static void special_id(struct builder *b, int32_t id, const char *what)
{
	if (b->rc)
		return;
	if (id < 0 || (uint32_t)id >= b->t->n_vocab) {
		b->rc = mu_errf(b->err, MU_ERR_UNSUPPORTED, "chat template needs a %s token, which the vocabulary lacks", what);
		return;
	}
	put_part(b, id, (const char *)b->t->piece[id], b->t->piece_len[id]);
}

/* Python's str.isspace(), which Jinja's trim and str.strip use: Unicode category Zs or
 * bidirectional class WS, B or S. */
static int py_space_at(const char *s, size_t n, size_t *len)
{
	utf8proc_int32_t cp;
	utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp);
	if (k <= 0)
		return 0;
	*len = (size_t)k;
	const utf8proc_property_t *p = utf8proc_get_property(cp);
	return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
	       p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

static void trim_end(const char *s, size_t *n)
{
	size_t k;
	/* step back over one UTF-8 character at a time */
	while (*n) {
		size_t start = *n - 1;
		while (start > 0 && ((unsigned char)s[start] & 0xc0) == 0x80 && *n - start < 4)
			start--;
		if (!py_space_at(s + start, *n - start, &k) || start + k != *n)
			break;
		*n = start;
	}
}

static void trim(const char **s, size_t *n)
{
	size_t k;
	while (*n && py_space_at(*s, *n, &k)) {
		*s += k;
		*n -= k;
	}
	trim_end(*s, n);
}

static const char *role_name(enum mu_chat_role r)
{
	return r == MU_ROLE_SYSTEM ? "system" : r == MU_ROLE_USER ? "user" : "assistant";
}

static void render_llama3(struct builder *b, const struct mu_chat_msg *m, size_t n, int gen, const char *date,
			  int with_system_header)
{
	size_t first = 0;
	special_id(b, b->t->bos, "beginning-of-text");
	if (with_system_header) {
		const char *sys = "";
		size_t sys_len = 0;
		if (n && m[0].role == MU_ROLE_SYSTEM) {
			sys = m[0].content;
			sys_len = m[0].len;
			trim(&sys, &sys_len);
			first = 1;
		}
		special(b, "<|start_header_id|>");
		lit(b, "system");
		special(b, "<|end_header_id|>");
		lit(b, "\n\nCutting Knowledge Date: December 2023\nToday Date: ");
		lit(b, date);
		lit(b, "\n\n");
		text(b, sys, sys_len);
		special(b, "<|eot_id|>");
	}
	for (size_t i = first; i < n; i++) {
		const char *c = m[i].content;
		size_t len = m[i].len;
		trim(&c, &len);
		special(b, "<|start_header_id|>");
		lit(b, role_name(m[i].role));
		special(b, "<|end_header_id|>");
		lit(b, "\n\n");
		text(b, c, len);
		special(b, "<|eot_id|>");
	}
	if (gen) {
		special(b, "<|start_header_id|>");
		lit(b, "assistant");
		special(b, "<|end_header_id|>");
		lit(b, "\n\n");
	}
}

static int mem_find(const char *s, size_t n, const char *needle, size_t *at, int last)
{
	size_t k = strlen(needle);
	int found = 0;
	for (size_t i = 0; k <= n && i + k <= n; i++)
		if (!memcmp(s + i, needle, k)) {
			*at = i;
			found = 1;
			if (!last)
				break;
		}
	return found;
}

static void render_chatml(struct builder *b, const struct mu_chat_msg *m, size_t n, int gen)
{
	/* Qwen 3: the last user query; assistant turns after it keep their reasoning */
	size_t last_query = n ? n - 1 : 0;
	for (size_t i = n; i-- > 0;)
		if (m[i].role == MU_ROLE_USER) {
			last_query = i;
			break;
		}
	for (size_t i = 0; i < n; i++) {
		special(b, "<|im_start|>");
		lit(b, role_name(m[i].role));
		lit(b, "\n");
		if (m[i].role != MU_ROLE_ASSISTANT) {
			text(b, m[i].content, m[i].len);
		} else {
			const char *c = m[i].content;
			size_t len = m[i].len, at;
			const char *reason = "";
			size_t reason_len = 0;
			if (mem_find(c, len, "</think>", &at, 1)) {
				/* reasoning = text before the last </think>, after its <think>, trimmed of
				 * newlines; content = what follows, without leading newlines */
				size_t open;
				reason = c;
				reason_len = at;
				if (mem_find(reason, reason_len, "<think>", &open, 1)) {
					reason += open + 7;
					reason_len -= open + 7;
				}
				c += at + 8;
				len -= at + 8;
				while (len && *c == '\n')
					c++, len--;
				while (reason_len && *reason == '\n')
					reason++, reason_len--;
				while (reason_len && reason[reason_len - 1] == '\n')
					reason_len--;
			}
			if (i > last_query && (i + 1 == n || reason_len)) {
				marker(b, "<think>");
				lit(b, "\n");
				text(b, reason, reason_len);
				lit(b, "\n");
				marker(b, "</think>");
				lit(b, "\n\n");
			}
			text(b, c, len);
		}
		special(b, "<|im_end|>");
		lit(b, "\n");
	}
	if (gen) {
		special(b, "<|im_start|>");
		lit(b, "assistant\n");
	}
}

static void render_llama2(struct builder *b, const struct mu_chat_msg *m, size_t n)
{
	size_t first = 0;
	const char *sys = NULL;
	size_t sys_len = 0;
	if (n && m[0].role == MU_ROLE_SYSTEM) {
		sys = m[0].content;
		sys_len = m[0].len;
		first = 1;
	}
	for (size_t i = first; i < n; i++) {
		const char *c = m[i].content;
		size_t len = m[i].len;
		if (m[i].role == MU_ROLE_ASSISTANT) {
			trim(&c, &len);
			lit(b, " ");
			text(b, c, len);
			lit(b, " ");
			special_id(b, b->t->eos, "end-of-text");
			continue;
		}
		special_id(b, b->t->bos, "beginning-of-text");
		lit(b, "[INST] ");
		if (i == first && sys) {
			/* the reference strips the whole "<<SYS>>...USER" string, so only the
			 * user text's end loses its spaces */
			lit(b, "<<SYS>>\n");
			text(b, sys, sys_len);
			lit(b, "\n<</SYS>>\n\n");
			trim_end(c, &len);
			text(b, c, len);
		} else {
			trim(&c, &len);
			text(b, c, len);
		}
		lit(b, " [/INST]");
	}
}

static void render_plain(struct builder *b, const struct mu_chat_msg *m, size_t n)
{
	if (b->t->add_bos)
		special_id(b, b->t->bos, "beginning-of-text");
	for (size_t i = 0; i < n; i++) {
		if (i)
			lit(b, "\n\n");
		text(b, m[i].content, m[i].len);
	}
}

enum mu_err mu_chat_render(enum mu_chat_template c, const struct mu_tokenizer *t, const struct mu_chat_msg *msgs,
			   size_t n, int add_generation_prompt, const char *date, struct mu_chat_render *out,
			   struct mu_error *err)
{
	struct builder b = {.t = t, .out = out, .err = err, .rc = MU_OK};
	out->len = 0;
	out->n_parts = 0;
	if (n == 0)
		return mu_errf(err, MU_ERR_ARG, "a chat needs at least one message");
	for (size_t i = 0; i < n; i++) {
		if ((unsigned)msgs[i].role > MU_ROLE_ASSISTANT)
			return mu_errf(err, MU_ERR_ARG, "message %zu: unknown role", i);
		if (msgs[i].role == MU_ROLE_SYSTEM && i != 0)
			return mu_errf(err, MU_ERR_ARG, "message %zu: a system message may only come first", i);
		if (msgs[i].len) {
			/* content must be valid UTF-8: it is text the model will read */
			const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)msgs[i].content;
			utf8proc_ssize_t left = (utf8proc_ssize_t)msgs[i].len;
			while (left > 0) {
				utf8proc_int32_t cp;
				utf8proc_ssize_t k = utf8proc_iterate(p, left, &cp);
				if (k <= 0)
					return mu_errf(err, MU_ERR_FORMAT, "message %zu: content is not valid UTF-8 at byte %zu", i,
						       msgs[i].len - (size_t)left);
				p += k;
				left -= k;
			}
		}
	}
	if (!date)
		date = MU_CHAT_DEFAULT_DATE;
	switch (c) {
	case MU_CHAT_LLAMA3: render_llama3(&b, msgs, n, add_generation_prompt, date, 0); break;
	case MU_CHAT_LLAMA31: render_llama3(&b, msgs, n, add_generation_prompt, date, 1); break;
	case MU_CHAT_CHATML: render_chatml(&b, msgs, n, add_generation_prompt); break;
	case MU_CHAT_LLAMA2: render_llama2(&b, msgs, n); break;
	case MU_CHAT_PLAIN: render_plain(&b, msgs, n); break;
	default: return mu_errf(err, MU_ERR_ARG, "unknown chat template %d", (int)c);
	}
	return b.rc;
}

enum mu_err mu_chat_encode(const struct mu_tokenizer *t, const struct mu_chat_render *r, int32_t *ids, size_t max_ids,
			   size_t *n_ids, struct mu_arena *scratch, struct mu_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_parts; i++) {
		const struct mu_chat_part *p = &r->parts[i];
		if (p->id >= 0) {
			if (n >= max_ids)
				return mu_errf(err, MU_ERR_RANGE, "prompt exceeds %zu tokens", max_ids);
			ids[n++] = p->id;
			continue;
		}
		size_t got = 0;
		size_t mark = scratch->used;
		enum mu_err rc = mu_tokenizer_encode(t, r->text + p->off, p->len, 0, ids + n, max_ids - n, &got, scratch, err);
		scratch->used = mark;
		if (rc)
			return rc;
		n += got;
	}
	*n_ids = n;
	return MU_OK;
}
