#include "workers/connectors/jsonl.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/connector_errors.h"
#include "nlohmann/json.hpp"
#include "workers/connectors/connector.h"

namespace dsar {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using Json = nlohmann::json;

// Lines about user 42 / alice, interleaved with lines that must survive an
// erase byte for byte: odd spacing, other users, non-JSON, no final newline.
constexpr char kAlice1[] =
    R"({"ts":"2024-01-01T00:00:00Z","user_id":42,"ip":"192.0.2.1","action":"login"})"
    "\n";
constexpr char kAlice2[] =
    R"({"ts":"2024-01-02T00:00:00Z","user_id":"42","email":"Alice@Example.COM"})"
    "\n";
constexpr char kAlice3[] = R"({"email": "ALICE@example.com", "action": "x"})"
                           "\n";
constexpr char kOther1[] =
    R"({ "ts" : "2024-01-01T00:00:01Z",   "user_id" : 7 , "ip":"192.0.2.7" })"
    "\n";
constexpr char kOther2[] = R"({"user_id": 420, "note": "caf\u00e9 ☕"})"
                           "\n";
constexpr char kGarbage[] = "not json but mentions user_id 42 \x01\n";
constexpr char kBlank[] = "\n";
constexpr char kArray[] = R"([{"user_id":42}])"
                          "\r\n";
constexpr char kLast[] = R"({"user_id":7,"email":"bob@example.com"})";

// `line` as an erasure leaves it: an empty JSON object of the same length,
// the '\n' kept.
std::string Erased(std::string_view line) {
  size_t length = line.size() - (!line.empty() && line.back() == '\n' ? 1 : 0);
  std::string erased(length, ' ');
  erased.front() = '{';
  erased.back() = '}';
  erased.append(line.substr(length));
  return erased;
}

class JsonlConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/jsonl_connector_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    store_.name = "activity";
    store_.kind = "jsonl";
    store_.path = dir_ + "/activity.jsonl";
    store_.collections = {
        {"activity", {{"user_id", "user_id"}, {"email", "email"}}, {}, {}}};
    original_ = absl::StrCat(kAlice1, kOther1, kGarbage, kAlice2, kBlank,
                             kOther2, kArray, kAlice3, kLast);
    ASSERT_TRUE(WriteFileAtomically(store_.path, original_).ok());
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Connector> Make() {
    absl::StatusOr<std::unique_ptr<Connector>> connector =
        CreateConnector(store_);
    EXPECT_TRUE(connector.ok()) << connector.status();
    return std::move(*connector);
  }

  std::string Contents() { return ReadFile(store_.path).value(); }

  // The files beside the log, but for its generation file, which stays once
  // a rewrite made it (jsonl_index.h): journals and temp files left behind.
  std::vector<std::string> DirectoryEntries() {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      std::string name = entry.path().filename().string();
      if (!absl::EndsWith(name, ".dsar-generation")) names.push_back(name);
    }
    return names;
  }

  std::string dir_;
  std::string original_;
  StoreSpec store_;
};

TEST_F(JsonlConnectorTest, ExportMatchesNumbersAndStringsForUserId) {
  StringSink sink;
  absl::StatusOr<ConnectorResult> result =
      Make()->Export({{"user_id", "42"}}, sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 2);
  Json document = Json::parse(sink.text());
  EXPECT_EQ(document["store"], "activity");
  ASSERT_EQ(document["records"].size(), 2u);
  EXPECT_EQ(document["records"][0]["collection"], "activity");
  EXPECT_EQ(document["records"][0]["data"],
            Json::parse(std::string_view(kAlice1)));
  EXPECT_EQ(document["records"][1]["data"],
            Json::parse(std::string_view(kAlice2)));
  EXPECT_THAT(result->discovered,
              ElementsAre(Identity{"email", "alice@example.com"}));
  // Fields keep the order the log wrote them in.
  EXPECT_THAT(sink.text(),
              ::testing::HasSubstr(
                  R"("data":{"ts":"2024-01-01T00:00:00Z","user_id":42,"ip")"));
}

