#!/usr/bin/python3
"""ref_forward.py — an independent NumPy reference forward pass, used as a test oracle.

It reads a GGUF file with its own parser, dequantizes every tensor, and runs the
llama / qwen2 / qwen3 forward pass over a list of token ids, one position at a time with a
KV cache. The output is the logits of the last position.

    ref_forward.py MODEL.gguf --tokens 1,2,3 [--out logits.f32]
    ref_forward.py MODEL.gguf --tokens 1,403,407 --generate 8
    ref_forward.py MODEL.gguf --tokens 1,2,3 --kv f16 --out logits.f32

Without --out the logits are printed one per line (%.9g); with --out they are written as
float32 little-endian. --generate N appends N greedily chosen tokens (argmax, ties to the
lowest id) and prints them on one line.

Arithmetic. Everything is float64 except what the engine's numerics define exactly:
before a vector is multiplied by a Q8_0 or Q4_0 weight it is rounded to float32 and
quantized to Q8_0 in float32 arithmetic (see ActQuant), and the product uses that
dequantized activation; before a Q4_K, Q5_K or Q6_K weight it is quantized to Q8_K the same
way (per 256 values). F32/F16/BF16 weights multiply the activation as it is. K-quant weights
are dequantized exactly (in float64).

    --ties N       with --out: also write the logits obtained when one of the N values
                   nearest to a rounding tie in that quantization is rounded the other way
                   (OUT.tie1 .. OUT.tieK, described in OUT.ties); see ActQuant
    --stats        print to stderr how close the activation quantization came to a tie
    --no-quant-act skip the activation quantization (to measure its effect)
    --kv f16|f32   the engine's KV cache type. f32 (the default) caches k and v as computed
                   (this oracle's float64 stands in for the engine's float32 throughout);
                   f16 rounds each k (after RoPE) and v element to float32 and then to
                   float16, both to nearest with ties to even, when it is cached, as the
                   engine's F16 cache stores them; attention reads the rounded values.
                   Values near a float16 rounding tie join the --ties list
                   (see ActQuant.round_f16).

Only the Python standard library and NumPy are used. Nothing is shared with the C engine
except the model specification (tests/ref/README.md).
"""

import argparse
import math
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------------------------
# GGUF reader

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# value type id -> (struct format, size) for the fixed-size scalars
SCALAR_FORMATS = {
    0: ("<B", 1),   # u8
    1: ("<b", 1),   # i8
    2: ("<H", 2),   # u16
    3: ("<h", 2),   # i16
    4: ("<I", 4),   # u32
    5: ("<i", 4),   # i32
    6: ("<f", 4),   # f32
    7: ("<B", 1),   # bool
    10: ("<Q", 8),  # u64
    11: ("<q", 8),  # i64
    12: ("<d", 8),  # f64
}
TYPE_STRING = 8
TYPE_ARRAY = 9
TYPE_BOOL = 7

# tensor type id -> (name, elements per block, bytes per block)
TENSOR_TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    8: ("Q8_0", 32, 34),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    30: ("BF16", 1, 2),
}
# weight type -> the form its activations are quantized to
ACT_KIND = {2: "q8_0", 8: "q8_0", 12: "q8_k", 13: "q8_k", 14: "q8_k"}


class GGUFError(Exception):
    pass


class Reader:
    """A bounds-checked little-endian cursor over a bytes object."""

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError("%s: needs %d bytes at offset %d, file has %d"
                            % (what, n, self.pos, len(self.buf)))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt, size, what):
        return struct.unpack(fmt, self.take(size, what))[0]

    def u32(self, what):
        return self.unpack("<I", 4, what)

    def u64(self, what):
        return self.unpack("<Q", 8, what)

    def string(self, what):
        n = self.u64(what + " length")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError("%s: not valid UTF-8" % what)

    def value(self, vtype, what, in_array=False):
        if vtype in SCALAR_FORMATS:
            fmt, size = SCALAR_FORMATS[vtype]
            v = self.unpack(fmt, size, what)
            if vtype == TYPE_BOOL:
                if v > 1:
                    raise GGUFError("%s: bool value %d" % (what, v))
                v = bool(v)
            return v
        if vtype == TYPE_STRING:
            return self.string(what)
        if vtype == TYPE_ARRAY and not in_array:
            etype = self.u32(what + " element type")
            count = self.u64(what + " count")
            if etype in SCALAR_FORMATS:
                fmt, size = SCALAR_FORMATS[etype]
                raw = self.take(count * size, what)
                return list(struct.unpack("<%d%s" % (count, fmt[1]), raw))
            if etype == TYPE_STRING:
                return [self.string(what) for _ in range(count)]
            raise GGUFError("%s: unsupported array element type %d" % (what, etype))
        raise GGUFError("%s: unknown value type %d" % (what, vtype))


