#include <stdio.h>
int main(void) { puts("mu: under construction"); return 0; }
