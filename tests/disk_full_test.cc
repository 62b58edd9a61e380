// Disk space as a resource (docs/operations.md "Disk space"): dsard on a
// small tmpfs refuses new requests with RESOURCE_EXHAUSTED while its disk is
// below the reserve, keeps answering reads, takes requests again by itself
// once space returns, and on a disk too full to open its database at all
// says so and exits with an error instead of crashing. Nothing acknowledged
// is lost. Needs the right to mount a tmpfs (root, as in CI); skipped
// otherwise.

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/disk_space.h"
#include "dsar/v1/requests.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dsar_cluster.h"
#include "tests/process_harness.h"

namespace dsar::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

class DiskFullTest : public ::testing::Test {
 protected:
  DiskFullTest() : dir_("dsar-disk-full") {}

  void SetUp() override {
    mount_ = dir_.Join("small");
    fs::create_directories(mount_);
    if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=64m,mode=0700") !=
        0) {
      GTEST_SKIP() << "cannot mount a tmpfs at " << mount_ << ": "
                   << std::strerror(errno) << " (needs root)";
    }
    mounted_ = true;
    absl::StatusOr<std::string> inventory =
        GenerateSampleStores(dir_.Join("stores"), 20);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    options_.data_dir = mount_ + "/data";
    options_.inventory = *inventory;
    options_.extra_args = {"--disk_reserve_mb=24"};
  }

  void TearDown() override {
    dsard_.process.reset();
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
  }

  void Start() {
    absl::StatusOr<RunningDsard> dsard = StartDsard(options_, dir_.path());
    ASSERT_TRUE(dsard.ok()) << dsard.status();
    dsard_ = std::move(*dsard);
    stub_ = v1::DsarService::NewStub(LoopbackChannel(dsard_.port));
  }

  grpc::Status Create(const std::string& key, v1::Request* created) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return stub_->CreateRequest(
        &context,
        RequestForEmail(v1::ACCESS, absl::StrCat(key, "@example.com"), key),
        created);
  }

  // Fills the tmpfs until `leave` bytes are free.
  void FillLeaving(uint64_t leave) {
    absl::StatusOr<uint64_t> free = FreeBytes(mount_);
    ASSERT_TRUE(free.ok()) << free.status();
    ASSERT_GT(*free, leave);
    std::ofstream filler(mount_ + "/filler", std::ios::binary | std::ios::app);
    std::string block(kMiB, 'x');
    for (uint64_t left = *free - leave; left > 0;) {
      const uint64_t n = std::min<uint64_t>(left, block.size());
      filler.write(block.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
    filler.close();
    ASSERT_TRUE(filler.good()) << "could not fill " << mount_;
  }

  TempDir dir_;
  std::string mount_;
  bool mounted_ = false;
  DsardOptions options_;
  RunningDsard dsard_;
  std::unique_ptr<v1::DsarService::Stub> stub_;
};

TEST_F(DiskFullTest, NewWorkRefusedBelowTheReserveReadsServedIntakeResumes) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::Request first;
  ASSERT_TRUE(Create("before", &first).ok());

  ASSERT_NO_FATAL_FAILURE(FillLeaving(12 * kMiB));
  v1::Request refused;
  grpc::Status status = Create("while-full", &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("below the reserve"));
  EXPECT_THAT(status.error_message(), HasSubstr(options_.data_dir));
  // Reads go on.
  {
    v1::GetRequestRequest get;
    get.set_id(first.id());
    v1::Request read;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->GetRequest(&context, get, &read).ok());
    EXPECT_EQ(read.id(), first.id());
  }

  // Space returns: intake resumes with no restart.
  fs::remove(mount_ + "/filler");
  v1::Request after;
  status = Create("after", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // A disk too full to open the database: a clear message and an exit
  // code, not a crash; then a start with space finds everything acknowledged.
  ASSERT_EQ(dsard_.process->Terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(FillLeaving(4 * kMiB));
  const std::string log = dir_.Join("full-start.log");
  absl::StatusOr<int> code = RunToExit(
      DsardPath(),
      {absl::StrCat("--data_dir=", options_.data_dir),
       absl::StrCat("--inventory=", options_.inventory), "--listen=127.0.0.1:0",
       absl::StrCat("--port_file=", dir_.Join("unused.port"))},
      log, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0) << ReadFileOrEmpty(log);
  EXPECT_LT(*code, 128) << "killed by a signal: " << ReadFileOrEmpty(log);
  EXPECT_THAT(ReadFileOrEmpty(log), HasSubstr("cannot start"));

  fs::remove(mount_ + "/filler");
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const v1::Request& acknowledged : {first, after}) {
    v1::GetRequestRequest get;
    get.set_id(acknowledged.id());
    v1::Request read;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->GetRequest(&context, get, &read).ok())
        << acknowledged.id();
  }
}

}  // namespace
}  // namespace dsar::testing
