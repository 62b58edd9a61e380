// dsarctl audit: reads the coordinator's audit log and verifies it with only
// the checkpoint public key. Nothing the server says is trusted: roots are
// recomputed from the entries, proofs are checked against a signed
// checkpoint, and each request's chain of events is followed.

#include "tools/dsarctl/audit.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "common/files.h"
#include "dsar/v1/audit.grpc.pb.h"
#include "dsar/v1/requests.pb.h"
#include "storage/audit/append_leaves.h"
#include "storage/audit/checkpoint.h"
#include "storage/audit/merkle.h"
#include "tools/dsarctl/cli.h"
#include "tools/dsarctl/commands.h"

namespace dsarctl {
namespace {

using dsar::audit::Checkpoint;

constexpr uint32_t kPageSize = 1000;
// Entries hashed together by audit verify, on every core: enough that
// starting the threads costs little (~9 MB of typical entries).
constexpr uint64_t kBatchEntries = 64 * kPageSize;

// A verification failure: printed and turned into kExitError.
int Failed(const std::string& what) {
  std::fprintf(stderr, "dsarctl: audit verification FAILED: %s\n",
               what.c_str());
  return kExitError;
}

std::string Hex(const std::string& bytes) {
  return absl::BytesToHexString(bytes);
}

// The key name of a signed note is its origin, the note's first line.
std::string OriginOf(const std::string& note) {
  return note.substr(0, note.find('\n'));
}

class AuditClient {
 public:
  explicit AuditClient(const Options& options)
      : options_(options),
        stub_(dsar::v1::AuditService::NewStub(OpenChannel(options))) {}

  grpc::Status Checkpoint(dsar::v1::GetCheckpointResponse* response) {
    grpc::ClientContext context;
    options_.Prepare(&context);
    return stub_->GetCheckpoint(&context, dsar::v1::GetCheckpointRequest(),
                                response);
  }
  grpc::Status Entries(uint64_t start, uint32_t count,
                       dsar::v1::GetEntriesResponse* response) {
    grpc::ClientContext context;
    options_.Prepare(&context);
    dsar::v1::GetEntriesRequest request;
    request.set_start(start);
    request.set_count(count);
    return stub_->GetEntries(&context, request, response);
  }
  grpc::Status RequestEntries(const std::string& id,
                              dsar::v1::GetRequestEntriesResponse* response) {
    grpc::ClientContext context;
    options_.Prepare(&context);
    dsar::v1::GetRequestEntriesRequest request;
    request.set_request_id(id);
    return stub_->GetRequestEntries(&context, request, response);
  }
  grpc::Status Inclusion(uint64_t index, uint64_t size,
                         dsar::v1::GetInclusionProofResponse* response) {
    grpc::ClientContext context;
    options_.Prepare(&context);
    dsar::v1::GetInclusionProofRequest request;
    request.set_index(index);
    request.set_tree_size(size);
    return stub_->GetInclusionProof(&context, request, response);
  }
  grpc::Status Consistency(uint64_t first, uint64_t second,
                           dsar::v1::GetConsistencyProofResponse* response) {
    grpc::ClientContext context;
    options_.Prepare(&context);
    dsar::v1::GetConsistencyProofRequest request;
    request.set_first_size(first);
    request.set_second_size(second);
    return stub_->GetConsistencyProof(&context, request, response);
  }

