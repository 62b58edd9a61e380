#include "storage/encrypted_zip.h"

#include <unistd.h>
#include <zip.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/encrypted_file.h"

namespace dsar {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kKey(kEncryptedFileKeyBytes, 'z');

// Text that deflates, but not to nothing.
std::string Text(size_t n) {
  std::string out;
  uint32_t x = 12345;
  while (out.size() < n) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out += std::to_string(x % 100000) + ",";
  }
  out.resize(n);
  return out;
}

std::string ReadRaw(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string ReadEntry(zip_t* archive, const std::string& name) {
  zip_file_t* file = zip_fopen(archive, name.c_str(), 0);
  EXPECT_NE(file, nullptr) << name << ": " << zip_strerror(archive);
  if (file == nullptr) return "";
  std::string out;
  char buffer[8192];
  zip_int64_t n;
  while ((n = zip_fread(file, buffer, sizeof(buffer))) > 0) {
    out.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(n, 0) << "read error in " << name;
  zip_fclose(file);
  return out;
}

class EncryptedZipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("encrypted_zip_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const {
    return (dir_ / name).string();
  }

  std::string WriteEncrypted(const std::string& name,
                             const std::string& plaintext,
                             const std::string& context) {
    std::string path = Path(name);
    auto writer = EncryptedFileWriter::Create(path, kKey, context);
    EXPECT_TRUE(writer.ok()) << writer.status();
    EXPECT_TRUE((*writer)->Append(plaintext).ok());
    EXPECT_TRUE((*writer)->Commit().ok());
    return path;
  }

  // Adds `source` as `name`, deflated.
  static void Add(zip_t* archive, const std::string& name,
                  zip_source_t* source) {
    ASSERT_NE(source, nullptr);
    zip_int64_t index = zip_file_add(archive, name.c_str(), source, 0);
    ASSERT_GE(index, 0) << zip_strerror(archive);
    ASSERT_EQ(zip_set_file_compression(archive, index, ZIP_CM_DEFLATE, 0), 0);
  }

  std::vector<std::string> Listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

TEST_F(EncryptedZipTest, WritesAndReadsBackAnEncryptedZip) {
  const std::string small = "{\"email\":\"alice@example.com\"}";
  // Several chunks: libzip's rewrite of the local header lands in a chunk
  // that is already sealed on disk.
  const std::string big = Text(5 * kEncryptedFileChunkBytes + 321);
  std::string export_path = WriteEncrypted("export.enc", big, "export:r1");

  auto writer = EncryptedZipWriter::Create(Path("out.zip"), kKey, "bundle:r1");
  ASSERT_TRUE(writer.ok()) << writer.status();
  zip_t* archive = (*writer)->archive();
  Add(archive, "small.json",
      zip_source_buffer(archive, small.data(), small.size(), 0));
  absl::StatusOr<zip_source_t*> source =
      (*writer)->NewFileSource(export_path, kKey, "export:r1");
  ASSERT_TRUE(source.ok()) << source.status();
  Add(archive, "data/big.json", *source);
  Add(archive, "after.txt", zip_source_buffer(archive, "end", 3, 0));
  absl::StatusOr<ZipDigest> digest = (*writer)->Commit();
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ((*writer)->archive(), nullptr);
  EXPECT_THAT(Listing(), ElementsAre("export.enc", "out.zip"));
  EXPECT_EQ(fs::status(Path("out.zip")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(ReadRaw(Path("out.zip")).find("alice@example.com"),
            std::string::npos);

  // The digest is the plaintext ZIP's.
  auto reader = EncryptedFileReader::Open(Path("out.zip"), kKey, "bundle:r1");
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::string plain_zip((*reader)->size(), '\0');
  ASSERT_EQ(*(*reader)->ReadAt(0, plain_zip.data(), plain_zip.size()),
            plain_zip.size());
  EXPECT_EQ(digest->size_bytes, static_cast<int64_t>(plain_zip.size()));
  EXPECT_EQ(digest->sha256, Sha256Hex(plain_zip));
  EXPECT_LT(plain_zip.size(), big.size());  // Deflated.

  absl::StatusOr<ZipArchive> opened =
      OpenEncryptedZip(Path("out.zip"), kKey, "bundle:r1");
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ(zip_get_num_entries(opened->get(), 0), 3);
  EXPECT_EQ(ReadEntry(opened->get(), "small.json"), small);
  EXPECT_TRUE(ReadEntry(opened->get(), "data/big.json") == big);
  EXPECT_EQ(ReadEntry(opened->get(), "after.txt"), "end");
}

TEST_F(EncryptedZipTest, OpenWithAnotherContextOrMissingFails) {
  auto writer = EncryptedZipWriter::Create(Path("out.zip"), kKey, "bundle:r1");
  ASSERT_TRUE(writer.ok());
  Add((*writer)->archive(), "a.txt",
      zip_source_buffer((*writer)->archive(), "a", 1, 0));
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(
      OpenEncryptedZip(Path("out.zip"), kKey, "bundle:r2").status().code(),
      absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      OpenEncryptedZip(Path("gone.zip"), kKey, "bundle:r1").status().code(),
      absl::StatusCode::kNotFound);
  // Encrypted, but not a ZIP inside.
  WriteEncrypted("notzip.enc", "just text", "bundle:r1");
  absl::StatusOr<ZipArchive> notzip =
      OpenEncryptedZip(Path("notzip.enc"), kKey, "bundle:r1");
  EXPECT_EQ(notzip.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(notzip.status().message(), HasSubstr("notzip.enc"));
}

TEST_F(EncryptedZipTest, EntryAlteredBeforeCommitFailsWithItsReason) {
  std::string export_path =
      WriteEncrypted("export.enc", Text(3 * kEncryptedFileChunkBytes), "e");
  // Opening with the wrong context fails at once.
  auto writer = EncryptedZipWriter::Create(Path("out.zip"), kKey, "b");
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->NewFileSource(export_path, kKey, "x").status().code(),
            absl::StatusCode::kDataLoss);
  absl::StatusOr<zip_source_t*> source =
      (*writer)->NewFileSource(export_path, kKey, "e");
  ASSERT_TRUE(source.ok());
  Add((*writer)->archive(), "data/x.json", *source);
  // Then chunk 0 is altered on disk before libzip reads it.
  std::string raw = ReadRaw(export_path);
  raw[28 + 12 + 5] ^= 1;
  std::ofstream(export_path, std::ios::binary | std::ios::trunc) << raw;

  absl::StatusOr<ZipDigest> digest = (*writer)->Commit();
  EXPECT_EQ(digest.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(digest.status().message(), HasSubstr(export_path));
  EXPECT_THAT(digest.status().message(), HasSubstr("chunk 0"));
  writer->reset();
  EXPECT_THAT(Listing(), ElementsAre("export.enc"));  // No bundle, no temp.
}

TEST_F(EncryptedZipTest, DiscardedWriterLeavesNothing) {
  {
    auto writer = EncryptedZipWriter::Create(Path("out.zip"), kKey, "b");
    ASSERT_TRUE(writer.ok());
    Add((*writer)->archive(), "a.txt",
        zip_source_buffer((*writer)->archive(), "a", 1, 0));
  }
  EXPECT_TRUE(Listing().empty());
}

}  // namespace
}  // namespace dsar
