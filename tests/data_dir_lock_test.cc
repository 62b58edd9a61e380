// A dsard started on a data directory another dsard still holds (a second
// instance, or a restart while the old process lingers) must stop with a
// one-line error naming the directory and the holder, not crash: RocksDB's
// LOCK file refuses the second open, and that failure used to end in a
// segfault (exit 139) in the half-built StateStore's destructor.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

using ::testing::HasSubstr;

TEST(DataDirLockTest, SecondDsardOnTheSameDataDirExitsWithAnErrorNamingIt) {
  TempDir dir("data_dir_lock_test");
  absl::StatusOr<std::string> inventory =
      GenerateSampleStores(dir.Join("stores"), 5);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  DsardOptions options;
  options.data_dir = dir.Join("data");
  options.inventory = *inventory;
  absl::StatusOr<RunningDsard> first = StartDsard(options, dir.path());
  ASSERT_TRUE(first.ok()) << first.status();

  const std::string log = dir.Join("second.log");
  absl::StatusOr<int> exit_code = RunToExit(
      DsardPath(),
      // A witness outside the data directory, so the one line on stderr is
      // the lock error and not the missing-witness warning.
      {"--listen=127.0.0.1:0", absl::StrCat("--data_dir=", options.data_dir),
       absl::StrCat("--inventory=", options.inventory),
       absl::StrCat("--checkpoint_witness=", dir.Join("witness"))},
      log, absl::Seconds(60));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  const std::string output = ReadFileOrEmpty(log);
  EXPECT_GT(*exit_code, 0) << output;
  EXPECT_LT(*exit_code, 128) << "ended by signal " << *exit_code - 128 << ":\n"
                             << output;
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
  EXPECT_THAT(output, HasSubstr(options.data_dir));
  EXPECT_THAT(output,
              HasSubstr(absl::StrCat("process ", first->process->pid())));

  // The first dsard is undisturbed.
  EXPECT_TRUE(first->process->Running());
  EXPECT_TRUE(
      WaitForGrpcReady(LoopbackChannel(first->port), absl::Seconds(10)).ok());
}

}  // namespace
}  // namespace dsar::testing
