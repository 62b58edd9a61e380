#ifndef DSAR_TESTS_ZIP_ENTRIES_H_
#define DSAR_TESTS_ZIP_ENTRIES_H_

// Reads a bundle ZIP back for integration tests.

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace dsar::testing {

// Every entry of the ZIP at `path`, read into memory: name -> contents.
// NOT_FOUND when it cannot be opened, DATA_LOSS on a short read.
absl::StatusOr<std::map<std::string, std::string>> ReadZip(
    const std::string& path);

// The same for a ZIP held in memory (a downloaded bundle). DATA_LOSS when
// `bytes` is not a ZIP or an entry is short. `bytes` must outlive the call.
absl::StatusOr<std::map<std::string, std::string>> ReadZipBytes(
    const std::string& bytes);

}  // namespace dsar::testing

#endif  // DSAR_TESTS_ZIP_ENTRIES_H_
