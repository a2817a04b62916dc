/* mathx.h — the engine's own elementary functions. The engine links no libm: libm results
 * differ between versions and machines, and bit-exact inference needs the same bits
 * everywhere. Each function is a fixed sequence of IEEE operations (no FMA), accurate to a
 * few ulp (tests/test_mathx.c measures the error against libm), and the float ones are
 * written so a SIMD twin can repeat them lane by lane.
 */
#ifndef MU_BASE_MATHX_H
#define MU_BASE_MATHX_H

float mu_expf(float x);            /* e^x; 0 below ~-103.97, +inf above ~88.72; nan -> nan */
float mu_siluf(float x);           /* x / (1 + e^-x) */
float mu_sqrtf(float x);           /* correctly rounded (the hardware instruction) */
double mu_sqrt(double x);
double mu_exp(double x);
double mu_log(double x);           /* x > 0 */
double mu_pow(double x, double y); /* x > 0 */
double mu_sin(double x);           /* accurate for |x| <= 2^20 */
double mu_cos(double x);
float mu_fabsf(float x);

#endif