 private:
  const Options& options_;
  std::unique_ptr<dsar::v1::AuditService::Stub> stub_;
};

// Reads --pubkey (or the configured key); false with an error printed
// when there is none.
bool LoadPublicKey(const Options& options, std::string* pem) {
  std::string path = PublicKeyPath(options);
  if (path.empty()) {
    Usage(
        "audit: --pubkey=FILE (the coordinator's checkpoint.key.pub) is "
        "required");
    return false;
  }
  return ReadPublicKey(path, pem);
}

// Where verified checkpoints are remembered: --state-dir, else
// $DSARCTL_STATE_DIR, else $XDG_STATE_HOME/dsarctl, else
// ~/.local/state/dsarctl; "" when none of them is set.
std::string StateDir(const Options& options) {
  std::string dir = options.Flag("state-dir");
  if (!dir.empty()) return dir;
  if (const char* env = std::getenv("DSARCTL_STATE_DIR"); env && *env)
    return env;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg)
    return absl::StrCat(xdg, "/dsarctl");
  if (const char* home = std::getenv("HOME"); home && *home)
    return absl::StrCat(home, "/.local/state/dsarctl");
  return "";
}

// One file per origin: letters, digits, '.', '-' and '_' kept, every other
// byte %XX, so distinct origins never share a file.
std::string RememberedPath(const std::string& state_dir,
                           const std::string& origin) {
  std::string name;
  for (unsigned char c : origin) {
    if (absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_') {
      name.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&name, "%", absl::BytesToHexString(std::string(1, c)));
    }
  }
  return absl::StrCat(state_dir, "/checkpoints/", name);
}

// Trust on first use, as a transparency-log client: the first verified
// checkpoint of an origin is remembered; every later one must extend the
// remembered one (checked with the server's consistency proof), and then
// replaces it. A smaller tree is a rollback, an inconsistent one a fork.
int CheckAndRemember(const Options& options, AuditClient& client,
                     const std::string& public_key, const std::string& note,
                     const Checkpoint& current) {
  std::string state_dir = StateDir(options);
  if (state_dir.empty()) {
    std::fprintf(stderr,
                 "dsarctl: WARNING: no state directory (--state-dir, "
                 "DSARCTL_STATE_DIR, XDG_STATE_HOME or HOME): rollback and "
                 "fork of the audit log are not checked\n");
    return kExitOk;
  }
  std::string path = RememberedPath(state_dir, current.origin);
  std::error_code error;
  bool known = std::filesystem::exists(path, error);
  Checkpoint remembered;
  if (known) {
    absl::StatusOr<std::string> remembered_note = dsar::ReadFile(path);
    if (!remembered_note.ok()) {
      std::fprintf(stderr, "dsarctl: %s\n",
                   std::string(remembered_note.status().message()).c_str());
      return kExitError;
    }
    absl::StatusOr<Checkpoint> parsed = dsar::audit::VerifyCheckpoint(
        *remembered_note, public_key, current.origin);
    if (!parsed.ok()) {
      return Failed(absl::StrCat(
          "the checkpoint remembered for ", current.origin, " (", path,
          ") does not verify with this public key: ", parsed.status().message(),
          ". The log's key changed; remove that file only if the change is "
          "known to be legitimate"));
    }
    remembered = *parsed;
    std::vector<std::string> hashes;
    if (remembered.size > 0 && remembered.size < current.size) {
      dsar::v1::GetConsistencyProofResponse proof;
      grpc::Status status =
          client.Consistency(remembered.size, current.size, &proof);
      if (!status.ok()) return ExitFor(status);
      hashes.assign(proof.proof().begin(), proof.proof().end());
    }
    absl::Status extends =
        dsar::audit::CheckExtends(remembered, current, hashes);
    if (!extends.ok()) {
      return Failed(
          absl::StrCat(extends.message(), " (remembered in ", path, ")"));
    }
  }
  if (!known || current.size > remembered.size) {
    absl::Status written = dsar::MakeDirectories(dsar::DirName(path));
    if (written.ok()) written = dsar::WriteFileAtomically(path, note);
    if (!written.ok()) {
      std::fprintf(stderr, "dsarctl: cannot remember the checkpoint: %s\n",
                   std::string(written.message()).c_str());
      return kExitError;
    }
  }
  return kExitOk;
}

// Fetches the latest checkpoint and checks its signature, then, unless
// `remember` is false (the caller does it after further checks), that it
// extends the checkpoint remembered for its origin.
int FetchVerifiedCheckpoint(const Options& options, AuditClient& client,
                            const std::string& public_key, std::string* note,
                            Checkpoint* checkpoint, bool remember = true) {
  dsar::v1::GetCheckpointResponse response;
  grpc::Status status = client.Checkpoint(&response);
  if (!status.ok()) return ExitFor(status);
  *note = response.checkpoint();
  absl::StatusOr<Checkpoint> verified =
      dsar::audit::VerifyCheckpoint(*note, public_key, OriginOf(*note));
  if (!verified.ok()) {
    return Failed(absl::StrCat(
        "the latest checkpoint does not verify with the public key: ",
        verified.status().message()));
  }
  *checkpoint = *verified;
  if (!remember) return kExitOk;
  return CheckAndRemember(options, client, public_key, *note, *checkpoint);
}

