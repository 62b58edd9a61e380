#include "tests/testing/jsonl_records.h"

#include <fstream>
#include <utility>

#include "gtest/gtest.h"

namespace dsar::testing {

std::vector<nlohmann::json> ReadJsonlRecords(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object()) {
      ADD_FAILURE() << path << ": bad line " << line;
      continue;
    }
    if (record.empty()) continue;  // Erased.
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace dsar::testing
