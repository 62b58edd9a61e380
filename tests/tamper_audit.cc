// dsar-tamper-audit: a test-only tool that edits a stopped dsard's audit log
// behind its back, the way an attacker with write access to the database
// would, so that tests can check that `dsarctl audit verify` notices.
//
//   dsar-tamper-audit --data_dir=D flip-leaf INDEX
//       flips one byte in the middle of audit leaf INDEX;
//   dsar-tamper-audit --data_dir=D truncate KEEP
//       deletes every audit leaf with index >= KEEP, leaving the subtree
//       hashes and the signed checkpoint alone (an attacker who only
//       removes records).
//
// The database is <D>/state, opened with every column family it has; the
// audit column family's layout is in storage/state_store.cc. Run it only
// against a stopped dsard (RocksDB's lock refuses a running one anyway).
// Exit codes: 0 done, 1 failed (nothing changed), 2 bad usage.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int Usage(const char* message) {
  std::fprintf(stderr,
               "dsar-tamper-audit: %s\n"
               "usage: dsar-tamper-audit --data_dir=DIR flip-leaf INDEX\n"
               "       dsar-tamper-audit --data_dir=DIR truncate KEEP\n",
               message);
  return kExitUsage;
}

bool ParseIndex(const std::string& text, uint64_t* value) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  errno = 0;
  unsigned long long parsed = std::strtoull(text.c_str(), nullptr, 10);
  if (errno != 0) return false;
  *value = parsed;
  return true;
}

std::string BigEndian64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

uint64_t ReadBigEndian64(const rocksdb::Slice& bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return value;
}

std::string LeafKey(uint64_t index) { return "L" + BigEndian64(index); }

// The state database with all of its column families open.
class StateDb {
 public:
  ~StateDb() {
    if (db_ == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      db_->DestroyColumnFamilyHandle(handle);
    }
    db_->Close();
    delete db_;
  }

  // Prints the reason and returns false on failure.
  bool Open(const std::string& path) {
    std::vector<std::string> names;
    rocksdb::Status status =
        rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names);
    if (!status.ok()) {
      std::fprintf(stderr, "dsar-tamper-audit: %s: %s\n", path.c_str(),
                   status.ToString().c_str());
      return false;
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DBOptions options;
    options.create_if_missing = false;
    status = rocksdb::DB::Open(options, path, families, &handles_, &db_);
    if (!status.ok()) {
      std::fprintf(stderr, "dsar-tamper-audit: cannot open %s: %s\n",
                   path.c_str(), status.ToString().c_str());
      db_ = nullptr;
      return false;
    }
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "audit") audit_ = handles_[i];
    }
    if (audit_ == nullptr) {
      std::fprintf(stderr,
                   "dsar-tamper-audit: %s has no \"audit\" column family\n",
                   path.c_str());
      return false;
    }
    return true;
  }

  rocksdb::DB* db() { return db_; }
  rocksdb::ColumnFamilyHandle* audit() { return audit_; }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* audit_ = nullptr;
};

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

int FlipLeaf(StateDb& state, uint64_t index) {
  std::string key = LeafKey(index);
  std::string value;
  rocksdb::Status status =
      state.db()->Get(rocksdb::ReadOptions(), state.audit(), key, &value);
  if (!status.ok()) {
    std::fprintf(stderr, "dsar-tamper-audit: audit leaf %llu: %s\n",
                 static_cast<unsigned long long>(index),
                 status.ToString().c_str());
    return kExitFailed;
  }
  if (value.empty()) {
    std::fprintf(stderr, "dsar-tamper-audit: audit leaf %llu is empty\n",
                 static_cast<unsigned long long>(index));
    return kExitFailed;
  }
  size_t offset = value.size() / 2;
  unsigned char before = static_cast<unsigned char>(value[offset]);
  unsigned char after = before ^ 0x01;
  value[offset] = static_cast<char>(after);
  status = state.db()->Put(Synced(), state.audit(), key, value);
  if (!status.ok()) {
    std::fprintf(stderr, "dsar-tamper-audit: writing audit leaf %llu: %s\n",
                 static_cast<unsigned long long>(index),
                 status.ToString().c_str());
    return kExitFailed;
  }
  std::printf("flipped byte %zu of %zu of audit leaf %llu: 0x%02x -> 0x%02x\n",
              offset, value.size(), static_cast<unsigned long long>(index),
              before, after);
  return 0;
}

int Truncate(StateDb& state, uint64_t keep) {
  rocksdb::WriteBatch batch;
  uint64_t deleted = 0, first = 0, last = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      state.db()->NewIterator(rocksdb::ReadOptions(), state.audit()));
  for (it->Seek(LeafKey(keep)); it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() != 9 || key[0] != 'L') break;
    uint64_t index = ReadBigEndian64(rocksdb::Slice(key.data() + 1, 8));
    if (deleted == 0) first = index;
    last = index;
    ++deleted;
    batch.Delete(state.audit(), key);
  }
  if (!it->status().ok()) {
    std::fprintf(stderr, "dsar-tamper-audit: scanning audit leaves: %s\n",
                 it->status().ToString().c_str());
    return kExitFailed;
  }
  it.reset();
  if (deleted == 0) {
    std::printf("no audit leaf at or after %llu; nothing deleted\n",
                static_cast<unsigned long long>(keep));
    return 0;
  }
  rocksdb::Status status = state.db()->Write(Synced(), &batch);
  if (!status.ok()) {
    std::fprintf(stderr, "dsar-tamper-audit: deleting audit leaves: %s\n",
                 status.ToString().c_str());
    return kExitFailed;
  }
  std::printf(
      "deleted %llu audit leaves (%llu to %llu); subtree hashes and the "
      "checkpoint left in place\n",
      static_cast<unsigned long long>(deleted),
      static_cast<unsigned long long>(first),
      static_cast<unsigned long long>(last));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const std::string flag = "--data_dir=";
    if (arg.compare(0, flag.size(), flag) == 0) {
      data_dir = arg.substr(flag.size());
    } else if (arg.compare(0, 2, "--") == 0) {
      return Usage(("unknown flag " + arg).c_str());
    } else {
      positional.push_back(arg);
    }
  }
  if (data_dir.empty()) return Usage("--data_dir is required");
  if (positional.size() != 2) return Usage("takes a command and an index");
  const std::string& command = positional[0];
  if (command != "flip-leaf" && command != "truncate") {
    return Usage(("unknown command " + command).c_str());
  }
  uint64_t index = 0;
  if (!ParseIndex(positional[1], &index)) {
    return Usage(("not an index: " + positional[1]).c_str());
  }

  StateDb state;
  if (!state.Open(data_dir + "/state")) return kExitFailed;
  return command == "flip-leaf" ? FlipLeaf(state, index)
                                : Truncate(state, index);
}