int CheckpointCommand(const Options& options, AuditClient& client) {
  std::string save = options.Flag("save");
  std::string note;
  if (PublicKeyPath(options).empty()) {
    // Only a verified checkpoint is worth keeping.
    if (!save.empty()) {
      return Usage(
          "audit checkpoint --save: --pubkey=FILE is required (only a "
          "verified checkpoint is saved)");
    }
    dsar::v1::GetCheckpointResponse response;
    grpc::Status status = client.Checkpoint(&response);
    if (!status.ok()) return ExitFor(status);
    note = response.checkpoint();
  } else {
    std::string public_key;
    if (!LoadPublicKey(options, &public_key)) return kExitUsage;
    Checkpoint checkpoint;
    if (int code = FetchVerifiedCheckpoint(options, client, public_key, &note,
                                           &checkpoint)) {
      return code;
    }
    if (!save.empty()) {
      absl::Status written = dsar::WriteFileAtomically(save, note);
      if (!written.ok()) {
        std::fprintf(stderr, "dsarctl: --save: %s\n",
                     std::string(written.message()).c_str());
        return kExitError;
      }
      std::fprintf(stderr, "saved verified checkpoint of size %llu to %s\n",
                   static_cast<unsigned long long>(checkpoint.size),
                   save.c_str());
    }
  }
  std::fputs(note.c_str(), stdout);
  return kExitOk;
}

// Checks one entry's inclusion in the checkpoint.
int ProveEntry(AuditClient& client, uint64_t index, const std::string& entry,
               const Checkpoint& checkpoint) {
  dsar::v1::GetInclusionProofResponse proof;
  grpc::Status status = client.Inclusion(index, checkpoint.size, &proof);
  if (!status.ok()) return ExitFor(status);
  std::vector<std::string> hashes(proof.proof().begin(), proof.proof().end());
  absl::Status verified = dsar::merkle::VerifyInclusion(
      index, checkpoint.size, dsar::merkle::LeafHash(entry), hashes,
      checkpoint.root_hash);
  if (!verified.ok()) {
    return Failed(absl::StrCat(
        "entry ", index,
        " is not included in the signed checkpoint: ", verified.message()));
  }
  return kExitOk;
}

// See AuditRequest (audit.h).
int AuditRequestWith(const Options& options, AuditClient& client,
                     const std::string& request_id,
                     const std::string& public_key, RequestAudit* audit) {
  std::string note;
  if (int code = FetchVerifiedCheckpoint(options, client, public_key, &note,
                                         &audit->checkpoint)) {
    return code;
  }
  dsar::v1::GetRequestEntriesResponse entries;
  grpc::Status status = client.RequestEntries(request_id, &entries);
  if (!status.ok()) return ExitFor(status);
  std::string previous_leaf;
  for (int i = 0; i < entries.entries_size(); ++i) {
    const std::string& entry = entries.entries(i);
    AuditedEvent audited;
    audited.log_index = entries.log_indexes(i);
    if (!audited.event.ParseFromString(entry)) {
      return Failed(
          absl::StrCat("entry ", audited.log_index, " is not an event"));
    }
    if (audited.event.previous_leaf_hash() != previous_leaf) {
      return Failed(
          absl::StrCat("entry ", audited.log_index,
                       " does not chain to the request's previous event"));
    }
    if (audited.log_index < audit->checkpoint.size) {
      if (int code =
              ProveEntry(client, audited.log_index, entry, audit->checkpoint)) {
        return code;
      }
      audited.proven = true;
    }
    previous_leaf = dsar::merkle::LeafHash(entry);
    audit->events.push_back(std::move(audited));
  }
  return kExitOk;
}

