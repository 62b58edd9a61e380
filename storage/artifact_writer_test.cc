#include "storage/artifact_writer.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "common/files.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/encrypted_file.h"

namespace dsar {
namespace {

namespace fs = std::filesystem;

const std::string kDataKey(kEncryptedFileKeyBytes, 'a');

class ArtifactWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("artifact_writer_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

TEST_F(ArtifactWriterTest, ExportIsEncryptedAndItsDigestIsOfThePlaintext) {
  const std::string path = (dir_ / "req-1" / "0-0-a1.json").string();
  const std::string part1 = R"({"store":"crm","records":[{"collection":"u",)";
  const std::string part2 = R"("data":{"email":"alice@example.com"}}]})";
  absl::StatusOr<std::unique_ptr<ArtifactWriter>> writer =
      ArtifactWriter::Create(path, kDataKey, ExportFileContext("req-1"));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(part1).ok());
  ASSERT_TRUE((*writer)->Append(part2).ok());
  absl::StatusOr<ArtifactInfo> info = (*writer)->Commit();
  ASSERT_TRUE(info.ok()) << info.status();

  const std::string plaintext = part1 + part2;
  EXPECT_EQ(info->sha256, Sha256Hex(plaintext));
  EXPECT_EQ(info->size_bytes, static_cast<int64_t>(plaintext.size()));
  EXPECT_EQ(*ReadFile(ArtifactDigestPath(path)), info->sha256);

  std::ifstream in(path, std::ios::binary);
  std::string raw(std::istreambuf_iterator<char>(in), {});
  EXPECT_EQ(raw.find("alice@example.com"), std::string::npos);
  EXPECT_EQ(fs::status(dir_ / "req-1").permissions() & fs::perms::all,
            fs::perms::owner_all);
  absl::StatusOr<std::string> decrypted =
      EncryptedFileSha256Hex(path, kDataKey, ExportFileContext("req-1"));
  ASSERT_TRUE(decrypted.ok()) << decrypted.status();
  EXPECT_EQ(*decrypted, info->sha256);
  // Bound to its request.
  EXPECT_EQ(EncryptedFileSha256Hex(path, kDataKey, ExportFileContext("req-2"))
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(ArtifactWriterTest, AbandonedUploadLeavesNothing) {
  const std::string path = (dir_ / "0-0-a1.json").string();
  {
    absl::StatusOr<std::unique_ptr<ArtifactWriter>> writer =
        ArtifactWriter::Create(path, kDataKey, ExportFileContext("req-1"));
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append("partial").ok());
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(ArtifactWriterTest, RejectsAKeyOfTheWrongSize) {
  EXPECT_EQ(ArtifactWriter::Create((dir_ / "x.json").string(), "short",
                                   ExportFileContext("req-1"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsar
