/* ckd.h — checked integer arithmetic for every size or offset derived from input.
 * Each macro stores the (possibly wrapped) result in *r and evaluates to true on overflow,
 * like C23's <stdckdint.h>. */
#ifndef MU_BASE_CKD_H
#define MU_BASE_CKD_H

#define ckd_add(r, a, b) __builtin_add_overflow((a), (b), (r))
#define ckd_sub(r, a, b) __builtin_sub_overflow((a), (b), (r))
#define ckd_mul(r, a, b) __builtin_mul_overflow((a), (b), (r))

#endif
