#ifndef DSAR_TESTS_TESTING_JSONL_RECORDS_H_
#define DSAR_TESTS_TESTING_JSONL_RECORDS_H_

// Test-only: the records a JSON-lines store holds, read the way a test
// checks what an erasure left.

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace dsar::testing {

// The records of the JSON-lines log at `path`: its lines that are JSON
// objects with at least one member. Empty lines and the empty objects an
// erasure leaves in place of a line (workers/connectors/jsonl.h) are not
// records; any other line is a test failure naming it.
std::vector<nlohmann::json> ReadJsonlRecords(const std::string& path);

}  // namespace dsar::testing

#endif  // DSAR_TESTS_TESTING_JSONL_RECORDS_H_