int EventsCommand(const Options& options, AuditClient& client) {
  if (options.positional.size() != 2)
    return Usage("audit events: takes one request id");
  std::string public_key;
  if (!LoadPublicKey(options, &public_key)) return kExitUsage;
  RequestAudit audit;
  if (int code = AuditRequestWith(options, client, options.positional[1],
                                  public_key, &audit)) {
    return code;
  }
  for (const AuditedEvent& audited : audit.events) {
    const dsar::v1::Event& event = audited.event;
    if (!audited.proven) {
      std::printf("%6llu  (newer than the checkpoint; not yet provable)  %s\n",
                  static_cast<unsigned long long>(audited.log_index),
                  event.kind().c_str());
    } else {
      std::printf("%6llu  proven  #%-3llu %-16s %-18s %-10s %s\n",
                  static_cast<unsigned long long>(audited.log_index),
                  static_cast<unsigned long long>(event.sequence()),
                  event.kind().c_str(), event.state().c_str(),
                  event.store().c_str(), event.detail().c_str());
    }
  }
  std::printf(
      "%zu entries of %s checked against the checkpoint of size %llu (root "
      "%s)\n",
      audit.events.size(), options.positional[1].c_str(),
      static_cast<unsigned long long>(audit.checkpoint.size),
      Hex(audit.checkpoint.root_hash).c_str());
  return kExitOk;
}

int ProveCommand(const Options& options, AuditClient& client) {
  uint64_t index = 0;
  if (options.positional.size() != 2 ||
      !absl::SimpleAtoi(options.positional[1], &index)) {
    return Usage("audit prove: takes one entry index");
  }
  std::string public_key;
  if (!LoadPublicKey(options, &public_key)) return kExitUsage;
  std::string note;
  Checkpoint checkpoint;
  if (int code = FetchVerifiedCheckpoint(options, client, public_key, &note,
                                         &checkpoint))
    return code;
  dsar::v1::GetEntriesResponse entries;
  grpc::Status status = client.Entries(index, 1, &entries);
  if (!status.ok()) return ExitFor(status);
  if (entries.entries_size() != 1)
    return Failed(absl::StrCat("entry ", index, " was not returned"));
  if (int code = ProveEntry(client, index, entries.entries(0), checkpoint))
    return code;
  dsar::v1::Event event;
  event.ParseFromString(entries.entries(0));
  std::printf(
      "entry %llu (%s #%llu %s) is included in the checkpoint of size %llu, "
      "root %s\n",
      static_cast<unsigned long long>(index), event.request_id().c_str(),
      static_cast<unsigned long long>(event.sequence()), event.kind().c_str(),
      static_cast<unsigned long long>(checkpoint.size),
      Hex(checkpoint.root_hash).c_str());
  return kExitOk;
}

// Reads entries [start, start + count) and appends them to `entries`.
// Returns what is wrong when they cannot all be read, naming the first
// missing entry of a log whose checkpoint covers `size` entries.
std::optional<std::string> ReadPage(AuditClient& client, uint64_t start,
                                    uint32_t count, uint64_t size,
                                    std::vector<std::string>& entries) {
  dsar::v1::GetEntriesResponse page;
  grpc::Status status = client.Entries(start, count, &page);
  if (!status.ok()) {
    // Find the first entry that cannot be read, to name it.
    for (uint64_t index = start; index < start + count; ++index) {
      dsar::v1::GetEntriesResponse one;
      grpc::Status single = client.Entries(index, 1, &one);
      if (!single.ok()) {
        return absl::StrCat("entry ", index,
                            " is missing, though the signed checkpoint covers ",
                            size, " entries: entries were removed (",
                            single.error_message(), ")");
      }
    }
    return absl::StrCat("cannot read entries from ", start,
                        " (the checkpoint covers ", size,
                        "): ", status.error_message());
  }
  if (page.entries_size() != static_cast<int>(count)) {
    return absl::StrCat("entries ", start + page.entries_size(), " to ",
                        start + count - 1, " are missing");
  }
  for (std::string& entry : *page.mutable_entries()) {
    entries.push_back(std::move(entry));
  }
  return std::nullopt;
}

