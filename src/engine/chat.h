/* chat.h — chat templates: turning a list of messages into the exact prompt a model was
 * trained on, and the tokens that end its turn.
 *
 * Templates are recognized, not interpreted: the GGUF's tokenizer.chat_template (a Jinja
 * program) is matched against the few families this engine knows, and each family is
 * rendered by C code that reproduces the reference output byte for byte:
 *
 *   llama3    Llama 3: <|begin_of_text|> then per message
 *             <|start_header_id|>ROLE<|end_header_id|>\n\n CONTENT(trimmed) <|eot_id|>
 *   llama31   Llama 3.1/3.2: as llama3, but always opens with a system turn carrying
 *             "Cutting Knowledge Date: December 2023\nToday Date: DATE\n\n" before the
 *             system message (DATE defaults to the template's own fallback, "26 Jul 2024",
 *             so a prompt does not depend on the clock)
 *   chatml    Qwen, SmolLM: <|im_start|>ROLE\n CONTENT <|im_end|>\n ...; earlier assistant
 *             turns lose a leading <think>...</think> block, as Qwen 3's template does
 *   llama2    Llama 2: <s>[INST] <<SYS>>\nSYSTEM\n<</SYS>>\n\nUSER [/INST] ANSWER </s>...
 *   plain     no template: the messages' contents joined by blank lines, BOS first
 *
 * Injection safety: a render is a sequence of parts, each either text or one special token
 * id placed by the template. Message content is only ever text, and text is encoded without
 * special-token parsing, so a user writing "<|eot_id|>" gets the characters, not a turn end.
 * Adjacent text parts are encoded as one piece, which gives the same ids as tokenizing the
 * whole rendered string the way the reference implementations do.
 *
 * A turn ends at the vocabulary's end-of-generation set (mu_tokenizer_is_eog: EOS and the
 * end-of-turn tokens of every family above), so there is no per-template stop list here.
 */
#ifndef MU_ENGINE_CHAT_H
#define MU_ENGINE_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

enum mu_chat_template {
	MU_CHAT_PLAIN = 0,
	MU_CHAT_LLAMA2,
	MU_CHAT_LLAMA3,
	MU_CHAT_LLAMA31,
	MU_CHAT_CHATML,
};

enum mu_chat_role { MU_ROLE_SYSTEM = 0, MU_ROLE_USER, MU_ROLE_ASSISTANT };

struct mu_chat_msg {
	enum mu_chat_role role;
	const char *content; /* UTF-8, not NUL-terminated */
	size_t len;
};

/* One piece of a rendered prompt: text[off, off+len) of the render's buffer; id >= 0 when the
 * piece is a special token the template placed (its text is in the buffer too, for display). */
struct mu_chat_part {
	int32_t id;
	size_t off;
	size_t len;
};

struct mu_chat_render {
	char *text;                 /* caller's buffer */
	size_t cap, len;
	struct mu_chat_part *parts; /* caller's array */
	size_t max_parts, n_parts;
};

#define MU_CHAT_DEFAULT_DATE "26 Jul 2024"

/* Picks the family from tokenizer.chat_template, falling back to the architecture and the
 * vocabulary (Llama 3 header tokens, ChatML tokens) and finally to plain. */
enum mu_chat_template mu_chat_detect(const struct gguf *g, const struct mu_tokenizer *t);
const char *mu_chat_template_name(enum mu_chat_template c);
int mu_chat_template_from_name(const char *name); /* -1 when unknown */

/* Renders msgs (system messages only first; roles otherwise alternate freely) and, with
 * add_generation_prompt, the header of the assistant's next turn. date: NULL for the default. */
enum mu_err mu_chat_render(enum mu_chat_template c, const struct mu_tokenizer *t, const struct mu_chat_msg *msgs,
			   size_t n, int add_generation_prompt, const char *date, struct mu_chat_render *out,
			   struct mu_error *err);

/* Token ids of a render (see "Injection safety" above). */
enum mu_err mu_chat_encode(const struct mu_tokenizer *t, const struct mu_chat_render *r, int32_t *ids, size_t max_ids,
			   size_t *n_ids, struct mu_arena *scratch, struct mu_error *err);


#endif
