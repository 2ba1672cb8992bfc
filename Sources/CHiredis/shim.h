// hiredis, as TroveRedis sees it. Only the reader API and the *Argv functions are used, and none of them is
// variadic, so no wrapper is needed: this header only gathers the includes.
#ifndef TROVE_CHIREDIS_SHIM_H
#define TROVE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
