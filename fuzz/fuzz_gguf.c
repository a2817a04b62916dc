/* fuzz_gguf.c — libFuzzer harness for the GGUF reader.
 *
 * Sizes and parses the input; when it is accepted, checks that everything the reader hands
 * out lies inside the input and drives every lookup, getter and iterator over it. libFuzzer
 * gives the input in an exactly sized buffer, so ASan reports any read past its end; a broken
 * invariant traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

static int inside(const void *p, uint64_t n, const uint8_t *data, size_t size)
{
	const uint8_t *q = p;
	return q >= data && q <= data + size && n <= (uint64_t)(data + size - q);
}

static void touch(const void *p, uint64_t n)
{
	const uint8_t *q = p;
	if (n > 0)
		sink ^= q[0] ^ q[n - 1];
}

/* Calls every getter on key; the results only have to be consistent with the kv's type. */
static void getters(const struct gguf *g, const struct gguf_kv *kv, const char *key)
{
	struct mu_error err;
	uint32_t u32;
	uint64_t u64;
	float f;
	int b, found;
	struct gguf_str s;
	const struct gguf_kv *arr = NULL;

	enum mu_err e = gguf_get_u32(g, key, &u32, &found, &err);
	require(found == 1 && (e == MU_OK || e == MU_ERR_FORMAT));
	e = gguf_get_u64(g, key, &u64, &found, &err);
	require(e == MU_OK || e == MU_ERR_FORMAT);
	e = gguf_get_f32(g, key, &f, &found, &err);
	require((e == MU_OK) == (kv->type == GGUF_TYPE_FLOAT32));
	e = gguf_get_bool(g, key, &b, &found, &err);
	require((e == MU_OK) == (kv->type == GGUF_TYPE_BOOL));
	if (e == MU_OK)
		require(b == 0 || b == 1);
	e = gguf_get_str(g, key, &s, &found, &err);
	require((e == MU_OK) == (kv->type == GGUF_TYPE_STRING));
	if (e == MU_OK) {
		require(inside(s.ptr, s.len, kv->data, (size_t)kv->size));
		touch(s.ptr, s.len);
	}
	e = gguf_get_arr(g, key, kv->arr_type, &arr, &found, &err);
	require((e == MU_OK) == (kv->type == GGUF_TYPE_ARRAY));
	if (e == MU_OK)
		require(arr == kv);
	e = gguf_get_arr(g, key, (enum gguf_type)((kv->arr_type + 1) % GGUF_TYPE_COUNT), &arr, &found, &err);
	require(e == MU_ERR_FORMAT);
	if (e != MU_OK)
		require(err.msg[0] != '\0');
}

static void elements(const struct gguf_kv *kv)
{
	uint64_t n = kv->arr_len;
	switch (kv->arr_type) {
	case GGUF_TYPE_STRING: {
		struct gguf_str_iter it;
		struct gguf_str s;
		uint64_t count = 0;
		gguf_str_iter_init(&it, kv);
		while (gguf_str_iter_next(&it, &s)) {
			require(inside(s.ptr, s.len, kv->data, (size_t)kv->size));
			touch(s.ptr, s.len);
			count++;
		}
		require(count == n);
		break;
	}
	case GGUF_TYPE_UINT8:
	case GGUF_TYPE_UINT16:
	case GGUF_TYPE_UINT32:
		for (uint64_t i = 0; i < n; i++)
			sink ^= (uint8_t)gguf_arr_u32(kv, i);
		break;
	case GGUF_TYPE_INT8:
	case GGUF_TYPE_INT16:
	case GGUF_TYPE_INT32:
		for (uint64_t i = 0; i < n; i++)
			sink ^= (uint8_t)gguf_arr_i32(kv, i);
		break;
	case GGUF_TYPE_FLOAT32:
		for (uint64_t i = 0; i < n; i++)
			sink ^= (uint8_t)(gguf_arr_f32(kv, i) != 0.0f);
		break;
	default:
		touch(kv->data, kv->size);
		break;
	}
}

static void exercise(const struct gguf *g, const uint8_t *data, size_t size)
{
	uint64_t longest = 0;
	require(g->base == data && g->len == size);
	require(g->alignment > 0 && (g->alignment & (g->alignment - 1)) == 0);
	require(g->data_offset % g->alignment == 0);
	for (uint64_t i = 0; i < g->n_kv; i++)
		longest = g->kv[i].key.len > longest ? g->kv[i].key.len : longest;
	for (uint64_t i = 0; i < g->n_tensors; i++)
		longest = g->tensors[i].name.len > longest ? g->tensors[i].name.len : longest;
	char *name = malloc((size_t)longest + 1);
	if (!name)
		return;

	for (uint64_t i = 0; i < g->n_kv; i++) {
		const struct gguf_kv *kv = &g->kv[i];
		require(kv->key.len > 0 && inside(kv->key.ptr, kv->key.len, data, size));
		require(inside(kv->data, kv->size, data, size));
		require(kv->type < GGUF_TYPE_COUNT && kv->arr_type < GGUF_TYPE_COUNT && kv->arr_type != GGUF_TYPE_ARRAY);
		require(kv->type == GGUF_TYPE_ARRAY || (kv->arr_type == kv->type && kv->arr_len == 1));
		require(strcmp(gguf_type_name(kv->type), "unknown") != 0);
		elements(kv);
		memcpy(name, kv->key.ptr, (size_t)kv->key.len);
		name[kv->key.len] = '\0';
		if (strlen(name) != kv->key.len)
			continue; /* an embedded NUL: not reachable by a C-string lookup */
		require(gguf_find_kv(g, name) == kv && gguf_str_eq(kv->key, name));
		getters(g, kv, name);
	}

	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct gguf_tensor *t = &g->tensors[i];
		require(t->name.len > 0 && inside(t->name.ptr, t->name.len, data, size));
		require(t->n_dims >= 1 && t->n_dims <= 4 && t->offset % g->alignment == 0);
		require(t->size > 0 && inside(t->data, t->size, data, size));
		require(t->data == data + g->data_offset + t->offset);
		require(t->offset + t->size <= g->data_size);
		require(mu_dtype_get((uint32_t)t->type) != NULL);
		uint64_t n = 1;
		for (int d = 0; d < 4; d++) {
			require(t->ne[d] > 0 && (d < (int)t->n_dims || t->ne[d] == 1));
			n *= t->ne[d];
		}
		require(n == t->n_elements);
		touch(t->data, t->size);
		memcpy(name, t->name.ptr, (size_t)t->name.len);
		name[t->name.len] = '\0';
		if (strlen(name) == t->name.len)
			require(gguf_find_tensor(g, name) == t);
	}
	require(gguf_find_kv(g, "") == NULL && gguf_find_tensor(g, "") == NULL);
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mu_error err;
	struct gguf g;
	size_t need = 0;

	err.msg[0] = '\0';
	if (gguf_mem_size(data, size, &need, &err) != MU_OK) {
		require(err.msg[0] != '\0');
		return 0;
	}
	void *mem = need ? malloc(need) : NULL;
	if (need && !mem)
		return 0;
	enum mu_err e = gguf_parse(&g, data, size, mem, need, &err);
	if (e == MU_OK)
		exercise(&g, data, size);
	else
		require(err.msg[0] != '\0' && e != MU_ERR_NOMEM);
	free(mem);
	return 0;
}
