#include "storage/encrypted_file.h"

#include <sys/stat.h>
#include <unistd.h>

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

namespace dsar {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr size_t kChunk = kEncryptedFileChunkBytes;
// Header, then nonce | ciphertext | tag per chunk.
constexpr size_t kHeader = 28;
constexpr size_t kStride = kChunk + 28;

std::string Key(char fill = 'k') {
  return std::string(kEncryptedFileKeyBytes, fill);
}

// Deterministic bytes that differ at every offset.
std::string Pattern(size_t n, uint32_t seed = 1) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<char>(x);
  }
  return out;
}

std::string ReadRaw(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteRaw(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

class EncryptedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("encrypted_file_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name = "file.enc") const {
    return (dir_ / name).string();
  }

  // Writes `plaintext` in pieces of `piece` bytes and commits it.
  void WriteFile(const std::string& path, const std::string& plaintext,
                 size_t piece = 1000, const std::string& context = "ctx") {
    absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> writer =
        EncryptedFileWriter::Create(path, Key(), context);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (size_t at = 0; at < plaintext.size(); at += piece) {
      ASSERT_TRUE((*writer)->Append(plaintext.substr(at, piece)).ok());
    }
    EXPECT_EQ((*writer)->size(), static_cast<int64_t>(plaintext.size()));
    ASSERT_TRUE((*writer)->Commit().ok());
  }

  // The whole plaintext, read in pieces of `piece` bytes.
  absl::StatusOr<std::string> ReadFile(const std::string& path,
                                       size_t piece = 777,
                                       const std::string& key = Key(),
                                       const std::string& context = "ctx") {
    absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
        EncryptedFileReader::Open(path, key, context);
    if (!reader.ok()) return reader.status();
    std::string out;
    std::vector<char> buffer(piece);
    for (int64_t offset = 0;;) {
      absl::StatusOr<size_t> n =
          (*reader)->ReadAt(offset, buffer.data(), buffer.size());
      if (!n.ok()) return n.status();
      if (*n == 0) break;
      out.append(buffer.data(), *n);
      offset += static_cast<int64_t>(*n);
    }
    if (static_cast<int64_t>(out.size()) != (*reader)->size()) {
      return absl::InternalError("size() differs from what was read");
    }
    return out;
  }

  std::vector<std::string> Listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  fs::path dir_;
};

TEST_F(EncryptedFileTest, RoundTripsEverySizeAroundChunkBoundaries) {
  const std::vector<size_t> sizes = {
      0, 1, kChunk - 1, kChunk, kChunk + 1, 5 * kChunk, 5 * kChunk + 12345};
  for (size_t size : sizes) {
    std::string plaintext = Pattern(size, static_cast<uint32_t>(size));
    WriteFile(Path(), plaintext);
    // Chunks: floor(size / C) full ones and a short (maybe empty) final one.
    EXPECT_EQ(fs::file_size(Path()), kHeader + (size / kChunk + 1) * 28 + size)
        << size;
    for (size_t piece : {size_t{1} << 20, kChunk, size_t{777}}) {
      absl::StatusOr<std::string> read = ReadFile(Path(), piece);
      ASSERT_TRUE(read.ok()) << size << ": " << read.status();
      EXPECT_TRUE(*read == plaintext) << size << " in pieces of " << piece;
    }
  }
}

TEST_F(EncryptedFileTest, LargeAppendsAndOneByteAppendsGiveTheSameFile) {
  std::string plaintext = Pattern(3 * kChunk + 99);
  WriteFile(Path("big.enc"), plaintext, plaintext.size());
  WriteFile(Path("small.enc"), plaintext, 1);
  EXPECT_EQ(*ReadFile(Path("big.enc")), plaintext);
  EXPECT_EQ(*ReadFile(Path("small.enc")), plaintext);
}

TEST_F(EncryptedFileTest, NoPlaintextOnDisk) {
  std::string secret = "alice@example.com";
  std::string plaintext;
  while (plaintext.size() < 3 * kChunk) plaintext += secret + ",";
  WriteFile(Path(), plaintext);
  EXPECT_EQ(ReadRaw(Path()).find(secret), std::string::npos);
  EXPECT_EQ(ReadRaw(Path()).substr(0, 8), "DSARENC1");
}

TEST_F(EncryptedFileTest, ReadsAtAnyOffset) {
  std::string plaintext = Pattern(4 * kChunk + 500);
  WriteFile(Path(), plaintext);
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
      EncryptedFileReader::Open(Path(), Key(), "ctx");
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->size(), static_cast<int64_t>(plaintext.size()));
  std::vector<char> buffer(3 * kChunk);
  for (int64_t offset : {int64_t{0}, int64_t{kChunk - 3}, int64_t{4 * kChunk},
                         int64_t{2 * kChunk + 1}, int64_t{7}}) {
    absl::StatusOr<size_t> n =
        (*reader)->ReadAt(offset, buffer.data(), buffer.size());
    ASSERT_TRUE(n.ok()) << n.status();
    size_t expected =
        std::min(buffer.size(), plaintext.size() - static_cast<size_t>(offset));
    ASSERT_EQ(*n, expected) << offset;
    EXPECT_TRUE(std::string(buffer.data(), *n) ==
                plaintext.substr(static_cast<size_t>(offset), expected))
        << offset;
  }
  // At and past the end: nothing.
  EXPECT_EQ(*(*reader)->ReadAt(static_cast<int64_t>(plaintext.size()),
                               buffer.data(), 10),
            0u);
  EXPECT_EQ(*(*reader)->ReadAt(1 << 30, buffer.data(), 10), 0u);
  EXPECT_EQ((*reader)->ReadAt(-1, buffer.data(), 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EncryptedFileTest, WriteAtPatchesEarlierChunksAcrossBoundaries) {
  std::string plaintext = Pattern(3 * kChunk + 100);
  absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> writer =
      EncryptedFileWriter::Create(Path(), Key(), "ctx");
  ASSERT_TRUE(writer.ok()) << writer.status();
  EncryptedFileWriter& file = **writer;
  ASSERT_TRUE(file.Append(plaintext).ok());

  auto patch = [&](int64_t offset, const std::string& bytes) {
    ASSERT_TRUE(file.WriteAt(offset, bytes).ok()) << offset;
    if (plaintext.size() < offset + bytes.size()) {
      plaintext.resize(offset + bytes.size());
    }
    plaintext.replace(static_cast<size_t>(offset), bytes.size(), bytes);
  };
  patch(10, "local header, rewritten");            // Inside chunk 0.
  patch(kChunk - 5, "across the first boundary");  // Chunks 0 and 1.
  patch(kChunk, Pattern(kChunk, 9));               // All of chunk 1.
  patch(2 * kChunk - 1, Pattern(kChunk + 10, 7));  // 1, 2 and the tail.
  patch(3 * kChunk + 50, "tail and beyond the end: " + Pattern(kChunk, 3));
  patch(static_cast<int64_t>(plaintext.size()), "at the end");
  EXPECT_EQ(file.size(), static_cast<int64_t>(plaintext.size()));

  // The writer reads back what it holds, sealed or not.
  std::string seen(plaintext.size(), '\0');
  absl::StatusOr<size_t> n = file.ReadAt(0, seen.data(), seen.size());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, plaintext.size());
  EXPECT_TRUE(seen == plaintext);

  EXPECT_EQ(file.WriteAt(file.size() + 1, "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.WriteAt(-1, "x").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(file.Commit().ok());
  EXPECT_EQ(file.Commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(file.Append("x").code(), absl::StatusCode::kFailedPrecondition);

  absl::StatusOr<std::string> read = ReadFile(Path());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read == plaintext);
}

TEST_F(EncryptedFileTest, RewrittenChunkGetsAFreshNonce) {
  std::string plaintext = Pattern(2 * kChunk);
  absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> writer =
      EncryptedFileWriter::Create(Path(), Key(), "ctx");
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(plaintext).ok());  // Both chunks sealed.
  ASSERT_EQ(Listing().size(), 1u);
  fs::path temp = dir_ / Listing()[0];
  std::string before = ReadRaw(temp).substr(kHeader, kStride);
  // The same bytes again: same plaintext, new nonce, new ciphertext.
  ASSERT_TRUE((*writer)->WriteAt(0, plaintext.substr(0, 10)).ok());
  std::string after = ReadRaw(temp).substr(kHeader, kStride);
  EXPECT_NE(before.substr(0, 12), after.substr(0, 12));
  EXPECT_NE(before.substr(12, 100), after.substr(12, 100));
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_TRUE(*ReadFile(Path()) == plaintext);
}

TEST_F(EncryptedFileTest, WrongKeyOrContextIsDataLossNamingThePath) {
  WriteFile(Path(), Pattern(2 * kChunk + 5));
  for (const auto& [key, context] :
       std::vector<std::pair<std::string, std::string>>{
           {Key('x'), "ctx"}, {Key(), "other"}, {Key(), "ct"}}) {
    absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
        EncryptedFileReader::Open(Path(), key, context);
    EXPECT_EQ(reader.status().code(), absl::StatusCode::kDataLoss) << context;
    EXPECT_THAT(reader.status().message(), HasSubstr(Path()));
  }
  EXPECT_EQ(EncryptedFileReader::Open(Path(), "short", "ctx").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      EncryptedFileWriter::Create(Path("x"), "short", "ctx").status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(EncryptedFileTest, MissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
      EncryptedFileReader::Open(Path("gone"), Key(), "ctx");
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr(Path("gone")));
}

TEST_F(EncryptedFileTest, AlteredByteIsDataLossWhenItsChunkIsRead) {
  std::string plaintext = Pattern(3 * kChunk + 10);
  WriteFile(Path(), plaintext);
  std::string raw = ReadRaw(Path());
  // A byte of chunk 1's ciphertext.
  raw[kHeader + kStride + 12 + 100] ^= 1;
  WriteRaw(Path(), raw);
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
      EncryptedFileReader::Open(Path(), Key(), "ctx");
  ASSERT_TRUE(reader.ok()) << reader.status();  // The last chunk is intact.
  std::vector<char> buffer(kChunk);
  EXPECT_TRUE((*reader)->ReadAt(0, buffer.data(), buffer.size()).ok());
  absl::StatusOr<size_t> bad =
      (*reader)->ReadAt(kChunk + 1, buffer.data(), buffer.size());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr("chunk 1"));
  // Straight into the caller's buffer: nothing unauthenticated is left.
  std::vector<char> whole(kChunk, 'z');
  bad = (*reader)->ReadAt(kChunk, whole.data(), whole.size());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(std::string(whole.data(), whole.size()), std::string(kChunk, 0));

  // The header is in every chunk's associated data.
  raw = ReadRaw(Path());
  raw[kHeader + kStride + 12 + 100] ^= 1;  // Repaired.
  raw[20] ^= 1;                            // File id.
  WriteRaw(Path(), raw);
  EXPECT_EQ(ReadFile(Path()).status().code(), absl::StatusCode::kDataLoss);
  raw[20] ^= 1;
  raw[0] = 'X';  // Magic.
  WriteRaw(Path(), raw);
  EXPECT_EQ(ReadFile(Path()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(EncryptedFileTest, TruncationIsDataLoss) {
  std::string plaintext = Pattern(3 * kChunk + 10);
  WriteFile(Path(), plaintext);
  std::string raw = ReadRaw(Path());
  // At a chunk boundary: the new last chunk lacks the final flag.
  for (size_t chunks : {1, 2, 3}) {
    WriteRaw(Path(), raw.substr(0, kHeader + chunks * kStride));
    absl::StatusOr<std::string> read = ReadFile(Path());
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << chunks;
    EXPECT_THAT(read.status().message(), HasSubstr(Path()));
  }
  // Inside a chunk, inside the header, nothing at all.
  for (size_t keep : {kHeader + kStride + 500, kHeader + 40, size_t{10},
                      size_t{0}, raw.size() - 1}) {
    WriteRaw(Path(), raw.substr(0, keep));
    EXPECT_EQ(ReadFile(Path()).status().code(), absl::StatusCode::kDataLoss)
        << keep;
  }
  // A file exactly k*C long ends with an empty final chunk; without it the
  // file is detected as cut.
  WriteFile(Path(), Pattern(2 * kChunk));
  raw = ReadRaw(Path());
  ASSERT_EQ(raw.size(), kHeader + 2 * kStride + 28);
  WriteRaw(Path(), raw.substr(0, kHeader + 2 * kStride));
  EXPECT_EQ(ReadFile(Path()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(EncryptedFileTest, SwappedOrMovedChunksAreDataLoss) {
  std::string plaintext = Pattern(3 * kChunk + 10);
  WriteFile(Path(), plaintext);
  std::string raw = ReadRaw(Path());
  std::string swapped = raw;
  swapped.replace(kHeader, kStride, raw.substr(kHeader + kStride, kStride));
  swapped.replace(kHeader + kStride, kStride, raw.substr(kHeader, kStride));
  WriteRaw(Path(), swapped);
  EXPECT_EQ(ReadFile(Path()).status().code(), absl::StatusCode::kDataLoss);

  // Chunk 0 of another file under the same key and context.
  WriteFile(Path("other.enc"), Pattern(3 * kChunk + 10, 5));
  std::string other = ReadRaw(Path("other.enc"));
  std::string moved = raw;
  moved.replace(kHeader, kStride, other.substr(kHeader, kStride));
  WriteRaw(Path(), moved);
  EXPECT_EQ(ReadFile(Path()).status().code(), absl::StatusCode::kDataLoss);

  // The whole file is fine under its own name: paths are not bound.
  WriteRaw(Path("renamed.enc"), raw);
  EXPECT_TRUE(ReadFile(Path("renamed.enc")).ok());
}

TEST_F(EncryptedFileTest, ModeIs0600UnderAnyUmaskAndNoTempIsLeft) {
  mode_t old_umask = ::umask(0);
  std::string path = (dir_ / "new" / "parent" / "file.enc").string();
  {
    absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> writer =
        EncryptedFileWriter::Create(path, Key(), "ctx");
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append("abc").ok());
    ASSERT_TRUE((*writer)->Commit().ok());
  }
  ::umask(old_umask);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(fs::status(dir_ / "new").permissions() & fs::perms::all,
            fs::perms::owner_all);
  EXPECT_EQ(fs::status(dir_ / "new" / "parent").permissions() & fs::perms::all,
            fs::perms::owner_all);
  EXPECT_THAT(Listing(), ElementsAre("new"));
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_ / "new" / "parent")) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(names, ElementsAre("file.enc"));
}

TEST_F(EncryptedFileTest, DestructionWithoutCommitLeavesNothing) {
  {
    absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> writer =
        EncryptedFileWriter::Create(Path(), Key(), "ctx");
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(Pattern(2 * kChunk)).ok());
    EXPECT_EQ(Listing().size(), 1u);  // The temporary file.
    EXPECT_THAT(Listing()[0], ::testing::EndsWith(".tmp"));
  }
  EXPECT_THAT(Listing(), IsEmpty());
}

TEST_F(EncryptedFileTest, CommitReplacesAnExistingFile) {
  WriteFile(Path(), "first");
  WriteFile(Path(), "second");
  EXPECT_EQ(*ReadFile(Path()), "second");
  EXPECT_THAT(Listing(), ElementsAre("file.enc"));
}

TEST_F(EncryptedFileTest, UnsyncedCommitIsReadable) {
  absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> writer =
      EncryptedFileWriter::Create(Path(), Key(), "ctx");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("temporary").ok());
  ASSERT_TRUE((*writer)->CommitUnsynced().ok());
  EXPECT_EQ(*ReadFile(Path()), "temporary");
}

TEST_F(EncryptedFileTest, Sha256IsOfThePlaintext) {
  std::string plaintext = Pattern(2 * kChunk + 3);
  WriteFile(Path(), plaintext);
  absl::StatusOr<std::string> sha =
      EncryptedFileSha256Hex(Path(), Key(), "ctx");
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, Sha256Hex(plaintext));
  EXPECT_EQ(EncryptedFileSha256Hex(Path(), Key(), "other").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(EncryptedFileContextTest, ExportAndBundleContexts) {
  EXPECT_EQ(ExportFileContext("req-1"), "export:req-1");
  EXPECT_EQ(BundleFileContext("req-1"), "bundle:req-1");
}

}  // namespace
}  // namespace dsar
