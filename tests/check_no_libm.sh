#!/bin/sh
# The engine must not call libm (its results differ between versions and machines, which
# would break bit-exact inference): list the undefined symbols of the engine library and fail
# on any libm function.
set -u
lib=$1
bad=$(nm -u "$lib" 2>/dev/null | awk '{print $2}' | grep -E '^(exp|expf|exp2|exp2f|expm1|expm1f|log|logf|log2|log2f|log10|log10f|log1p|pow|powf|sin|sinf|cos|cosf|tan|tanf|tanh|tanhf|sqrt|sqrtf|erf|erff|fma|fmaf|sincos|sincosf|atan|atan2|atanf|cbrt|hypot|round|roundf|lround|lroundf|floor|floorf|ceil|ceilf|rint|rintf|nearbyint|nearbyintf|trunc|truncf|fmod|fmodf|ldexp|ldexpf|frexp|frexpf|modf|modff)(@.*)?$' | sort -u)
n=0
if [ -n "$bad" ]; then
	echo "engine library calls libm:"
	echo "$bad"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