int VerifyCommand(const Options& options, AuditClient& client) {
  std::string public_key;
  if (!LoadPublicKey(options, &public_key)) return kExitUsage;
  std::string note;
  Checkpoint checkpoint;
  // The remembered checkpoint is checked last, once the log itself verified,
  // so that an edited entry is named before the fork it also causes.
  if (int code = FetchVerifiedCheckpoint(options, client, public_key, &note,
                                         &checkpoint, /*remember=*/false))
    return code;

  // A checkpoint saved earlier: the log must still extend it.
  std::optional<Checkpoint> saved;
  if (!options.Flag("since").empty()) {
    absl::StatusOr<std::string> saved_note =
        dsar::ReadFile(options.Flag("since"));
    if (!saved_note.ok()) {
      std::fprintf(stderr, "dsarctl: --since: %s\n",
                   std::string(saved_note.status().message()).c_str());
      return kExitUsage;
    }
    absl::StatusOr<Checkpoint> parsed = dsar::audit::VerifyCheckpoint(
        *saved_note, public_key, OriginOf(*saved_note));
    if (!parsed.ok()) {
      return Failed(absl::StrCat("the saved checkpoint does not verify: ",
                                 parsed.status().message()));
    }
    saved = *parsed;
    if (saved->size > checkpoint.size) {
      return Failed(absl::StrCat(
          "the log has ", checkpoint.size, " entries but a checkpoint of ",
          saved->size,
          " was signed earlier: entries were removed (truncation)"));
    }
  }

  dsar::merkle::CompactRange tree;
  std::optional<std::string> saved_prefix_root;
  if (saved && saved->size == 0)
    saved_prefix_root = dsar::merkle::EmptyRootHash();
  struct ChainEnd {
    std::string leaf_hash;
    uint64_t sequence = 0;
    uint64_t index = 0;  // Log index of the request's latest entry so far.
  };
  std::map<std::string, ChainEnd> chains;
  // Entries are read page by page and hashed a batch at a time on every
  // core (merkle::AppendLeaves); then checked one by one in log order.
  std::vector<std::string> batch;
  std::string leaf_hashes, more_leaf_hashes;
  for (uint64_t batch_start = 0; batch_start < checkpoint.size;
       batch_start += kBatchEntries) {
    const uint64_t batch_end =
        std::min<uint64_t>(checkpoint.size, batch_start + kBatchEntries);
    batch.clear();
    // A page that cannot be read is reported once the entries read before
    // it are checked, so that the first problem in log order is named.
    std::optional<std::string> read_failure;
    for (uint64_t start = batch_start; start < batch_end; start += kPageSize) {
      read_failure = ReadPage(client, start,
                              static_cast<uint32_t>(std::min<uint64_t>(
                                  kPageSize, batch_end - start)),
                              checkpoint.size, batch);
      if (read_failure) break;
    }
    auto entries = absl::MakeConstSpan(batch);
    if (saved && saved->size > batch_start &&
        saved->size <= batch_start + entries.size()) {
      // The saved checkpoint's root is the tree's at its size: hash up to
      // there, take the root, hash the rest.
      const uint64_t split = saved->size - batch_start;
      dsar::merkle::AppendLeaves(entries.first(split), 0, tree, &leaf_hashes);
      saved_prefix_root = tree.RootHash();
      dsar::merkle::AppendLeaves(entries.subspan(split), 0, tree,
                                 &more_leaf_hashes);
      leaf_hashes += more_leaf_hashes;
    } else {
      dsar::merkle::AppendLeaves(entries, 0, tree, &leaf_hashes);
    }
    for (uint64_t i = 0; i < entries.size(); ++i) {
      const uint64_t index = batch_start + i;
      const std::string& entry = entries[i];
      dsar::v1::Event event;
      if (!event.ParseFromString(entry)) {
        return Failed(absl::StrCat("entry ", index,
                                   " is not a valid event (altered bytes?)"));
      }
      if (event.log_index() != index) {
        return Failed(absl::StrCat("entry ", index, " claims to be entry ",
                                   event.log_index()));
      }
      ChainEnd& chain = chains[event.request_id()];
      if (event.sequence() != chain.sequence + 1) {
        return Failed(absl::StrCat(
            "entry ", index, " (request ", event.request_id(), ") is event ",
            event.sequence(), " but event ", chain.sequence + 1,
            " was expected: an event is missing or repeated"));
      }
      if (event.previous_leaf_hash() != chain.leaf_hash) {
        return Failed(absl::StrCat(
            "entry ", chain.index, " (request ", event.request_id(), ", event ",
            chain.sequence, ") was altered: entry ", index,
            ", the request's next event, chains to a different hash"));
      }
      chain.leaf_hash = leaf_hashes.substr(i * dsar::merkle::kHashSize,
                                           dsar::merkle::kHashSize);
      chain.sequence = event.sequence();
      chain.index = index;
    }
    if (read_failure) return Failed(*read_failure);
  }
  if (tree.RootHash() != checkpoint.root_hash) {
    return Failed(absl::StrCat(
        "the root recomputed from ", checkpoint.size, " entries (",
        Hex(tree.RootHash()), ") differs from the signed checkpoint root (",
        Hex(checkpoint.root_hash), "): the log was altered"));
  }
  std::string consistency = "";
  if (saved) {
    if (!saved_prefix_root || *saved_prefix_root != saved->root_hash) {
      return Failed(absl::StrCat(
          "the first ", saved->size,
          " entries no longer match the saved checkpoint: history was "
          "rewritten"));
    }
    if (saved->size > 0) {
      dsar::v1::GetConsistencyProofResponse proof;
      grpc::Status status =
          client.Consistency(saved->size, checkpoint.size, &proof);
      if (!status.ok()) return ExitFor(status);
      std::vector<std::string> hashes(proof.proof().begin(),
                                      proof.proof().end());
      absl::Status verified = dsar::merkle::VerifyConsistency(
          saved->size, checkpoint.size, hashes, saved->root_hash,
          checkpoint.root_hash);
      if (!verified.ok()) {
        return Failed(absl::StrCat("the server's consistency proof from ",
                                   saved->size, " to ", checkpoint.size,
                                   " does not verify: ", verified.message()));
      }
    }
    consistency = absl::StrCat(
        "; consistent with the saved checkpoint of size ", saved->size);
  }
  if (int code =
          CheckAndRemember(options, client, public_key, note, checkpoint)) {
    return code;
  }
  std::printf(
      "audit log verified: %llu entries, %zu requests, every chain intact, "
      "root %s, "
      "checkpoint signature valid%s\n",
      static_cast<unsigned long long>(checkpoint.size), chains.size(),
      Hex(checkpoint.root_hash).c_str(), consistency.c_str());
  return kExitOk;
}

}  // namespace