TEST_F(JsonlConnectorTest, StoredPhonesMatchInCanonicalForm) {
  store_.default_phone_region = "GB";
  store_.collections.front().identity_fields["phone"] = "phone";
  ASSERT_TRUE(WriteFileAtomically(store_.path,
                                  "{\"phone\":\"+44 7700 454764\",\"n\":1}\n"
                                  "{\"phone\":\"07700 454764\",\"n\":2}\n"
                                  "{\"phone\":\"+44 7700 454765\",\"n\":3}\n"
                                  "{\"phone\":\"not a phone\",\"n\":4}\n")
                  .ok());
  absl::StatusOr<ConnectorResult> result =
      Make()->Discover({{"phone", "+447700454764"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 2);
}

TEST_F(JsonlConnectorTest, NonCanonicalUserIdsNeverMatchNumbers) {
  const std::string log =
      "{\"user_id\":7}\n{\"user_id\":8}\n{\"user_id\":9.0}\n"
      "{\"user_id\":10}\n{\"user_id\":1e1}\n";
  ASSERT_TRUE(WriteFileAtomically(store_.path, log).ok());
  for (const char* value : {"007", "+8", "9.0", "1e1"}) {
    SCOPED_TRACE(value);
    absl::StatusOr<EraseResult> erased = Make()->Erase({{"user_id", value}});
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_EQ(erased->record_count(), 0);
  }
  EXPECT_EQ(Contents(), log);
}

TEST_F(JsonlConnectorTest,
       IdentitiesOfDifferentPeopleAreRefusedByEveryOperation) {
  // Alice's email and Bob's user id: the records matched through each are
  // disjoint, so the request names two people.
  const std::vector<Identity> mixed = {{"email", "alice@example.com"},
                                       {"user_id", "7"}};
  store_.collections.front().pii_fields = {{"ip", "online_identifiers"}};
  store_.collections.front().processing_flags = {{"restriction", "r"}};
  std::unique_ptr<Connector> connector = Make();
  StringSink sink;
  std::vector<absl::Status> outcomes = {
      connector->Export(mixed, sink).status(),
      connector->Discover(mixed).status(),
      connector->Erase(mixed).status(),
      connector->Rectify(mixed, {{"", "ip", "192.0.2.99"}}).status(),
      connector->SetProcessingFlag(mixed, "restriction").status(),
  };
  for (const absl::Status& status : outcomes) {
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_EQ(ConnectorErrorName(status), "Identity.Conflict");
    std::string message(status.message());
    EXPECT_THAT(message, HasSubstr("store activity: collection activity"));
    EXPECT_THAT(message, HasSubstr("email"));
    EXPECT_THAT(message, HasSubstr("user_id"));
    EXPECT_THAT(message, Not(HasSubstr("alice")));
    EXPECT_THAT(message, Not(HasSubstr("7")));
  }
  EXPECT_TRUE(sink.text().empty());
  EXPECT_EQ(Contents(), original_);
  // Identities of one person that some record shares are fine.
  absl::StatusOr<ConnectorResult> same =
      connector->Discover({{"email", "alice@example.com"}, {"user_id", "42"}});
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->record_count, 3);
}

TEST_F(JsonlConnectorTest, EmailsMatchIgnoringCase) {
  absl::StatusOr<ConnectorResult> result =
      Make()->Discover({{"email", "alice@EXAMPLE.com"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 2);
  // Both emails are the given one in another case: not new identities.
  EXPECT_THAT(result->discovered, ElementsAre(Identity{"user_id", "42"}));
}

TEST_F(JsonlConnectorTest, DiscoverIsReadOnly) {
  absl::StatusOr<ConnectorResult> result = Make()->Discover({{"user_id", "7"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->record_count, 2);
  EXPECT_THAT(result->discovered,
              UnorderedElementsAre(Identity{"email", "bob@example.com"}));
  EXPECT_EQ(Contents(), original_);
}

TEST_F(JsonlConnectorTest, EraseKeepsEveryOtherLineByteForByte) {
  ASSERT_EQ(::chmod(store_.path.c_str(), 0640), 0);
  std::unique_ptr<Connector> connector = Make();
  std::vector<Identity> alice = {{"user_id", "42"},
                                 {"email", "alice@example.com"}};
  absl::StatusOr<EraseResult> erased = connector->Erase(alice);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 3);
  EXPECT_EQ(Contents(),
            absl::StrCat(Erased(kAlice1), kOther1, kGarbage, Erased(kAlice2),
                         kBlank, kOther2, kArray, Erased(kAlice3), kLast));
  struct stat info;
  ASSERT_EQ(::stat(store_.path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0640u);
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));

  absl::StatusOr<ConnectorResult> found = connector->Discover(alice);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->record_count, 0);
}

TEST_F(JsonlConnectorTest, SecondEraseFindsNothingAndLeavesTheFile) {
  std::unique_ptr<Connector> connector = Make();
  ASSERT_EQ(connector->Erase({{"user_id", "7"}}).value().record_count(), 2);
  std::string after_first = Contents();
  struct stat first;
  ASSERT_EQ(::stat(store_.path.c_str(), &first), 0);

  absl::StatusOr<EraseResult> again = connector->Erase({{"user_id", "7"}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->record_count(), 0);
  struct stat second;
  ASSERT_EQ(::stat(store_.path.c_str(), &second), 0);
  EXPECT_EQ(first.st_ino, second.st_ino);  // Not rewritten.
  EXPECT_EQ(Contents(), after_first);
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));
}

TEST_F(JsonlConnectorTest, EraseRemovesTempFilesACrashLeftBehind) {
  // An unfinished journal: the log was not touched yet.
  std::string stale = store_.path + ".dsar-rewrite.tmp";
  ASSERT_TRUE(WriteFileAtomically(stale, original_).ok());
  ASSERT_TRUE(Make()->Erase({{"user_id", "12345"}}).ok());
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_EQ(Contents(), original_);
}

TEST_F(JsonlConnectorTest, MissingFileIsUnavailable) {
  store_.path = dir_ + "/rotated-away.jsonl";
  std::unique_ptr<Connector> connector = Make();
  StringSink sink;
  EXPECT_EQ(connector->Export({{"user_id", "42"}}, sink).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(connector->Discover({{"user_id", "42"}}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(connector->Erase({{"user_id", "42"}}).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(JsonlConnectorTest, ConcurrentErasesAllTakeEffect) {
  std::string log;
  std::string erased;
  for (int round = 0; round < 50; ++round) {
    for (int user = 1; user <= 8; ++user) {
      std::string line =
          absl::StrCat(R"({"user_id":)", user, R"(,"n":)", round, "}\n");
      log += line;
      erased += Erased(line);
    }
  }
  log += "trailing garbage\n";
  erased += "trailing garbage\n";
  ASSERT_TRUE(WriteFileAtomically(store_.path, log).ok());
  std::unique_ptr<Connector> connector = Make();
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<int64_t>> results(8, int64_t{0});
  for (int user = 1; user <= 8; ++user) {
    threads.emplace_back([&, user] {
      absl::StatusOr<EraseResult> erased =
          connector->Erase({{"user_id", absl::StrCat(user)}});
      if (erased.ok()) {
        results[user - 1] = erased->record_count();
      } else {
        results[user - 1] = erased.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, 50);
  }
  EXPECT_EQ(Contents(), erased);
}

ino_t Inode(const std::string& path) {
  struct stat info;
  EXPECT_EQ(::stat(path.c_str(), &info), 0);
  return info.st_ino;
}

// An application appending to the log as jsonl.h asks: each line written
// whole, under flock(LOCK_EX) on the log, through a descriptor it keeps open.
class Appender {
 public:
  explicit Appender(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC)) {}
  ~Appender() { ::close(fd_); }
  bool Append(const std::string& line) {
    if (::flock(fd_, LOCK_EX) != 0) return false;
    bool ok = ::write(fd_, line.data(), line.size()) ==
              static_cast<ssize_t>(line.size());
    return ::flock(fd_, LOCK_UN) == 0 && ok;
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

TEST_F(JsonlConnectorTest, EraseLosesNoLineAppendedMeanwhile) {
  ASSERT_TRUE(
      WriteFileAtomically(store_.path, absl::StrCat(kAlice1, kOther1)).ok());
  ino_t inode = Inode(store_.path);
  constexpr int kLines = 3000;
  std::atomic<bool> done{false};
  std::atomic<bool> appended{true};
  std::thread writer([&] {
    Appender appender(store_.path);
    appended = appender.ok();
    for (int i = 0; i < kLines && appended; ++i) {
      // Every fifth line is the subject's, to be erased.
      int user = i % 5 == 0 ? 42 : 7;
      appended = appender.Append(
          absl::StrCat(R"({"user_id":)", user, R"(,"seq":)", i, "}\n"));
    }
    done = true;
  });
  std::unique_ptr<Connector> connector = Make();
  int erases = 0;
  absl::Status failure;
  while (!done) {
    absl::StatusOr<EraseResult> erased = connector->Erase({{"user_id", "42"}});
    if (!erased.ok()) failure = erased.status();
    ++erases;
  }
  writer.join();
  ASSERT_TRUE(failure.ok()) << failure;
  ASSERT_TRUE(appended);
  ASSERT_TRUE(connector->Erase({{"user_id", "42"}}).ok());

  std::string expected = absl::StrCat(Erased(kAlice1), kOther1);
  for (int i = 0; i < kLines; ++i) {
    int user = i % 5 == 0 ? 42 : 7;
    std::string line =
        absl::StrCat(R"({"user_id":)", user, R"(,"seq":)", i, "}\n");
    expected += user == 42 ? Erased(line) : line;
  }
  EXPECT_EQ(Contents(), expected);
  EXPECT_EQ(Inode(store_.path), inode);  // Changed in place.
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));
  EXPECT_GT(erases, 0);
}

// Leaves the log and journal as a rewrite from `old_log` to `new_log` that
// crashed in `phase` would (format in jsonl.h), the log holding `log`
// followed by `tail`, lines appended after the crash.
class JsonlRecoveryTest : public JsonlConnectorTest {
 protected:
  void Crash(uint64_t phase, const std::string& old_log,
             const std::string& new_log, const std::string& log,
             const std::string& tail) {
    std::string journal = "DSARRW1\n";
    for (uint64_t value :
         {phase, uint64_t{old_log.size()}, uint64_t{new_log.size()}}) {
      for (int i = 0; i < 8; ++i) {
        journal.push_back(static_cast<char>(value >> (8 * i)));
      }
    }
    journal += new_log;
    ASSERT_TRUE(
        WriteFileAtomically(store_.path + ".dsar-rewrite", journal).ok());
    ASSERT_TRUE(WriteFileAtomically(store_.path, log + tail).ok());
  }

  void ExpectRecovered(const std::string& expected) {
    absl::StatusOr<ConnectorResult> found =
        Make()->Discover({{"user_id", "7"}});
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(Contents(), expected);
    EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));
  }

  const std::string kept_ = absl::StrCat(kOther1, kOther2);
  const std::string old_ = absl::StrCat(kOther1, kAlice1, kOther2);
  const std::string tail_ = "{\"user_id\":9,\"after\":\"crash\"}\n";
};

TEST_F(JsonlRecoveryTest, ShrinkCrashedWhileCopying) {
  // Phase 0: the new content is partly copied over the old; size unchanged.
  std::string log = old_;
  log.replace(0, 10, kept_.substr(0, 10));
  Crash(0, old_, kept_, log, tail_);
  ExpectRecovered(kept_ + tail_);
}

TEST_F(JsonlRecoveryTest, ShrinkCrashedBeforeTheCut) {
  std::string log = kept_ + std::string(old_.size() - kept_.size(), '\0');
  Crash(1, old_, kept_, log, tail_);
  ExpectRecovered(kept_ + tail_);
}

TEST_F(JsonlRecoveryTest, ShrinkCrashedAfterTheCut) {
  Crash(1, old_, kept_, kept_, tail_);
  ExpectRecovered(kept_ + tail_);
  Crash(2, old_, kept_, kept_, tail_);
  ExpectRecovered(kept_ + tail_);
}

TEST_F(JsonlRecoveryTest, GrowthCrashedBeforeOrAfterExtending) {
  // A rectification that made the log longer.
  std::string longer = absl::StrCat(kOther1, kAlice1, kOther2, kOther2);
  std::string zeros(longer.size() - old_.size(), '\0');
  Crash(1, old_, longer, old_, tail_);  // Not extended yet.
  ExpectRecovered(longer + tail_);
  Crash(1, old_, longer, old_ + zeros, tail_);  // Extended, nothing copied.
  ExpectRecovered(longer + tail_);
  Crash(2, old_, longer, longer.substr(0, 20) + old_.substr(20) + zeros,
        tail_);  // Copying.
  ExpectRecovered(longer + tail_);
}

TEST_F(JsonlRecoveryTest, ErasedLinesStayErased) {
  Crash(0, old_, kept_, old_, "");
  ExpectRecovered(kept_);
  absl::StatusOr<ConnectorResult> alice = Make()->Discover({{"user_id", "42"}});
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->record_count, 0);
}

// An erase journal (jsonl.h, "Erasure") listing `lines` (offset, length).
std::string EraseJournal(
    const std::vector<std::pair<uint64_t, uint64_t>>& lines) {
  std::string journal = "DSARER1\n";
  auto put = [&](uint64_t value) {
    for (int i = 0; i < 8; ++i) {
      journal.push_back(static_cast<char>(value >> (8 * i)));
    }
  };
  put(lines.size());
  for (const auto& [offset, length] : lines) {
    put(offset);
    put(length);
  }
  return journal;
}

TEST_F(JsonlConnectorTest, AnInterruptedEraseIsFinishedBeforeAnyRead) {
  // The crash came after the journal was committed, with the first line
  // half overwritten and the second not yet.
  std::string first(kAlice1, sizeof(kAlice1) - 2);  // No '\n'.
  size_t second = original_.find(kAlice2);
  ASSERT_TRUE(WriteFileAtomically(store_.path + ".dsar-erase",
                                  EraseJournal({{0, first.size()},
                                                {second, sizeof(kAlice2) - 2}}))
                  .ok());
  std::string log = original_;
  log.replace(0, 10, "{         ");
  ASSERT_TRUE(WriteFileAtomically(store_.path, log).ok());

  absl::StatusOr<ConnectorResult> found = Make()->Discover({{"user_id", "7"}});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(Contents(),
            absl::StrCat(Erased(kAlice1), kOther1, kGarbage, Erased(kAlice2),
                         kBlank, kOther2, kArray, kAlice3, kLast));
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));
}

TEST_F(JsonlConnectorTest, AnUncommittedEraseLeavesTheLog) {
  ASSERT_TRUE(WriteFileAtomically(store_.path + ".dsar-erase.tmp",
                                  EraseJournal({{0, 10}}))
                  .ok());
  ASSERT_TRUE(Make()->Erase({{"user_id", "12345"}}).ok());
  EXPECT_EQ(Contents(), original_);
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));
}

