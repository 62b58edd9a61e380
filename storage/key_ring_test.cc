#include "storage/key_ring.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FileKeyRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::path(::testing::TempDir()) /
            ("key_ring_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<FileKeyRing> OpenRing() {
    absl::StatusOr<std::unique_ptr<FileKeyRing>> ring = FileKeyRing::Open(dir_);
    EXPECT_TRUE(ring.ok()) << ring.status();
    return ring.ok() ? std::move(*ring) : nullptr;
  }

  std::string dir_;
};

TEST_F(FileKeyRingTest, WrapsAndUnwrapsForTheSameOwnerOnly) {
  std::unique_ptr<FileKeyRing> ring = OpenRing();
  const std::string data_key(32, 'k');
  absl::StatusOr<WrappedKey> wrapped = ring->Wrap(data_key, "dsr_1");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ(wrapped->kek_id, "1");
  EXPECT_EQ(wrapped->wrapped.find(data_key), std::string::npos);
  EXPECT_EQ(*ring->Unwrap(*wrapped, "dsr_1"), data_key);
  EXPECT_EQ(ring->Unwrap(*wrapped, "dsr_2").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(FileKeyRingTest, KeysAreOwnerOnlyFiles) {
  OpenRing();
  struct stat dir_info, key_info;
  ASSERT_EQ(::stat(dir_.c_str(), &dir_info), 0);
  ASSERT_EQ(::stat((dir_ + "/kek-1.key").c_str(), &key_info), 0);
  EXPECT_EQ(dir_info.st_mode & 0777, 0700);
  EXPECT_EQ(key_info.st_mode & 0777, 0600);
}

// After rotation new keys are wrapped under the new KEK and keys wrapped
// before still unwrap, also after reopening the ring.
TEST_F(FileKeyRingTest, RotationKeepsOldKeysReadable) {
  std::unique_ptr<FileKeyRing> ring = OpenRing();
  const std::string data_key(32, 'a');
  WrappedKey before = *ring->Wrap(data_key, "dsr_1");
  ASSERT_EQ(*ring->Rotate(), "2");
  WrappedKey after = *ring->Wrap(data_key, "dsr_1");
  EXPECT_EQ(after.kek_id, "2");
  ring = OpenRing();
  EXPECT_EQ(ring->ActiveKeyId(), "2");
  EXPECT_EQ(*ring->Unwrap(before, "dsr_1"), data_key);
  EXPECT_EQ(*ring->Unwrap(after, "dsr_1"), data_key);
}

TEST_F(FileKeyRingTest, UnknownKekIsNotFoundNamingIt) {
  std::unique_ptr<FileKeyRing> ring = OpenRing();
  WrappedKey wrapped = *ring->Wrap(std::string(32, 'a'), "dsr_1");
  wrapped.kek_id = "7";
  absl::Status status = ring->Unwrap(wrapped, "dsr_1").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("key-encryption key 7"));
}

// A damaged ring is refused, never replaced by a fresh key (that would lose
// every data key wrapped under the old one).
TEST_F(FileKeyRingTest, DamagedRingIsRefusedNotReplaced) {
  OpenRing();
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/kek-1.key", "not hex").ok());
  absl::StatusOr<std::unique_ptr<FileKeyRing>> ring = FileKeyRing::Open(dir_);
  EXPECT_EQ(ring.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ring.status().message(), HasSubstr("kek-1.key"));
  EXPECT_EQ(*ReadFile(dir_ + "/kek-1.key"), "not hex");
}

TEST_F(FileKeyRingTest, ActiveNamingAMissingKeyIsRefused) {
  OpenRing();
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/ACTIVE", "3\n").ok());
  EXPECT_EQ(FileKeyRing::Open(dir_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dsar
