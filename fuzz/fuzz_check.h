#ifndef DSAR_FUZZ_FUZZ_CHECK_H_
#define DSAR_FUZZ_FUZZ_CHECK_H_

// FUZZ_CHECK(condition, message): a property every input must keep. When it
// breaks, the fuzzer aborts, so libFuzzer saves the input as a crash.

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(condition, message)                                     \
  do {                                                                     \
    if (!(condition)) {                                                    \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, \
                   __LINE__, #condition, std::string(message).c_str());    \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

#endif  // DSAR_FUZZ_FUZZ_CHECK_H_