TEST_F(JsonlConnectorTest, ADamagedEraseJournalStopsEveryOperation) {
  // A range past the end of the log: not a journal of this log.
  ASSERT_TRUE(WriteFileAtomically(store_.path + ".dsar-erase",
                                  EraseJournal({{original_.size(), 10}}))
                  .ok());
  absl::StatusOr<ConnectorResult> found = Make()->Discover({{"user_id", "7"}});
  EXPECT_EQ(found.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(found.status().message()),
              HasSubstr("activity.jsonl.dsar-erase"));
  EXPECT_EQ(Contents(), original_);
}

TEST_F(JsonlConnectorTest, AnotherProcesssRewriteIsSeenThroughTheGeneration) {
  // Lines of 16 bytes: flagging the first one makes it 32, so every later
  // line moves down by exactly one line, and an index that missed the
  // rewrite would read user 102's line where user 103's was.
  store_.collections[0].processing_flags = {{"objection", "objected"}};
  ASSERT_TRUE(WriteFileAtomically(store_.path,
                                  "{\"user_id\":101}\n{\"user_id\":102}\n"
                                  "{\"user_id\":103}\n{\"user_id\":104}\n")
                  .ok());
  // Two connectors: two processes, each with its own index.
  std::unique_ptr<Connector> reader = Make();
  std::unique_ptr<Connector> writer = Make();
  ASSERT_EQ(reader->Discover({{"user_id", "103"}}).value().record_count, 1);
  ASSERT_EQ(
      writer->SetProcessingFlag({{"user_id", "101"}}, "objection").value(), 1);

  absl::StatusOr<ConnectorResult> found =
      reader->Discover({{"user_id", "103"}});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record_count, 1);
  absl::StatusOr<EraseResult> erased = reader->Erase({{"user_id", "104"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 1);
  EXPECT_EQ(Contents(), absl::StrCat("{\"user_id\":101,\"objected\":true}\n"
                                     "{\"user_id\":102}\n{\"user_id\":103}\n",
                                     Erased("{\"user_id\":104}\n")));
}

TEST_F(JsonlConnectorTest, LinesAppendedAfterTheFirstLookupAreFound) {
  std::unique_ptr<Connector> connector = Make();
  ASSERT_EQ(connector->Discover({{"user_id", "42"}}).value().record_count, 2);
  Appender appender(store_.path);
  ASSERT_TRUE(appender.Append("\n{\"user_id\":42,\"late\":true}\n"));
  absl::StatusOr<EraseResult> erased = connector->Erase({{"user_id", "42"}});
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(erased->record_count(), 3);
  EXPECT_EQ(connector->Discover({{"user_id", "42"}}).value().record_count, 0);
}

TEST_F(JsonlConnectorTest, RectifyReplacesOnlyTheFieldsValue) {
  store_.collections[0].pii_fields = {{"ip", "online_identifiers"},
                                      {"action", "usage"}};
  std::unique_ptr<Connector> connector = Make();
  std::vector<Identity> alice = {{"user_id", "42"},
                                 {"email", "alice@example.com"}};
  // kAlice2 has neither field: it is not given one.
  absl::StatusOr<int64_t> changed = connector->Rectify(
      alice, {{"", "ip", "198.51.100.9"}, {"activity", "action", "logout"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 2);
  EXPECT_EQ(
      Contents(),
      absl::StrCat(
          R"({"ts":"2024-01-01T00:00:00Z","user_id":42,"ip":"198.51.100.9","action":"logout"})"
          "\n",
          kOther1, kGarbage, kAlice2, kBlank, kOther2, kArray,
          // Its spacing stays.
          R"({"email": "ALICE@example.com", "action": "logout"})"
          "\n",
          kLast));
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));

  // Idempotent: the second call changes nothing and leaves the file.
  std::string after_first = Contents();
  ino_t inode = Inode(store_.path);
  changed = connector->Rectify(
      alice, {{"", "ip", "198.51.100.9"}, {"activity", "action", "logout"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);
  EXPECT_EQ(Contents(), after_first);
  EXPECT_EQ(Inode(store_.path), inode);

  // A correction of another collection, or of a field no record has.
  changed = connector->Rectify(
      alice, {{"accounts", "ip", "x"}, {"", "full_name", "Alice Smith"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);
  EXPECT_EQ(Contents(), after_first);
}

TEST_F(JsonlConnectorTest, RectifyRejectsFieldsThatAreNotPii) {
  store_.collections[0].pii_fields = {{"ip", "online_identifiers"}};
  store_.collections[0].processing_flags = {{"restriction", "restricted"}};
  std::unique_ptr<Connector> connector = Make();
  std::vector<Identity> alice = {{"user_id", "42"}};
  // Named by the inventory: rejected before the log is read.
  for (const char* field : {"user_id", "email", "restricted"}) {
    absl::StatusOr<int64_t> changed =
        connector->Rectify(alice, {{"", field, "1"}});
    EXPECT_EQ(changed.status().code(), absl::StatusCode::kInvalidArgument)
        << field;
    EXPECT_THAT(std::string(changed.status().message()),
                ::testing::HasSubstr(absl::StrCat("\"", field, "\"")));
  }
  // In the subject's records ("ts"): rejected, and the valid ip correction
  // is not applied either.
  absl::StatusOr<int64_t> changed =
      connector->Rectify(alice, {{"", "ip", "x"}, {"", "ts", "yesterday"}});
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(changed.status().message()),
              ::testing::HasSubstr("\"ts\""));
  EXPECT_EQ(Contents(), original_);
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));
  EXPECT_EQ(connector->Rectify(alice, {{"", "ip", "\xff\xfe"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JsonlConnectorTest, RectifyKeepsNumbersNumbers) {
  store_.collections[0].pii_fields = {
      {"n", "x"}, {"s", "x"}, {"m", "x"}, {"f", "x"}, {"t", "x"}};
  std::string log = absl::StrCat(
      R"({"user_id":1,"n":5,"s":"5","m":5,"f":1.5,"t":"caf\u00e9"})"
      "\n",
      R"({"user_id":2,"n":5})"
      "\n");
  ASSERT_TRUE(WriteFileAtomically(store_.path, log).ok());
  std::unique_ptr<Connector> connector = Make();
  std::vector<FieldCorrection> corrections = {{"", "n", "6"},
                                              {"", "s", "7"},
                                              {"", "m", "007"},
                                              {"", "f", "2.25"},
                                              {"", "t", "Zoë \"Z\""}};
  absl::StatusOr<int64_t> changed =
      connector->Rectify({{"user_id", "1"}}, corrections);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 1);
  EXPECT_EQ(
      Contents(),
      absl::StrCat(
          R"({"user_id":1,"n":6,"s":"7","m":"007","f":2.25,"t":"Zoë \"Z\""})"
          "\n",
          R"({"user_id":2,"n":5})"
          "\n"));
  changed = connector->Rectify({{"user_id", "1"}}, corrections);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);
  // The same number written again is no change.
  changed = connector->Rectify({{"user_id", "2"}}, {{"", "n", "5"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);
}

TEST_F(JsonlConnectorTest, SetProcessingFlagSetsTrueOnMatchingLines) {
  store_.collections[0].processing_flags = {{"restriction", "restricted"}};
  std::string log = absl::StrCat(kAlice1, kOther1, kGarbage, kBlank, kArray,
                                 R"({"user_id":42,"restricted":false})"
                                 "\n",
                                 R"({ "user_id" : 42 , "restricted" : true })"
                                 "\n",
                                 kLast);
  ASSERT_TRUE(WriteFileAtomically(store_.path, log).ok());
  std::unique_ptr<Connector> connector = Make();
  absl::StatusOr<int64_t> flagged =
      connector->SetProcessingFlag({{"user_id", "42"}}, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 2);
  EXPECT_EQ(
      Contents(),
      absl::StrCat(
          R"({"ts":"2024-01-01T00:00:00Z","user_id":42,"ip":"192.0.2.1","action":"login","restricted":true})"
          "\n",
          kOther1, kGarbage, kBlank, kArray,
          R"({"user_id":42,"restricted":true})"
          "\n",
          R"({ "user_id" : 42 , "restricted" : true })"
          "\n",
          kLast));

  std::string after_first = Contents();
  ino_t inode = Inode(store_.path);
  flagged = connector->SetProcessingFlag({{"user_id", "42"}}, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
  EXPECT_EQ(Contents(), after_first);
  EXPECT_EQ(Inode(store_.path), inode);

  // The last line, without a final newline, gets the field too.
  flagged = connector->SetProcessingFlag({{"user_id", "7"}}, "restriction");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 2);
  EXPECT_TRUE(absl::EndsWith(
      Contents(),
      R"({"user_id":7,"email":"bob@example.com","restricted":true})"));

  EXPECT_EQ(connector->SetProcessingFlag({{"user_id", "42"}}, "erasure")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JsonlConnectorTest, StoreWithoutTheFlagReturnsZero) {
  std::unique_ptr<Connector> connector = Make();
  absl::StatusOr<int64_t> flagged =
      connector->SetProcessingFlag({{"user_id", "42"}}, "objection");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
  EXPECT_EQ(Contents(), original_);
  store_.path = dir_ + "/rotated-away.jsonl";
  flagged = Make()->SetProcessingFlag({{"user_id", "42"}}, "objection");
  ASSERT_TRUE(flagged.ok()) << flagged.status();
  EXPECT_EQ(*flagged, 0);
}

TEST_F(JsonlConnectorTest, ConcurrentFlagsAndErasesAllTakeEffect) {
  store_.collections[0].processing_flags = {{"objection", "objected"}};
  std::string log;
  for (int round = 0; round < 50; ++round) {
    for (int user = 1; user <= 8; ++user) {
      absl::StrAppend(&log, R"({"user_id":)", user, R"(,"n":)", round, "}\n");
    }
  }
  ASSERT_TRUE(WriteFileAtomically(store_.path, log).ok());
  std::unique_ptr<Connector> connector = Make();
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<int64_t>> results(8, int64_t{0});
  for (int user = 1; user <= 8; ++user) {
    threads.emplace_back([&, user] {
      std::vector<Identity> who = {{"user_id", absl::StrCat(user)}};
      if (user % 2 == 0) {
        absl::StatusOr<EraseResult> erased = connector->Erase(who);
        if (erased.ok()) {
          results[user - 1] = erased->record_count();
        } else {
          results[user - 1] = erased.status();
        }
      } else {
        results[user - 1] = connector->SetProcessingFlag(who, "objection");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, 50);
  }
  std::string expected;
  for (int round = 0; round < 50; ++round) {
    for (int user = 1; user <= 8; ++user) {
      if (user % 2 == 0) {
        expected += Erased(
            absl::StrCat(R"({"user_id":)", user, R"(,"n":)", round, "}\n"));
      } else {
        absl::StrAppend(&expected, R"({"user_id":)", user, R"(,"n":)", round,
                        R"(,"objected":true})", "\n");
      }
    }
  }
  EXPECT_EQ(Contents(), expected);
}

// Sets the cancel flag it was given on its first write, as a worker's stop
// would while an export is under way.
class CancellingSink : public ByteSink {
 public:
  explicit CancellingSink(std::atomic<bool>& cancel) : cancel_(cancel) {}
  absl::Status Write(std::string_view bytes) override {
    cancel_ = true;
    return absl::OkStatus();
  }

 private:
  std::atomic<bool>& cancel_;
};

TEST_F(JsonlConnectorTest, CancelStopsAnExportBetweenLines) {
  // Far more than one sink write's worth of matching lines.
  std::string log;
  for (int i = 0; i < 20000; ++i) {
    absl::StrAppend(&log, R"({"user_id":42,"n":)", i, "}\n");
  }
  ASSERT_TRUE(WriteFileAtomically(store_.path, log).ok());
  std::atomic<bool> cancel{false};
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      CreateConnector(store_, &cancel);
  ASSERT_TRUE(connector.ok()) << connector.status();
  CancellingSink sink(cancel);
  absl::StatusOr<ConnectorResult> result =
      (*connector)->Export({{"user_id", "42"}}, sink);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled)
      << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("activity"));
}

TEST_F(JsonlConnectorTest, CancelledRewriteLeavesTheLogAsItWas) {
  store_.collections[0].processing_flags = {{"restriction", "restricted"}};
  std::atomic<bool> cancel{true};
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      CreateConnector(store_, &cancel);
  ASSERT_TRUE(connector.ok()) << connector.status();
  const std::vector<Identity> alice = {{"user_id", "42"}};
  EXPECT_EQ((*connector)->Erase(alice).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(
      (*connector)->SetProcessingFlag(alice, "restriction").status().code(),
      absl::StatusCode::kCancelled);
  EXPECT_EQ(Contents(), original_);
  EXPECT_THAT(DirectoryEntries(), ElementsAre("activity.jsonl"));
}

TEST_F(JsonlConnectorTest, CancelEndsAWaitForTheLogsLock) {
  // Another writer holds the log's lock and does not let go.
  int holder = ::open(store_.path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(::flock(holder, LOCK_EX), 0);
  std::atomic<bool> cancel{true};
  absl::StatusOr<std::unique_ptr<Connector>> connector =
      CreateConnector(store_, &cancel);
  ASSERT_TRUE(connector.ok()) << connector.status();
  std::future<std::pair<absl::Status, absl::Status>> results =
      std::async(std::launch::async, [&] {
        return std::make_pair(
            (*connector)->Discover({{"user_id", "42"}}).status(),
            (*connector)->Erase({{"user_id", "42"}}).status());
      });
  // Generous: a cancelled wait ends within one poll of the lock.
  bool ended =
      results.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  ::close(holder);  // Lets a wait that ignored the flag finish.
  EXPECT_TRUE(ended) << "still waiting for the lock after the cancel";
  std::pair<absl::Status, absl::Status> statuses = results.get();
  EXPECT_EQ(statuses.first.code(), absl::StatusCode::kCancelled)
      << statuses.first;
  EXPECT_EQ(statuses.second.code(), absl::StatusCode::kCancelled)
      << statuses.second;
  EXPECT_EQ(Contents(), original_);
}

TEST(CreateConnectorTest, JsonlNeedsExactlyOneCollection) {
  StoreSpec store;
  store.name = "logs";
  store.kind = "jsonl";
  store.collections = {{"a", {{"email", "email"}}, {}, {}},
                       {"b", {{"email", "e"}}, {}, {}}};
  EXPECT_EQ(CreateConnector(store).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsar
