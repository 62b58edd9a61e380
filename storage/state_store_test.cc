#include "storage/state_store.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dsar {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kBaseMs = 1'700'000'000'000;

internal::RequestRecord Record(const std::string& id, v1::RequestType type,
                               v1::RequestStatus status, int64_t created_ms) {
  internal::RequestRecord record;
  v1::Request* request = record.mutable_request();
  request->set_id(id);
  request->set_type(type);
  request->set_status(status);
  request->mutable_created_at()->set_seconds(created_ms / 1000);
  request->mutable_created_at()->set_nanos(
      static_cast<int32_t>(created_ms % 1000) * 1000000);
  return record;
}

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (fs::temp_directory_path() / "state_store_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void Open() {
    store_.reset();
    if (ring_ == nullptr) {
      absl::StatusOr<std::unique_ptr<FileKeyRing>> ring =
          FileKeyRing::Open(dir_ + "/kek");
      ASSERT_TRUE(ring.ok()) << ring.status();
      ring_ = std::move(*ring);
    }
    absl::StatusOr<std::unique_ptr<StateStore>> store =
        StateStore::Open(dir_ + "/state", ring_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void Put(internal::RequestRecord record, v1::RequestStatus previous_status) {
    StateBatch batch = store_->NewBatch();
    batch.PutRequest(&record, previous_status);
    absl::Status status = store_->Commit(batch);
    ASSERT_TRUE(status.ok()) << status;
  }

  std::vector<std::string> List(const RequestFilter& filter, int limit,
                                const std::string& token,
                                std::string* next_token) {
    std::vector<internal::RequestRecord> records;
    absl::Status status =
        store_->ListRequests(filter, limit, token, &records, next_token);
    EXPECT_TRUE(status.ok()) << status;
    std::vector<std::string> ids;
    for (const internal::RequestRecord& record : records)
      ids.push_back(record.request().id());
    return ids;
  }

  // Every page of a listing, in order.
  std::vector<std::vector<std::string>> Pages(const RequestFilter& filter,
                                              int limit) {
    std::vector<std::vector<std::string>> pages;
    std::string token;
    for (int n = 0; n < 100; ++n) {
      std::string next;
      pages.push_back(List(filter, limit, token, &next));
      if (next.empty()) break;
      token = next;
    }
    return pages;
  }

  std::vector<std::string> LiveIds() {
    std::vector<std::string> ids;
    absl::Status status = store_->ForEachLiveRequest(
        [&](internal::RequestRecord record) -> absl::Status {
          ids.push_back(record.request().id());
          return absl::OkStatus();
        });
    EXPECT_TRUE(status.ok()) << status;
    return ids;
  }

  std::string dir_;
  std::unique_ptr<FileKeyRing> ring_;  // Outlives store_.
  std::unique_ptr<StateStore> store_;
};

RequestFilter StatusFilter(v1::RequestStatus status) {
  RequestFilter filter;
  filter.status = status;
  return filter;
}

// A second open of a database that is open (here, in this process) used to
// crash in ~StateStore with a null db_; it is now a plain error naming it.
TEST_F(StateStoreTest, SecondOpenOfAnOpenDatabaseIsFailedPrecondition) {
  absl::StatusOr<std::unique_ptr<StateStore>> second =
      StateStore::Open(dir_ + "/state", ring_.get());
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition)
      << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr(dir_ + "/state"));
  // The first handle is unaffected.
  Put(Record("r1", v1::ACCESS, v1::RECEIVED, kBaseMs),
      v1::REQUEST_STATUS_UNSPECIFIED);
  EXPECT_TRUE(store_->GetRequest("r1").ok());
}