class Tensor:
    def __init__(self, name, ne, ttype, offset):
        self.name = name
        self.ne = ne          # ne[0] is the fastest-varying dimension
        self.ttype = ttype
        self.offset = offset
        self.data = None      # raw bytes

    @property
    def type_name(self):
        return TENSOR_TYPES[self.ttype][0]

    def nbytes(self):
        _, blk, bsize = TENSOR_TYPES[self.ttype]
        n = 1
        for d in self.ne:
            n *= d
        return n // blk * bsize


def read_gguf(path):
    """Returns (metadata dict, dict name -> Tensor)."""
    with open(path, "rb") as f:
        buf = f.read()
    r = Reader(buf)
    if r.take(4, "magic") != GGUF_MAGIC:
        raise GGUFError("%s: not a GGUF file (bad magic)" % path)
    version = r.u32("version")
    if version not in (2, 3):
        raise GGUFError("%s: GGUF version %d is not supported" % (path, version))
    n_tensors = r.u64("n_tensors")
    n_kv = r.u64("n_kv")
    if n_tensors > len(buf) or n_kv > len(buf):
        raise GGUFError("%s: implausible counts (%d tensors, %d keys)" % (path, n_tensors, n_kv))

    meta = {}
    for i in range(n_kv):
        key = r.string("key %d" % i)
        if key in meta:
            raise GGUFError("duplicate key %r" % key)
        vtype = r.u32("type of " + key)
        meta[key] = r.value(vtype, key)

    tensors = {}
    order = []
    for i in range(n_tensors):
        name = r.string("tensor name %d" % i)
        if name in tensors:
            raise GGUFError("duplicate tensor %r" % name)
        n_dims = r.u32("tensor " + name + " n_dims")
        if not 1 <= n_dims <= 4:
            raise GGUFError("tensor %s: n_dims %d" % (name, n_dims))
        ne = [r.u64("tensor " + name + " ne") for _ in range(n_dims)]
        if any(d == 0 for d in ne):
            raise GGUFError("tensor %s: zero dimension %r" % (name, ne))
        ttype = r.u32("tensor " + name + " type")
        offset = r.u64("tensor " + name + " offset")
        if ttype not in TENSOR_TYPES:
            raise GGUFError("tensor %s: type %d not supported by the oracle" % (name, ttype))
        if ne[0] % TENSOR_TYPES[ttype][1] != 0:
            raise GGUFError("tensor %s: row of %d is not a whole number of %s blocks"
                            % (name, ne[0], TENSOR_TYPES[ttype][0]))
        t = Tensor(name, ne, ttype, offset)
        tensors[name] = t
        order.append(t)

    alignment = meta.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError("general.alignment %r is not a power of two" % (alignment,))
    data_start = (r.pos + alignment - 1) // alignment * alignment
    for t in order:
        if t.offset % alignment:
            raise GGUFError("tensor %s: offset %d not aligned to %d" % (t.name, t.offset, alignment))
        a = data_start + t.offset
        b = a + t.nbytes()
        if b > len(buf):
            raise GGUFError("tensor %s: data [%d, %d) past end of file (%d bytes)"
                            % (t.name, a, b, len(buf)))
        t.data = buf[a:b]
    spans = sorted((t.offset, t.offset + t.nbytes(), t.name) for t in order)
    for (a0, a1, an), (b0, _, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise GGUFError("tensors %s and %s overlap" % (an, bn))
    return meta, tensors


# ---------------------------------------------------------------------------------------------
# Dequantization. Each returns float32 values in file order (ne[0] fastest).

def f16_to_f32(raw_u16):
    return raw_u16.view(np.float16).astype(np.float32)


def dequantize(t):
    raw = np.frombuffer(t.data, dtype=np.uint8)
    if t.ttype == 0:
        return raw.view("<f4").astype(np.float32)
    if t.ttype == 1:
        return raw.view("<f2").astype(np.float32)
    if t.ttype == 30:
        u = raw.view("<u2").astype(np.uint32) << 16
        return u.view(np.float32)
    if t.ttype == 8:
        blocks = raw.reshape(-1, 34)
        d = f16_to_f32(blocks[:, 0:2].copy().view("<u2").reshape(-1))
        qs = blocks[:, 2:].view(np.int8).astype(np.float32)
        return (d[:, None] * qs).reshape(-1)
    if t.ttype == 2:
        blocks = raw.reshape(-1, 18)
        d = f16_to_f32(blocks[:, 0:2].copy().view("<u2").reshape(-1))
        qs = blocks[:, 2:]
        lo = (qs & 15).astype(np.int16) - 8
        hi = (qs >> 4).astype(np.int16) - 8
        q = np.concatenate([lo, hi], axis=1).astype(np.float32)
        return (d[:, None] * q).reshape(-1)
    if t.ttype in (12, 13):
        return dequantize_q45_k(raw, t.ttype == 13)
    if t.ttype == 14:
        return dequantize_q6_k(raw)
    raise GGUFError("tensor %s: no dequantizer for type %d" % (t.name, t.ttype))


def k_scales_mins(sc):
    """The 8 six-bit scales and mins of a Q4_K/Q5_K super-block from its 12 bytes (n, 12):
    sub-block j < 4: scale = b[j] & 63, min = b[j+4] & 63; j >= 4: scale = (b[j+4] & 15) |
    (b[j-4] >> 6) << 4, min = (b[j+4] >> 4) | (b[j] >> 6) << 4."""
    sc = sc.astype(np.int32)
    scales = np.empty((sc.shape[0], 8), dtype=np.int32)
    mins = np.empty((sc.shape[0], 8), dtype=np.int32)
    scales[:, 0:4] = sc[:, 0:4] & 63
    mins[:, 0:4] = sc[:, 4:8] & 63
    scales[:, 4:8] = (sc[:, 8:12] & 15) | ((sc[:, 0:4] >> 6) << 4)
    mins[:, 4:8] = (sc[:, 8:12] >> 4) | ((sc[:, 4:8] >> 6) << 4)
    return scales, mins


def dequantize_q45_k(raw, five):
    """Q4_K (144 bytes per 256 values): f16 d, f16 dmin, 12 bytes of scales and mins, 128 bytes
    of 4-bit quants. Q5_K (176 bytes): the same with 32 bytes of high bits (qh) before the 128.
    Each 64 values share 32 quant bytes: values 0..31 are the low nibbles (sub-block 2c),
    32..63 the high nibbles (sub-block 2c+1); Q5_K adds 16 when bit 2c (resp. 2c+1) of
    qh[l] is set. value = d * scale * q - dmin * min."""
    size = 176 if five else 144
    blocks = raw.reshape(-1, size)
    d = f16_to_f32(blocks[:, 0:2].copy().view("<u2").reshape(-1)).astype(np.float64)
    dmin = f16_to_f32(blocks[:, 2:4].copy().view("<u2").reshape(-1)).astype(np.float64)
    scales, mins = k_scales_mins(blocks[:, 4:16])
    qh = blocks[:, 16:48].astype(np.int32) if five else None
    qs = blocks[:, size - 128:size].astype(np.int32)
    q = np.empty((blocks.shape[0], 256), dtype=np.int32)
    for c in range(4):
        ql = qs[:, 32 * c:32 * c + 32]
        q[:, 64 * c:64 * c + 32] = ql & 15
        q[:, 64 * c + 32:64 * c + 64] = ql >> 4
        if five:
            q[:, 64 * c:64 * c + 32] += ((qh >> (2 * c)) & 1) * 16
            q[:, 64 * c + 32:64 * c + 64] += ((qh >> (2 * c + 1)) & 1) * 16
    sub_scale = np.repeat(scales, 32, axis=1).astype(np.float64)
    sub_min = np.repeat(mins, 32, axis=1).astype(np.float64)
    return (d[:, None] * sub_scale * q - dmin[:, None] * sub_min).reshape(-1)


def dequantize_q6_k(raw):
    """Q6_K (210 bytes per 256 values): ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16]
    (one per 16 values), f16 d. Each half of 128 values uses ql[64h..], qh[32h..],
    scales[8h..]: for l < 32, values l, l+32, l+64, l+96 take the low nibble of ql[l],
    the low nibble of ql[l+32], the high nibble of ql[l], the high nibble of ql[l+32], with
    bits 0-1, 2-3, 4-5, 6-7 of qh[l] on top; q - 32 is scaled by d * scales[value // 16]."""
    blocks = raw.reshape(-1, 210)
    ql = blocks[:, 0:128].astype(np.int32)
    qh = blocks[:, 128:192].astype(np.int32)
    scales = blocks[:, 192:208].view(np.int8).astype(np.float64)
    d = f16_to_f32(blocks[:, 208:210].copy().view("<u2").reshape(-1)).astype(np.float64)
    q = np.empty((blocks.shape[0], 256), dtype=np.int32)
    for h in range(2):
        lo = ql[:, 64 * h:64 * h + 64]
        hi = qh[:, 32 * h:32 * h + 32]
        base = 128 * h
        q[:, base + 0:base + 32] = (lo[:, 0:32] & 15) | (((hi >> 0) & 3) << 4)
        q[:, base + 32:base + 64] = (lo[:, 32:64] & 15) | (((hi >> 2) & 3) << 4)
        q[:, base + 64:base + 96] = (lo[:, 0:32] >> 4) | (((hi >> 4) & 3) << 4)
        q[:, base + 96:base + 128] = (lo[:, 32:64] >> 4) | (((hi >> 6) & 3) << 4)
    q = q - 32
    return (d[:, None] * np.repeat(scales, 16, axis=1) * q).reshape(-1)


# ---------------------------------------------------------------------------------------------
# Activation quantization (what the engine does before a Q8_0 / Q4_0 matmul)

class ActQuant:
    """Quantizes activations to Q8_0 the way the engine specifies, and keeps a record of the
    values that came close to a rounding tie.

    q = rint(v) with v = x * id is decided by which side of k + 0.5 the float32 product v lies.
    An engine whose float32 activations differ from this oracle's float64 ones by an ulp or two
    (a different summation order in rmsnorm, say) rounds a value that lies within that distance
    of a tie the other way, and with tiny models one such step moves the logits by ~1e-2. Both
    outcomes follow the specification, so the oracle can re-run the forward pass with one
    recorded near tie rounded the other way (flip) and offer those logits as alternatives."""

    NEAR = 1e-5   # a value is a near tie when |(|v| - floor|v|) - 0.5| < NEAR * |v|

    def __init__(self, flip=None):
        self.calls = 0
        self.count = 0
        self.min_margin = math.inf
        self.ties = []      # (margin, call, index, v, where) for every near tie
        self.flip = flip    # (call, index) to round the other way, or None
        self.pos = 0        # position being computed, for the record
        self.last = {}      # kind -> (the last vector quantized, its result)

    def __call__(self, x, name, kind="q8_0"):
        """Q8_0 round trip of a vector, in float32: amax = max|x|; d = amax/127;
        id = 1/d (0 if d == 0); q = rint(x*id) (half to even); value = f16(d) * q.
        kind "q8_k" (for K-quant weights): the same per 256 values, except that d is kept in
        float32 (not rounded to f16): value = d * q.
        A vector that feeds several matmuls (q/k/v, gate/up) is quantized once per kind, so a
        flipped rounding reaches all of them, as it would in an engine."""
        hit = self.last.get(kind)
        if hit is not None and hit[0] is x:
            return hit[1]
        out = self._quantize(x, name, 32, True) if kind == "q8_0" else self._quantize(x, name, 256, False)
        self.last[kind] = (x, out)
        return out

    def _flip(self, call, q, v):
        if self.flip is not None and self.flip[0] == call:
            i = self.flip[1]
            qf = q.reshape(-1)
            vf = v.reshape(-1)
            qf[i] = qf[i] - 1 if qf[i] > vf[i] else qf[i] + 1
            qf[i] = min(127.0, max(-127.0, qf[i]))

    def _quantize(self, x, name, block, f16_scale):
        """Q8_0 (block 32, the scale stored as float16) or Q8_K (block 256, float32 scale)
        activations: amax / 127, the float32 reciprocal, round half to even."""
        call = self.calls
        self.calls += 1
        x = np.asarray(x, dtype=np.float32).reshape(-1, block)
        amax = np.max(np.abs(x), axis=1)
        d = (amax / np.float32(127.0)).astype(np.float32)
        with np.errstate(divide="ignore"):
            inv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
        v = (x * inv[:, None]).astype(np.float32)
        q = np.rint(v).astype(np.float32)
        self._record(call, v.reshape(-1), "pos %d, input of %s" % (self.pos, name))
        self._flip(call, q, v)
        if f16_scale:
            d = d.astype(np.float16).astype(np.float32)
        return (d.astype(np.float64)[:, None] * q.astype(np.float64)).reshape(-1)

    def round_f16(self, x, where):
        """The engine's F16 KV cache: x rounded to float32, then to float16, both to nearest
        with ties to even; returned widened to float64. Like a Q8_0 rounding, the float16
        rounding of a value that lies within an ulp or two of the midpoint between two float16
        numbers depends on the last bits of the float32 value, which this oracle computes
        differently; such values are recorded as near ties (margin |x - midpoint| / |x|) and
        one of them can be rounded the other way (flip), in the same list as the activation
        ties. (A small element can be off by more than its own ulp, since a float32 dot
        product's error scales with its terms; but rounding such an element the other way moves
        it by its own, small, ulp, which the tolerance absorbs.)"""
        call = self.calls
        self.calls += 1
        x32 = np.asarray(x, dtype=np.float32)
        h = x32.reshape(-1).astype(np.float16)
        xd = x32.reshape(-1).astype(np.float64)
        hd = h.astype(np.float64)
        other = np.where(xd > hd, np.nextafter(h, np.float16(np.inf)), np.nextafter(h, np.float16(-np.inf)))
        mid = (hd + other.astype(np.float64)) / 2.0
        margin = np.full(xd.shape, np.inf)
        nz = xd != 0
        margin[nz] = np.abs(xd[nz] - mid[nz]) / np.abs(xd[nz])
        self._note(call, margin, xd, "pos %d, %s" % (self.pos, where))
        if self.flip is not None and self.flip[0] == call:
            i = self.flip[1]
            h[i] = other[i]
        return h.astype(np.float64).reshape(x32.shape)

    def _record(self, call, v, where):
        a = np.abs(v.astype(np.float64))
        margin = np.full(a.shape, np.inf)
        nz = a > 0
        margin[nz] = np.abs(a[nz] - np.floor(a[nz]) - 0.5) / a[nz]
        self._note(call, margin, v, where)

    def _note(self, call, margin, values, where):
        """Counts the roundings of one call and lists those within NEAR of a tie."""
        self.count += values.size
        if values.size:
            self.min_margin = min(self.min_margin, float(margin.min()))
        for i in np.nonzero(margin < self.NEAR)[0]:
            self.ties.append((float(margin[i]), call, int(i), float(values[i]), where))


# ---------------------------------------------------------------------------------------------
# Model

ROPE_NORM = 0   # rotate (2i, 2i+1)
ROPE_NEOX = 1   # rotate (i, i + rope_dim/2)
ROPE_TYPES = {"llama": ROPE_NORM, "qwen2": ROPE_NEOX, "qwen3": ROPE_NEOX}


class Linear:
    """y = W x for a weight with ne = {n_in, n_out}: n_out rows of n_in."""

    def __init__(self, t, quant_act, actq):
        if len(t.ne) != 2:
            raise GGUFError("tensor %s: expected 2 dims, has %r" % (t.name, t.ne))
        self.n_in, self.n_out = t.ne
        self.w = dequantize(t).astype(np.float64).reshape(self.n_out, self.n_in)
        self.kind = ACT_KIND.get(t.ttype) if quant_act else None
        self.actq = actq
        self.name = t.name

    def __call__(self, x):
        if x.shape != (self.n_in,):
            raise ValueError("%s: input of %r, expected %d" % (self.name, x.shape, self.n_in))
        if self.kind:
            x = self.actq(x, self.name, self.kind)
        return self.w @ x


class Model:
    def __init__(self, path, quant_act=True, kv="f32"):
        if kv not in ("f16", "f32"):
            raise GGUFError("KV cache type %r is not f16 or f32" % (kv,))
        self.kv = kv
        meta, tensors = read_gguf(path)
        self.meta = meta
        self.tensors = tensors
        self.actq = ActQuant()
        arch = meta.get("general.architecture")
        if arch not in ROPE_TYPES:
            raise GGUFError("general.architecture %r is not llama, qwen2 or qwen3" % (arch,))
        self.arch = arch

        def hp(key, default=None):
            v = meta.get(arch + "." + key, default)
            if v is None:
                raise GGUFError("missing %s.%s" % (arch, key))
            return v

        self.n_embd = int(hp("embedding_length"))
        self.n_layer = int(hp("block_count"))
        self.n_ff = int(hp("feed_forward_length"))
        self.n_head = int(hp("attention.head_count"))
        self.n_head_kv = int(hp("attention.head_count_kv", self.n_head))
        self.head_dim = int(hp("attention.key_length", self.n_embd // self.n_head))
        self.eps = float(hp("attention.layer_norm_rms_epsilon"))
        self.rope_base = float(hp("rope.freq_base", 10000.0))
        self.rope_dim = int(hp("rope.dimension_count", self.head_dim))
        self.rope_type = ROPE_TYPES[arch]
        if self.n_head % self.n_head_kv:
            raise GGUFError("head_count %d not a multiple of head_count_kv %d"
                            % (self.n_head, self.n_head_kv))
        if self.rope_dim % 2 or self.rope_dim > self.head_dim:
            raise GGUFError("rope.dimension_count %d invalid for head_dim %d"
                            % (self.rope_dim, self.head_dim))

        def need(name):
            if name not in tensors:
                raise GGUFError("missing tensor %s" % name)
            return tensors[name]

        def vec(name, n):
            t = need(name)
            v = dequantize(t).astype(np.float64)
            if v.size != n:
                raise GGUFError("tensor %s: %d values, expected %d" % (name, v.size, n))
            return v

        def opt_vec(name, n):
            return vec(name, n) if name in tensors else None

        def lin(name, n_in, n_out):
            t = need(name)
            if list(t.ne) != [n_in, n_out]:
                raise GGUFError("tensor %s: ne %r, expected [%d, %d]" % (name, t.ne, n_in, n_out))
            return Linear(t, quant_act, self.actq)

        emb = need("token_embd.weight")
        if len(emb.ne) != 2 or emb.ne[0] != self.n_embd:
            raise GGUFError("token_embd.weight: ne %r, expected [%d, n_vocab]" % (emb.ne, self.n_embd))
        self.n_vocab = emb.ne[1]
        self.tok_embd = dequantize(emb).astype(np.float64).reshape(self.n_vocab, self.n_embd)

        self.rope_freqs = opt_vec("rope_freqs.weight", self.rope_dim // 2)

        nq = self.n_head * self.head_dim
        nkv = self.n_head_kv * self.head_dim
        self.layers = []
        for L in range(self.n_layer):
            p = "blk.%d." % L
            self.layers.append({
                "attn_norm": vec(p + "attn_norm.weight", self.n_embd),
                "wq": lin(p + "attn_q.weight", self.n_embd, nq),
                "wk": lin(p + "attn_k.weight", self.n_embd, nkv),
                "wv": lin(p + "attn_v.weight", self.n_embd, nkv),
                "bq": opt_vec(p + "attn_q.bias", nq),
                "bk": opt_vec(p + "attn_k.bias", nkv),
                "bv": opt_vec(p + "attn_v.bias", nkv),
                "q_norm": opt_vec(p + "attn_q_norm.weight", self.head_dim),
                "k_norm": opt_vec(p + "attn_k_norm.weight", self.head_dim),
                "wo": lin(p + "attn_output.weight", nq, self.n_embd),
                "ffn_norm": vec(p + "ffn_norm.weight", self.n_embd),
                "w_gate": lin(p + "ffn_gate.weight", self.n_embd, self.n_ff),
                "w_up": lin(p + "ffn_up.weight", self.n_embd, self.n_ff),
                "w_down": lin(p + "ffn_down.weight", self.n_ff, self.n_embd),
            })
        self.output_norm = vec("output_norm.weight", self.n_embd)
        if "output.weight" in tensors:
            self.output = lin("output.weight", self.n_embd, self.n_vocab)
        else:
            self.output = Linear(emb, quant_act, self.actq)

        # rope inverse frequencies: base^(-2i/rope_dim) / f_i
        i = np.arange(self.rope_dim // 2, dtype=np.float64)
        inv = self.rope_base ** (-2.0 * i / self.rope_dim)
        if self.rope_freqs is not None:
            inv = inv / self.rope_freqs
        self.rope_inv = inv
        self.reset()

    def reset(self, flip=None):
        """Forgets every position; the next run rounds near tie `flip` the other way."""
        self.actq.__init__(flip)
        self.k_cache = [[] for _ in range(self.n_layer)]
        self.v_cache = [[] for _ in range(self.n_layer)]
        self.pos = 0

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x) + self.eps) * w

    def rope(self, x, pos):
        """x: (heads, head_dim), rotated in place of a copy."""
        x = x.copy()
        theta = pos * self.rope_inv
        c, s = np.cos(theta), np.sin(theta)
        n = self.rope_dim
        if self.rope_type == ROPE_NORM:
            x0 = x[:, 0:n:2].copy()
            x1 = x[:, 1:n:2].copy()
            x[:, 0:n:2] = x0 * c - x1 * s
            x[:, 1:n:2] = x0 * s + x1 * c
        else:
            h = n // 2
            x0 = x[:, 0:h].copy()
            x1 = x[:, h:n].copy()
            x[:, 0:h] = x0 * c - x1 * s
            x[:, h:n] = x0 * s + x1 * c
        return x

    def forward(self, token):
        """Feeds one token at the next position; returns that position's logits."""
        if not 0 <= token < self.n_vocab:
            raise ValueError("token %d out of range [0, %d)" % (token, self.n_vocab))
        pos = self.pos
        self.actq.pos = pos
        hd = self.head_dim
        group = self.n_head // self.n_head_kv
        x = self.tok_embd[token].copy()
        for L, ly in enumerate(self.layers):
            xn = self.rmsnorm(x, ly["attn_norm"])
            q = ly["wq"](xn)
            k = ly["wk"](xn)
            v = ly["wv"](xn)
            if ly["bq"] is not None:
                q = q + ly["bq"]
            if ly["bk"] is not None:
                k = k + ly["bk"]
            if ly["bv"] is not None:
                v = v + ly["bv"]
            q = q.reshape(self.n_head, hd)
            k = k.reshape(self.n_head_kv, hd)
            v = v.reshape(self.n_head_kv, hd)
            if ly["q_norm"] is not None:
                q = np.stack([self.rmsnorm(h, ly["q_norm"]) for h in q])
            if ly["k_norm"] is not None:
                k = np.stack([self.rmsnorm(h, ly["k_norm"]) for h in k])
            q = self.rope(q, pos)
            k = self.rope(k, pos)
            if self.kv == "f16":
                k = self.actq.round_f16(k, "layer %d key cache" % L)
                v = self.actq.round_f16(v, "layer %d value cache" % L)
            self.k_cache[L].append(k)
            self.v_cache[L].append(v)
            K = np.stack(self.k_cache[L])   # (pos+1, n_head_kv, hd)
            V = np.stack(self.v_cache[L])
            o = np.empty((self.n_head, hd))
            scale = 1.0 / math.sqrt(hd)
            for h in range(self.n_head):
                kh = h // group
                scores = K[:, kh, :] @ q[h] * scale
                scores = scores - scores.max()
                p = np.exp(scores)
                p = p / p.sum()
                o[h] = p @ V[:, kh, :]
            x = x + ly["wo"](o.reshape(-1))
            xn = self.rmsnorm(x, ly["ffn_norm"])
            g = ly["w_gate"](xn)
            u = ly["w_up"](xn)
            x = x + ly["w_down"](g / (1.0 + np.exp(-g)) * u)
        self.pos += 1
        return self.output(self.rmsnorm(x, self.output_norm))


# ---------------------------------------------------------------------------------------------

def parse_tokens(s):
    try:
        toks = [int(t) for t in s.split(",") if t.strip() != ""]
    except ValueError:
        raise SystemExit("ref_forward: --tokens wants comma-separated integers, got %r" % s)
    if not toks:
        raise SystemExit("ref_forward: --tokens is empty")
    return toks


def main(argv):
    ap = argparse.ArgumentParser(description="NumPy reference forward pass (test oracle)")
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", help="write the last position's logits here (float32 LE)")
    ap.add_argument("--generate", type=int, default=0, metavar="N",
                    help="then decode N tokens greedily and print them")
    ap.add_argument("--ties", type=int, default=0, metavar="N",
                    help="with --out: also write OUT.tie1..OUT.tieN, the logits with one of "
                         "the N nearest activation-rounding (or, with --kv f16, KV-rounding) "
                         "ties rounded the other way, "
                         "described one per line in OUT.ties")
    ap.add_argument("--no-quant-act", action="store_true",
                    help="do not quantize activations before Q8_0/Q4_0 matmuls")
    ap.add_argument("--kv", choices=("f16", "f32"), default="f32",
                    help="KV cache type: f16 rounds cached k and v to float16 (default f32)")
    ap.add_argument("--stats", action="store_true",
                    help="print activation-quantization tie margins to stderr")
    a = ap.parse_args(argv)
    if a.ties and (not a.out or a.generate):
        raise SystemExit("ref_forward: --ties needs --out and excludes --generate")

    toks = parse_tokens(a.tokens)
    try:
        m = Model(a.model, quant_act=not a.no_quant_act, kv=a.kv)
    except (GGUFError, OSError) as e:
        raise SystemExit("ref_forward: %s" % e)

    def run(flip=None):
        m.reset(flip)
        for t in toks:
            out = m.forward(t)
        return out

    logits = run()
    q = m.actq
    if a.stats:
        sys.stderr.write("quant-act: %d values, min relative tie margin %.3g, %d within %g\n"
                         % (q.count, q.min_margin, len(q.ties), q.NEAR))
    if a.out:
        with open(a.out, "wb") as f:
            f.write(logits.astype("<f4").tobytes())
    elif not a.generate:
        sys.stdout.write("".join("%.9g\n" % v for v in logits))
    if a.ties:
        ties = sorted(q.ties)[:a.ties]
        lines = []
        for k, (margin, call, i, v, where) in enumerate(ties, 1):
            alt = run((call, i))
            with open("%s.tie%d" % (a.out, k), "wb") as f:
                f.write(alt.astype("<f4").tobytes())
            value = "value" if "cache" in where else "x*id"
            lines.append("tie%d: %s, element %d: %s = %.9g (relative margin %.2g) rounded "
                         "the other way\n" % (k, where, i, value, v, margin))
        with open(a.out + ".ties", "w") as f:
            f.write("".join(lines))
    if a.generate:
        gen = []
        for _ in range(a.generate):
            nxt = int(np.argmax(logits))
            gen.append(nxt)
            logits = m.forward(nxt)
        print(" ".join(str(t) for t in gen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