std::string PublicKeyPath(const Options& options) {
  return options.Flag("pubkey", options.pubkey);
}

bool ReadPublicKey(const std::string& path, std::string* pem) {
  absl::StatusOr<std::string> text = dsar::ReadFile(path);
  if (!text.ok()) {
    std::fprintf(stderr, "dsarctl: public key %s: %s\n", path.c_str(),
                 std::string(text.status().message()).c_str());
    return false;
  }
  *pem = std::move(*text);
  return true;
}

int AuditRequest(const Options& options, const std::string& request_id,
                 const std::string& public_key_pem, RequestAudit* audit) {
  AuditClient client(options);
  return AuditRequestWith(options, client, request_id, public_key_pem, audit);
}

int RunAudit(const Options& options) {
  AuditClient client(options);
  std::string sub = options.positional.empty() ? "" : options.positional[0];
  if (sub == "checkpoint") return CheckpointCommand(options, client);
  if (sub == "events") return EventsCommand(options, client);
  if (sub == "prove") return ProveCommand(options, client);
  if (sub == "verify") return VerifyCommand(options, client);
  return Usage(sub.empty()
                   ? "audit: a subcommand is required"
                   : absl::StrCat("audit: unknown subcommand \"", sub, "\""));
}

}  // namespace dsarctl