// Another process holding the LOCK file (as a running dsard does) is named
// by its pid.
TEST_F(StateStoreTest, DatabaseLockedByAnotherProcessNamesTheHolder) {
  store_.reset();
  const std::string lock_path = dir_ + "/state/LOCK";
  int locked[2];
  ASSERT_EQ(::pipe(locked), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe calls: the parent has threads.
    const int fd = ::open(lock_path.c_str(), O_RDWR);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    const char ok = (fd >= 0 && ::fcntl(fd, F_SETLK, &lock) == 0) ? 'y' : 'n';
    (void)!::write(locked[1], &ok, 1);
    ::pause();  // Until the parent kills it; the lock goes with it.
    ::_exit(0);
  }
  ::close(locked[1]);
  char ok = 0;
  ASSERT_EQ(::read(locked[0], &ok, 1), 1);
  ::close(locked[0]);
  absl::StatusOr<std::unique_ptr<StateStore>> store =
      StateStore::Open(dir_ + "/state", ring_.get());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_EQ(ok, 'y') << "the child could not lock " << lock_path;
  ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition)
      << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(dir_ + "/state"));
  EXPECT_THAT(store.status().message(),
              HasSubstr(absl::StrCat("process ", child)));
  // With the holder gone the database opens again.
  Open();
}

// Leaves and subtree hashes read in bulk: an iterator over a range of
// leaves (past the 256th, where big-endian order matters), a MultiGet of
// hashes; a gap is NOT_FOUND naming it.
TEST_F(StateStoreTest, AuditLeavesAndHashesAreReadInBulk) {
  StateBatch batch = store_->NewBatch();
  for (uint64_t i = 0; i < 600; ++i) {
    if (i == 550) continue;  // A gap.
    batch.PutAuditLeaf(i, absl::StrCat("leaf ", i));
  }
  batch.PutAuditHash(0, 7, std::string(32, 'a'));
  batch.PutAuditHash(10, 1, std::string(32, 'b'));
  ASSERT_TRUE(store_->Commit(batch).ok());

  std::vector<std::string> leaves;
  ASSERT_TRUE(store_->GetAuditLeaves(250, 300, &leaves).ok());
  ASSERT_EQ(leaves.size(), 50u);
  EXPECT_EQ(leaves.front(), "leaf 250");
  EXPECT_EQ(leaves.back(), "leaf 299");
  leaves.clear();
  absl::Status gap = store_->GetAuditLeaves(540, 560, &leaves);
  EXPECT_EQ(gap.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(gap.message()), HasSubstr("audit leaf 550"));
  leaves.clear();
  EXPECT_EQ(store_->GetAuditLeaves(599, 601, &leaves).code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<std::vector<std::string>> scattered =
      store_->GetAuditLeavesAt({5, 549, 3});
  ASSERT_TRUE(scattered.ok()) << scattered.status();
  EXPECT_EQ(*scattered,
            (std::vector<std::string>{"leaf 5", "leaf 549", "leaf 3"}));
  absl::StatusOr<std::vector<std::string>> missing =
      store_->GetAuditLeavesAt({3, 550});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("audit leaf 550"));

  absl::StatusOr<std::vector<std::string>> hashes =
      store_->GetAuditHashes({{10, 1}, {0, 7}});
  ASSERT_TRUE(hashes.ok()) << hashes.status();
  EXPECT_EQ((*hashes)[0], std::string(32, 'b'));
  EXPECT_EQ((*hashes)[1], std::string(32, 'a'));
  EXPECT_EQ(store_->GetAuditHashes({{0, 7}, {3, 3}}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StateStoreTest, ScanAuditHashesReadsOneLevelsRangeSkippingGaps) {
  StateBatch batch = store_->NewBatch();
  for (uint64_t i = 0; i < 300; ++i) {
    if (i == 260) continue;  // A gap.
    batch.PutAuditHash(6, i, std::string(32, static_cast<char>(i)));
  }
  // Neighbouring levels and the leaves must not be read.
  batch.PutAuditHash(5, 256, std::string(32, 'x'));
  batch.PutAuditHash(7, 0, std::string(32, 'y'));
  batch.PutAuditLeaf(256, "leaf");
  ASSERT_TRUE(store_->Commit(batch).ok());

  std::vector<std::pair<uint64_t, std::string>> hashes;
  ASSERT_TRUE(store_->ScanAuditHashes(6, 256, 512, &hashes).ok());
  ASSERT_EQ(hashes.size(), 43u);  // 256..299 without 260.
  EXPECT_EQ(hashes.front().first, 256u);
  EXPECT_EQ(hashes.front().second, std::string(32, static_cast<char>(256)));
  EXPECT_EQ(hashes[4].first, 261u);
  EXPECT_EQ(hashes.back().first, 299u);
  hashes.clear();
  ASSERT_TRUE(store_->ScanAuditHashes(6, 10, 12, &hashes).ok());
  ASSERT_EQ(hashes.size(), 2u);
  EXPECT_EQ(hashes[1].first, 11u);
  hashes.clear();
  ASSERT_TRUE(store_->ScanAuditHashes(8, 0, 256, &hashes).ok());
  EXPECT_TRUE(hashes.empty());
  ASSERT_TRUE(store_->ScanAuditHashes(6, 5, 5, &hashes).ok());
  EXPECT_TRUE(hashes.empty());
}

TEST_F(StateStoreTest, WaitsForBackgroundWorkToSettle) {
  for (int round = 0; round < 3; ++round) {
    StateBatch batch = store_->NewBatch();
    for (uint64_t i = 0; i < 2000; ++i) {
      batch.PutAuditLeaf(round * 2000 + i, std::string(100, 'x'));
    }
    ASSERT_TRUE(store_->Commit(batch).ok());
  }
  EXPECT_TRUE(store_->Scrub().ok());  // Flushes: background work to wait for.
  EXPECT_TRUE(store_->WaitForBackgroundWork(absl::Seconds(30)));
  EXPECT_TRUE(store_->WaitForBackgroundWork(absl::ZeroDuration()));
}

TEST_F(StateStoreTest, GetRequestRoundTripsAndMissesWithNotFound) {
  internal::RequestRecord record =
      Record("r1", v1::ACCESS, v1::RUNNING, kBaseMs);
  record.set_next_event_sequence(7);
  Put(record, v1::REQUEST_STATUS_UNSPECIFIED);
  absl::StatusOr<internal::RequestRecord> read = store_->GetRequest("r1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), record.SerializeAsString());
  EXPECT_EQ(store_->GetRequest("r2").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StateStoreTest, StatusIndexMovesWithTheRequest) {
  internal::RequestRecord record =
      Record("r1", v1::ACCESS, v1::RECEIVED, kBaseMs);
  Put(record, v1::REQUEST_STATUS_UNSPECIFIED);
  std::string next;
  EXPECT_THAT(List(StatusFilter(v1::RECEIVED), 10, "", &next),
              ElementsAre("r1"));

  record.mutable_request()->set_status(v1::RUNNING);
  Put(record, v1::RECEIVED);
  EXPECT_THAT(List(StatusFilter(v1::RECEIVED), 10, "", &next), IsEmpty());
  EXPECT_THAT(List(StatusFilter(v1::RUNNING), 10, "", &next),
              ElementsAre("r1"));
  // Same status again: still listed once.
  Put(record, v1::RUNNING);
  EXPECT_THAT(List(StatusFilter(v1::RUNNING), 10, "", &next),
              ElementsAre("r1"));

  record.mutable_request()->set_status(v1::COMPLETED);
  Put(record, v1::RUNNING);
  EXPECT_THAT(List(StatusFilter(v1::RUNNING), 10, "", &next), IsEmpty());
  EXPECT_THAT(List(StatusFilter(v1::COMPLETED), 10, "", &next),
              ElementsAre("r1"));
  // The unfiltered listing holds every request exactly once.
  EXPECT_THAT(List(RequestFilter(), 10, "", &next), ElementsAre("r1"));
  EXPECT_EQ(store_->GetRequest("r1")->request().status(), v1::COMPLETED);
}

TEST_F(StateStoreTest, LiveSetExcludesTerminalRequests) {
  Put(Record("running", v1::ACCESS, v1::RUNNING, kBaseMs),
      v1::REQUEST_STATUS_UNSPECIFIED);
  Put(Record("received", v1::ERASURE, v1::RECEIVED, kBaseMs + 1),
      v1::REQUEST_STATUS_UNSPECIFIED);
  // Stored terminal from the start (e.g. failed on its first step).
  Put(Record("failed", v1::ACCESS, v1::FAILED, kBaseMs + 2),
      v1::REQUEST_STATUS_UNSPECIFIED);
  EXPECT_THAT(LiveIds(),
              ::testing::UnorderedElementsAre("running", "received"));

  for (v1::RequestStatus terminal : {v1::COMPLETED, v1::CANCELLED}) {
    internal::RequestRecord record =
        Record("running", v1::ACCESS, v1::RUNNING, kBaseMs);
    Put(record, v1::REQUEST_STATUS_UNSPECIFIED);
    record.mutable_request()->set_status(terminal);
    Put(record, v1::RUNNING);
    EXPECT_THAT(LiveIds(), ElementsAre("received"));
  }

  // The live set is durable.
  Open();
  EXPECT_THAT(LiveIds(), ElementsAre("received"));
  EXPECT_TRUE(store_->GetRequest("running").ok());
}

TEST_F(StateStoreTest, ListsOldestFirstAndFiltersByType) {
  // Written out of order; listed by creation time, ties broken by id.
  Put(Record("r3", v1::ERASURE, v1::RUNNING, kBaseMs + 30),
      v1::REQUEST_STATUS_UNSPECIFIED);
  Put(Record("r1", v1::ACCESS, v1::RUNNING, kBaseMs + 10),
      v1::REQUEST_STATUS_UNSPECIFIED);
  Put(Record("r2b", v1::ACCESS, v1::COMPLETED, kBaseMs + 20),
      v1::REQUEST_STATUS_UNSPECIFIED);
  Put(Record("r2a", v1::PORTABILITY, v1::RUNNING, kBaseMs + 20),
      v1::REQUEST_STATUS_UNSPECIFIED);
  std::string next;
  EXPECT_THAT(List(RequestFilter(), 10, "", &next),
              ElementsAre("r1", "r2a", "r2b", "r3"));
  EXPECT_TRUE(next.empty());

  RequestFilter access;
  access.type = v1::ACCESS;
  EXPECT_THAT(List(access, 10, "", &next), ElementsAre("r1", "r2b"));
  RequestFilter running_access = access;
  running_access.status = v1::RUNNING;
  EXPECT_THAT(List(running_access, 10, "", &next), ElementsAre("r1"));
}

TEST_F(StateStoreTest, PaginatesWithoutGapsOrDuplicates) {
  for (int i = 0; i < 5; ++i) {
    Put(Record("r" + std::to_string(i), v1::ACCESS, v1::RUNNING,
               kBaseMs + 1000 * i),
        v1::REQUEST_STATUS_UNSPECIFIED);
  }
  EXPECT_THAT(Pages(RequestFilter(), 2),
              ElementsAre(ElementsAre("r0", "r1"), ElementsAre("r2", "r3"),
                          ElementsAre("r4")));
  EXPECT_THAT(Pages(StatusFilter(v1::RUNNING), 5),
              ElementsAre(ElementsAre("r0", "r1", "r2", "r3", "r4")));
  EXPECT_THAT(Pages(RequestFilter(), 1).size(), 5u);
}

TEST_F(StateStoreTest, NoNextTokenWhenOnlyNonMatchingEntriesFollow) {
  Put(Record("r0", v1::ACCESS, v1::RUNNING, kBaseMs),
      v1::REQUEST_STATUS_UNSPECIFIED);
  Put(Record("r1", v1::ACCESS, v1::RUNNING, kBaseMs + 1),
      v1::REQUEST_STATUS_UNSPECIFIED);
  Put(Record("r2", v1::ERASURE, v1::RUNNING, kBaseMs + 2),
      v1::REQUEST_STATUS_UNSPECIFIED);
  RequestFilter access;
  access.type = v1::ACCESS;
  EXPECT_THAT(Pages(access, 2), ElementsAre(ElementsAre("r0", "r1")));
}

TEST_F(StateStoreTest, PageTokenSeesRequestsAddedSincePreviousPage) {
  Put(Record("r0", v1::ACCESS, v1::RUNNING, kBaseMs),
      v1::REQUEST_STATUS_UNSPECIFIED);
  Put(Record("r1", v1::ACCESS, v1::RUNNING, kBaseMs + 1),
      v1::REQUEST_STATUS_UNSPECIFIED);
  std::string next;
  EXPECT_THAT(List(RequestFilter(), 1, "", &next), ElementsAre("r0"));
  ASSERT_FALSE(next.empty());
  Put(Record("r2", v1::ACCESS, v1::RUNNING, kBaseMs + 2),
      v1::REQUEST_STATUS_UNSPECIFIED);
  std::string last;
  EXPECT_THAT(List(RequestFilter(), 5, next, &last), ElementsAre("r1", "r2"));
  EXPECT_TRUE(last.empty());
}

TEST_F(StateStoreTest, BadPageTokenIsInvalidArgument) {
  for (int i = 0; i < 3; ++i) {
    Put(Record("r" + std::to_string(i), v1::ACCESS, v1::RUNNING, kBaseMs + i),
        v1::REQUEST_STATUS_UNSPECIFIED);
  }
  std::vector<internal::RequestRecord> records;
  std::string next;
  EXPECT_EQ(
      store_->ListRequests(RequestFilter(), 1, "not base64 !!", &records, &next)
          .code(),
      absl::StatusCode::kInvalidArgument);
  // A token of one listing does not continue another.
  std::string running_token;
  List(StatusFilter(v1::RUNNING), 1, "", &running_token);
  ASSERT_FALSE(running_token.empty());
  EXPECT_EQ(
      store_->ListRequests(RequestFilter(), 1, running_token, &records, &next)
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_
                ->ListRequests(StatusFilter(v1::COMPLETED), 1, running_token,
                               &records, &next)
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StateStoreTest, EventsListInSequenceOrderPerRequest) {
  StateBatch batch = store_->NewBatch();
  // "r1x" shares a prefix with "r1": its events must not leak into r1's.
  // Each event is stored once, as the audit leaf its index entry points to.
  uint64_t log_index = 0;
  for (const std::string id : {"r1", "r1x"}) {
    for (uint64_t sequence = 12; sequence >= 1; --sequence) {
      v1::Event event;
      event.set_request_id(id);
      event.set_sequence(sequence);
      event.set_kind("k" + std::to_string(sequence));
      event.set_log_index(log_index++);
      batch.PutAuditLeaf(event.log_index(), event.SerializeAsString());
      batch.PutEvent(event);
    }
  }
  ASSERT_TRUE(store_->Commit(batch).ok());

  std::vector<v1::Event> events;
  bool more = false;
  ASSERT_TRUE(store_->ListEvents("r1", 0, 5, &events, &more).ok());
  ASSERT_EQ(events.size(), 5u);
  EXPECT_TRUE(more);
  EXPECT_EQ(events[0].sequence(), 1u);
  EXPECT_EQ(events[4].sequence(), 5u);
  EXPECT_EQ(events[4].kind(), "k5");

  ASSERT_TRUE(store_->ListEvents("r1", 10, 5, &events, &more).ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(more);
  EXPECT_EQ(events[0].sequence(), 11u);
  EXPECT_EQ(events[1].sequence(), 12u);
  EXPECT_EQ(events[1].request_id(), "r1");

  // Exactly a page left: no more.
  ASSERT_TRUE(store_->ListEvents("r1", 7, 5, &events, &more).ok());
  EXPECT_EQ(events.size(), 5u);
  EXPECT_FALSE(more);

  ASSERT_TRUE(store_->ListEvents("r", 0, 100, &events, &more).ok());
  EXPECT_TRUE(events.empty());
}

TEST_F(StateStoreTest, IdempotencyKeysAndDefinitions) {
  EXPECT_FALSE(store_->GetIdempotencyKey("k1")->has_value());
  EXPECT_FALSE(store_->GetDefinition("dsar@abc")->has_value());
  StateBatch batch = store_->NewBatch();
  batch.PutIdempotencyKey("k1", "r1");
  internal::DefinitionRecord definition;
  definition.set_version("dsar@abc");
  definition.set_json("{}");
  batch.PutDefinition(definition);
  EXPECT_EQ(batch.Count(), 2);
  ASSERT_TRUE(store_->Commit(batch).ok());

  Open();
  absl::StatusOr<std::optional<std::string>> key =
      store_->GetIdempotencyKey("k1");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->value_or(""), "r1");
  absl::StatusOr<std::optional<internal::DefinitionRecord>> stored =
      store_->GetDefinition("dsar@abc");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->json(), "{}");
}

// A record with every personal field filled in.
internal::RequestRecord PersonalRecord(const std::string& id) {
  internal::RequestRecord record =
      Record(id, v1::ERASURE, v1::COMPLETED, kBaseMs);
  v1::Request* request = record.mutable_request();
  v1::SubjectIdentity* email = request->add_identities();
  email->set_type(v1::EMAIL);
  email->set_value("grace.hopper@example.com");
  v1::FieldCorrection* correction = request->add_corrections();
  correction->set_field("street");
  correction->set_value("12 Lovelace Lane");
  v1::SubjectIdentity* phone = record.add_discovered();
  phone->set_type(v1::PHONE);
  phone->set_value("+15550104242");
  (*record.mutable_notes())[3] = "asked by Grace Hopper in person";
  request->mutable_verification()->set_evidence_ref("passport GH-1906");
  request->set_extension_reason("Grace Hopper sent 40 GB of mail");
  request->set_cause("cancelled: Grace Hopper withdrew");
  return record;
}

// Every file under `dir` that contains `needle` in its raw bytes.
std::vector<std::string> FilesContaining(const std::string& dir,
                                         const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos)
      found.push_back(entry.path().string());
  }
  return found;
}

TEST_F(StateStoreTest, PersonalFieldsRoundTripButAreSealedOnDisk) {
  internal::RequestRecord record = PersonalRecord("r1");
  Put(record, v1::REQUEST_STATUS_UNSPECIFIED);
  absl::StatusOr<internal::RequestRecord> read = store_->GetRequest("r1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), record.SerializeAsString());
  EXPECT_TRUE(read->sealed_personal().empty());
  // Flushed to SST files and with the WAL: no personal value in clear.
  Open();
  ASSERT_TRUE(store_->Scrub().ok());
  for (const char* value : {"grace.hopper@example.com", "12 Lovelace Lane",
                            "+15550104242", "Grace Hopper", "GH-1906"}) {
    EXPECT_THAT(FilesContaining(dir_, value), IsEmpty()) << value;
  }
  EXPECT_EQ(store_->GetRequest("r1")->SerializeAsString(),
            record.SerializeAsString());
}

TEST_F(StateStoreTest, PutRequestReturnsTheRecordAsItCame) {
  internal::RequestRecord record = PersonalRecord("r1");
  const std::string before = record.SerializeAsString();
  StateBatch batch = store_->NewBatch();
  batch.PutRequest(&record, v1::REQUEST_STATUS_UNSPECIFIED);
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_EQ(record.SerializeAsString(), before);
}

TEST_F(StateStoreTest, UnchangedPersonalFieldsAreNotSealedAgain) {
  internal::RequestRecord record = PersonalRecord("r1");
  SealedPersonalFields last_sealed;
  auto put = [&](v1::RequestStatus previous_status) {
    StateBatch batch = store_->NewBatch();
    batch.PutRequest(&record, previous_status, &last_sealed);
    absl::Status status = store_->Commit(batch);
    ASSERT_TRUE(status.ok()) << status;
  };
  put(v1::REQUEST_STATUS_UNSPECIFIED);
  const std::string first = last_sealed.sealed;
  ASSERT_FALSE(first.empty());

  // Only non-personal fields changed: the same sealed bytes (a new seal
  // would carry a new nonce).
  record.mutable_request()->set_status(v1::RUNNING);
  put(v1::COMPLETED);
  EXPECT_EQ(last_sealed.sealed, first);

  // A personal field changed: sealed again, and read back as changed.
  record.add_discovered()->set_value("+15550109999");
  put(v1::RUNNING);
  EXPECT_NE(last_sealed.sealed, first);
  absl::StatusOr<internal::RequestRecord> read = store_->GetRequest("r1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), record.SerializeAsString());

  // Destroyed: nothing personal is stored, and the memo is dropped.
  record.mutable_request()->mutable_personal_data_destroyed_at()->set_seconds(
      1);
  StateBatch batch = store_->NewBatch();
  batch.DestroyDataKey("r1");
  batch.PutRequest(&record, v1::RUNNING, &last_sealed);
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_TRUE(last_sealed.sealed.empty());
  EXPECT_TRUE(last_sealed.plaintext.empty());
  EXPECT_THAT(store_->GetRequest("r1")->discovered(), IsEmpty());
}

TEST_F(StateStoreTest, DestroyedDataKeyLeavesTheOtherFactsOnly) {
  Put(PersonalRecord("r1"), v1::REQUEST_STATUS_UNSPECIFIED);
  absl::StatusOr<std::string> key = store_->DataKey("r1");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->size(), 32u);

  internal::RequestRecord destroyed = *store_->GetRequest("r1");
  destroyed.mutable_request()
      ->mutable_personal_data_destroyed_at()
      ->set_seconds(1);
  StateBatch batch = store_->NewBatch();
  batch.DestroyDataKey("r1");
  batch.PutRequest(&destroyed, v1::COMPLETED);
  ASSERT_TRUE(store_->Commit(batch).ok());

  EXPECT_EQ(store_->DataKey("r1").status().code(), absl::StatusCode::kNotFound);
  for (bool reopened : {false, true}) {
    if (reopened) Open();
    absl::StatusOr<internal::RequestRecord> read = store_->GetRequest("r1");
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_THAT(read->request().identities(), IsEmpty());
    EXPECT_THAT(read->request().corrections(), IsEmpty());
    EXPECT_THAT(read->discovered(), IsEmpty());
    EXPECT_TRUE(read->notes().empty());
    EXPECT_EQ(read->request().cause(), "");
    EXPECT_EQ(read->request().verification().evidence_ref(), "");
    EXPECT_EQ(read->request().type(), v1::ERASURE);
    EXPECT_EQ(read->request().status(), v1::COMPLETED);
  }
}

// A sealed record whose key is gone (lost, not destroyed on purpose) is an
// error naming the request, never a record silently without identities.
TEST_F(StateStoreTest, SealedRecordWithoutItsKeyIsDataLoss) {
  Put(PersonalRecord("r1"), v1::REQUEST_STATUS_UNSPECIFIED);
  StateBatch batch = store_->NewBatch();
  batch.DestroyDataKey("r1");
  ASSERT_TRUE(store_->Commit(batch).ok());
  absl::Status status = store_->GetRequest("r1").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("r1"));
}

TEST_F(StateStoreTest, RecordsWrittenBeforeAKeyRotationStayReadable) {
  internal::RequestRecord before = PersonalRecord("r1");
  Put(before, v1::REQUEST_STATUS_UNSPECIFIED);
  ASSERT_EQ(*ring_->Rotate(), "2");
  internal::RequestRecord after = PersonalRecord("r2");
  Put(after, v1::REQUEST_STATUS_UNSPECIFIED);
  ring_.reset();
  Open();  // A fresh ring and store: nothing cached.
  EXPECT_EQ(store_->GetRequest("r1")->SerializeAsString(),
            before.SerializeAsString());
  EXPECT_EQ(store_->GetRequest("r2")->SerializeAsString(),
            after.SerializeAsString());
  // Re-wrapping moves the old key under the active KEK; then KEK 1 can go.
  absl::StatusOr<int64_t> rewrapped = store_->RewrapDataKeys();
  ASSERT_TRUE(rewrapped.ok()) << rewrapped.status();
  EXPECT_EQ(*rewrapped, 1);
  store_.reset();
  ring_.reset();
  fs::remove(dir_ + "/kek/kek-1.key");
  Open();
  EXPECT_EQ(store_->GetRequest("r1")->SerializeAsString(),
            before.SerializeAsString());
}

}  // namespace
}  // namespace dsar
