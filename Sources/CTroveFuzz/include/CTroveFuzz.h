#ifndef CTROVEFUZZ_H
#define CTROVEFUZZ_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (LLVM 11 and later), present only in binaries linked with -sanitize=fuzzer. SwiftPM
/// renames an executable's main, so libFuzzer's own main is never linked: trove-fuzz's main calls this instead.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
