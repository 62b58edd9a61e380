#include "workers/connectors/jsonl_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Lines of the form "<user> <anything>": the identity ("user_id", first
// word). Counts the lines it is shown, to tell what the index read.
class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/jsonl_index_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<JsonlLineIndex> MakeIndex() {
    return std::make_unique<JsonlLineIndex>(
        path_, "log",
        [this](
            std::string_view line,
            absl::FunctionRef<void(std::string_view, std::string_view)> visit) {
          ++lines_read_;
          std::vector<absl::string_view> words =
              absl::StrSplit(absl::string_view(line.data(), line.size()), ' ');
          if (!words.empty() && !words[0].empty()) {
            visit("user_id",
                  std::string_view(words[0].data(), words[0].size()));
          }
        });
  }

  void Write(const std::string& content) {
    ASSERT_TRUE(WriteFileAtomically(path_, content).ok());
  }
  void Append(const std::string& content) {
    std::FILE* file = std::fopen(path_.c_str(), "ab");
    ASSERT_NE(file, nullptr);
    std::fputs(content.c_str(), file);
    std::fclose(file);
  }

  std::vector<uint64_t> Lookup(JsonlLineIndex& index, const std::string& user) {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    std::vector<std::pair<std::string, std::string>> identities = {
        {"user_id", user}};
    absl::StatusOr<std::vector<uint64_t>> found =
        index.Lookup(fd, identities, nullptr);
    ::close(fd);
    EXPECT_TRUE(found.ok()) << found.status();
    return found.value_or(std::vector<uint64_t>());
  }

  std::string dir_;
  std::string path_;
  int lines_read_ = 0;
};

TEST_F(IndexTest, FindsEveryLineOfTheIdentity) {
  Write("7 a\n42 b\n7 c\n\n42\n");
  auto index = MakeIndex();
  EXPECT_THAT(Lookup(*index, "42"), ElementsAre(4, 14));
  EXPECT_THAT(Lookup(*index, "7"), ElementsAre(0, 9));
  EXPECT_THAT(Lookup(*index, "8"), IsEmpty());
}

TEST_F(IndexTest, ReadsOnlyWhatWasAppendedSince) {
  std::string log;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&log, i % 10, " x\n");
  Write(log);
  auto index = MakeIndex();
  EXPECT_EQ(Lookup(*index, "3").size(), 100u);
  EXPECT_EQ(lines_read_, 1000);
  Append("3 new\n");
  std::vector<uint64_t> found = Lookup(*index, "3");
  EXPECT_EQ(found.size(), 101u);
  EXPECT_EQ(found.back(), log.size());
  EXPECT_EQ(lines_read_, 1001);  // The appended line only.
  EXPECT_EQ(index->indexed_bytes(), log.size() + 6);
}

TEST_F(IndexTest, AnUnfinishedLastLineIsAlwaysACandidate) {
  Write("7 a\n42 b");
  auto index = MakeIndex();
  EXPECT_THAT(Lookup(*index, "7"), ElementsAre(0, 4));
  EXPECT_EQ(index->indexed_bytes(), 4u);
  Append(" more\n");  // The writer finishes it.
  EXPECT_THAT(Lookup(*index, "42"), ElementsAre(4));
  EXPECT_THAT(Lookup(*index, "7"), ElementsAre(0));
}

TEST_F(IndexTest, ANewGenerationRebuildsTheIndex) {
  Write("7 a\n42 b\n");
  auto index = MakeIndex();
  EXPECT_THAT(Lookup(*index, "42"), ElementsAre(4));
  // A rewrite moves the lines, announcing it first as jsonl.h says.
  ASSERT_TRUE(BumpLogGeneration(path_).ok());
  std::string rewritten = "42 b\n7 a\n";
  int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_EQ(::pwrite(fd, rewritten.data(), rewritten.size(), 0),
            static_cast<ssize_t>(rewritten.size()));
  ::close(fd);
  EXPECT_THAT(Lookup(*index, "42"), ElementsAre(0));
  EXPECT_EQ(lines_read_, 4);
  EXPECT_EQ(ReadLogGeneration(path_).value(), 1u);
}

TEST_F(IndexTest, ARotatedOrTruncatedLogIsReadAgain) {
  Write("7 a\n42 b\n");
  auto index = MakeIndex();
  EXPECT_THAT(Lookup(*index, "42"), ElementsAre(4));
  Write("42 c\n");  // A new file (another inode), as rotation leaves it.
  EXPECT_THAT(Lookup(*index, "42"), ElementsAre(0));
  ASSERT_EQ(::truncate(path_.c_str(), 0), 0);
  // Truncated (copytruncate) and written again past where the index ended.
  Append("9 x\n42 y\n");
  EXPECT_THAT(Lookup(*index, "42"), ElementsAre(4));
}

TEST_F(IndexTest, GenerationFileKeepsAFixedWidthNumber) {
  EXPECT_EQ(ReadLogGeneration(path_).value(), 0u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(BumpLogGeneration(path_).ok());
  EXPECT_EQ(ReadLogGeneration(path_).value(), 3u);
  EXPECT_EQ(ReadFile(path_ + kLogGenerationSuffix).value(),
            "00000000000000000003\n");
  ASSERT_TRUE(WriteFileAtomically(path_ + kLogGenerationSuffix, "junk").ok());
  EXPECT_EQ(ReadLogGeneration(path_).status().code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(BumpLogGeneration(path_).ok());  // Replaced, so indexes rebuild.
  EXPECT_EQ(ReadLogGeneration(path_).value(), 1u);
}

TEST_F(IndexTest, CancelStopsTheFirstRead) {
  std::string log;
  for (int i = 0; i < 100000; ++i) absl::StrAppend(&log, i, " padding\n");
  Write(log);
  auto index = MakeIndex();
  std::atomic<bool> cancel{true};
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<std::pair<std::string, std::string>> identities = {
      {"user_id", "5"}};
  EXPECT_EQ(index->Lookup(fd, identities, &cancel).status().code(),
            absl::StatusCode::kCancelled);
  ::close(fd);
  EXPECT_EQ(index->indexed_bytes(), 0u);  // Not trusted half-read.
  EXPECT_THAT(Lookup(*index, "5"), ElementsAre(50));
}

}  // namespace
}  // namespace dsar
