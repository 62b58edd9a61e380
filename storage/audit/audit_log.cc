#include "storage/audit/audit_log.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace dsar {
namespace {

constexpr uint32_t kMaxEntriesPerCall = 1000;

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

// The origin of a signed note is its first line.
std::string OriginOf(const std::string& note) {
  return note.substr(0, note.find('\n'));
}

}  // namespace

std::string AuditLog::DefaultWitnessPath(const std::string& data_dir,
                                         const std::string& keys_dir) {
  if (keys_dir.empty()) return "";
  std::error_code error;
  std::filesystem::path data = std::filesystem::weakly_canonical(
      std::filesystem::absolute(data_dir, error), error);
  std::filesystem::path keys = std::filesystem::weakly_canonical(
      std::filesystem::absolute(keys_dir, error), error);
  if (error) return "";
  std::filesystem::path relative = keys.lexically_relative(data);
  bool inside = relative.empty() || relative == "." ||
                *relative.begin() != std::filesystem::path("..");
  if (inside) return "";
  return (keys / "checkpoint.witness").string();
}

std::string AuditLog::DerivedOrigin(const audit::CheckpointSigner& signer) {
  Sha256 hash;
  hash.Update(signer.public_key_raw());
  return absl::StrCat("dsar.local/audit/",
                      absl::BytesToHexString(hash.FinishRaw().substr(0, 8)));
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    const StateStore* store, Options options) {
  if (options.signer == nullptr)
    return absl::InvalidArgumentError("audit log: signer required");
  if (options.hmac_key.size() < 16) {
    return absl::InvalidArgumentError(
        "audit log: hmac key of at least 16 bytes required");
  }
  ASSIGN_OR_RETURN(auto checkpoint, store->GetAuditCheckpoint());
  // The origin names the log for every client that pins it, so it never
  // changes once a checkpoint is stored.
  std::string stored_origin =
      checkpoint.second.empty() ? "" : OriginOf(checkpoint.second);
  if (options.origin.empty()) {
    options.origin =
        stored_origin.empty() ? DerivedOrigin(*options.signer) : stored_origin;
  } else if (!stored_origin.empty() && stored_origin != options.origin) {
    return absl::FailedPreconditionError(absl::StrCat(
        "audit log: its checkpoints have the origin \"", stored_origin,
        "\"; origin \"", options.origin,
        "\" would present it as another log (omit --audit_origin to keep "
        "the stored one)"));
  }
  if (options.signer->key_name() != options.origin)
    RETURN_IF_ERROR(options.signer->SetKeyName(options.origin));
  std::unique_ptr<AuditLog> log(new AuditLog(store, std::move(options)));
  uint64_t size = checkpoint.first;
  absl::StatusOr<std::vector<std::string>> nodes =
      log->FetchSubtrees(merkle::CompactRange::DecompositionOf(size));
  if (!nodes.ok()) {
    return absl::DataLossError(
        absl::StrCat("audit log of size ", size,
                     " cannot be reopened: ", nodes.status().message()));
  }
  ASSIGN_OR_RETURN(log->edge_,
                   merkle::CompactRange::FromNodes(size, *std::move(nodes)));
  if (size > 0) {
    // The edge extends every later checkpoint: it must be the tree the last
    // one signed, or dsard would sign a fork of its own log.
    ASSIGN_OR_RETURN(audit::Checkpoint signed_checkpoint,
                     audit::ParseCheckpointNote(checkpoint.second));
    if (signed_checkpoint.size != size ||
        signed_checkpoint.root_hash != log->edge_.RootHash()) {
      return absl::DataLossError(absl::StrCat(
          "audit log of size ", size,
          " cannot be reopened: its stored leaves and subtree hashes do not "
          "make the tree its signed checkpoint names (altered or lost)"));
    }
  }
  log->sealed_size_ = size;
  RETURN_IF_ERROR(log->CheckWitness());
  RETURN_IF_ERROR(log->GetCheckpoint().status());  // Records the witness.
  return log;
}

AuditLog::~AuditLog() {
  if (options_.witness_path.empty()) return;
  absl::StatusOr<std::pair<uint64_t, std::string>> checkpoint =
      store_->GetAuditCheckpoint();
  absl::Status recorded = checkpoint.status();
  if (recorded.ok() && !checkpoint->second.empty())
    recorded = RecordWitness(checkpoint->first, checkpoint->second);
  if (!recorded.ok()) {
    std::fprintf(stderr, "audit log: checkpoint witness %s not updated: %s\n",
                 options_.witness_path.c_str(), recorded.ToString().c_str());
  }
}

absl::Status AuditLog::CheckWitness() const {
  const std::string& path = options_.witness_path;
  if (path.empty()) return absl::OkStatus();
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint witness ", path, ": ", error.message()));
    }
    std::lock_guard<std::mutex> lock(witness_mu_);
    witness_checked_ = true;  // First start with this witness.
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::string note, ReadFile(path));
  absl::StatusOr<audit::Checkpoint> witnessed = audit::VerifyCheckpoint(
      note, options_.signer->public_key_pem(), OriginOf(note));
  if (!witnessed.ok() || witnessed->origin != options_.origin) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint witness ", path, " is not a checkpoint of this log (",
        options_.origin, "): ",
        witnessed.ok() ? absl::StrCat("origin ", witnessed->origin)
                       : witnessed.status().message(),
        ". Another deployment's witness, or the signing key was replaced; "
        "point --checkpoint_witness elsewhere"));
  }
  audit::Checkpoint current;
  current.origin = options_.origin;
  current.size = edge_.size();
  current.root_hash = edge_.RootHash();
  std::vector<std::string> proof;
  if (witnessed->size > 0 && witnessed->size < current.size) {
    ASSIGN_OR_RETURN(proof,
                     merkle::ConsistencyProof(StoredSubtrees(), witnessed->size,
                                              current.size));
  }
  absl::Status extends = audit::CheckExtends(*witnessed, current, proof);
  if (!extends.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        extends.message(), ". The checkpoint witness ", path,
        " holds the last checkpoint this log handed out; refusing to sign a "
        "history that contradicts it. Restore the newest copy of the data "
        "directory, or, if the loss is accepted and recorded, move the "
        "witness file away"));
  }
  std::lock_guard<std::mutex> lock(witness_mu_);
  witness_checked_ = true;
  witnessed_ = true;
  witnessed_size_ = witnessed->size;
  return absl::OkStatus();
}

absl::Status AuditLog::RecordWitness(uint64_t size,
                                     const std::string& note) const {
  if (options_.witness_path.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(witness_mu_);
  // A log refused by CheckWitness must not overwrite the witness it failed.
  if (!witness_checked_) return absl::OkStatus();
  if (witnessed_ && size <= witnessed_size_) return absl::OkStatus();
  RETURN_IF_ERROR(MakeDirectories(DirName(options_.witness_path)));
  absl::Status written = WriteFileAtomically(options_.witness_path, note);
  if (!written.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot record the checkpoint witness: ", written.message()));
  }
  witnessed_ = true;
  witnessed_size_ = size;
  return absl::OkStatus();
}

std::string AuditLog::Append(StateBatch& batch, v1::Event* event) {
  uint64_t index = edge_.size();
  event->set_log_index(index);
  std::string entry = DeterministicBytes(*event);
  std::string leaf_hash = merkle::LeafHash(entry);
  batch.PutAuditLeaf(index, entry);
  edge_.Append(leaf_hash, [this, &batch](int level, uint64_t node_index,
                                         const std::string& hash) {
    if (level < kStoredLevel) return;
    batch.PutAuditHash(level, node_index, hash);
    if (level >= kCachedLevel) upper_levels_.Insert(level, node_index, hash);
  });
  return leaf_hash;
}

absl::Status AuditLog::SealGroup(StateBatch& batch) {
  if (edge_.size() == sealed_size_) return absl::OkStatus();
  audit::Checkpoint checkpoint;
  checkpoint.origin = options_.origin;
  checkpoint.size = edge_.size();
  checkpoint.root_hash = edge_.RootHash();
  ASSIGN_OR_RETURN(std::string note, options_.signer->Sign(checkpoint));
  batch.PutAuditCheckpoint(checkpoint.size, note);
  sealed_size_ = edge_.size();
  return absl::OkStatus();
}

std::string AuditLog::SubjectHmac(const std::string& key,
                                  const std::string& value) const {
  std::string message = absl::StrCat(key, ":", value);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), options_.hmac_key.data(),
       static_cast<int>(options_.hmac_key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       digest, &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

merkle::SubtreeHashFn AuditLog::StoredSubtrees() const {
  return [this](int level, uint64_t index) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(std::vector<std::string> hashes,
                     FetchSubtrees({{level, index}}));
    return std::move(hashes.front());
  };
}

absl::Status AuditLog::HashFromLeaves(
    const std::vector<std::pair<int, uint64_t>>& nodes,
    const std::vector<size_t>& low, std::vector<std::string>* hashes) const {
  std::vector<uint64_t> wanted;
  for (size_t i : low) {
    const auto [level, index] = nodes[i];
    for (uint64_t leaf = index << level; leaf < (index + 1) << level; ++leaf) {
      wanted.push_back(leaf);
    }
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  ASSIGN_OR_RETURN(std::vector<std::string> leaves,
                   store_->GetAuditLeavesAt(wanted));
  for (size_t i : low) {
    const auto [level, index] = nodes[i];
    const uint64_t first = index << level;
    const size_t at =
        std::lower_bound(wanted.begin(), wanted.end(), first) - wanted.begin();
    merkle::CompactRange subtree;
    for (uint64_t k = 0; k < (uint64_t{1} << level); ++k) {
      subtree.Append(merkle::LeafHash(leaves[at + k]),
                     [](int, uint64_t, const std::string&) {});
    }
    (*hashes)[i] = subtree.RootHash();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> AuditLog::FetchSubtrees(
    const std::vector<std::pair<int, uint64_t>>& nodes) const {
  std::vector<std::string> hashes(nodes.size());
  std::vector<size_t> missing;
  std::vector<size_t> low;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto [level, index] = nodes[i];
    if (level < kStoredLevel) {
      low.push_back(i);
      continue;
    }
    if (upper_levels_.Lookup(level, index, &hashes[i])) continue;
    if (level >= upper_levels_.lowest_level()) {
      // Completed before this process started (Append adds the others):
      // read it with its neighbours, which later proofs will want.
      const uint64_t begin = index - index % kScanHashes;
      std::vector<std::pair<uint64_t, std::string>> scanned;
      RETURN_IF_ERROR(
          store_->ScanAuditHashes(level, begin, begin + kScanHashes, &scanned));
      // Only complete subtrees have stored hashes: all can be kept.
      for (const auto& [at, hash] : scanned) {
        upper_levels_.Insert(level, at, hash);
      }
      if (upper_levels_.Lookup(level, index, &hashes[i])) continue;
    }
    missing.push_back(i);
  }
  if (!low.empty()) RETURN_IF_ERROR(HashFromLeaves(nodes, low, &hashes));
  if (missing.empty()) return hashes;
  std::vector<std::pair<int, uint64_t>> to_read;
  to_read.reserve(missing.size());
  for (size_t i : missing) to_read.push_back(nodes[i]);
  ASSIGN_OR_RETURN(std::vector<std::string> read,
                   store_->GetAuditHashes(to_read));
  for (size_t k = 0; k < missing.size(); ++k) {
    hashes[missing[k]] = std::move(read[k]);
  }
  return hashes;
}

template <typename T>
absl::StatusOr<T> AuditLog::WithFetchedSubtrees(
    const std::function<absl::StatusOr<T>(const merkle::SubtreeHashFn&)>&
        compute) const {
  std::vector<std::pair<int, uint64_t>> wanted;
  const std::string placeholder(32, '\0');
  RETURN_IF_ERROR(
      compute([&](int level, uint64_t index) -> absl::StatusOr<std::string> {
        wanted.emplace_back(level, index);
        return placeholder;
      }).status());
  ASSIGN_OR_RETURN(std::vector<std::string> hashes, FetchSubtrees(wanted));
  absl::flat_hash_map<std::pair<int, uint64_t>, std::string> fetched;
  for (size_t i = 0; i < wanted.size(); ++i) {
    fetched.emplace(wanted[i], std::move(hashes[i]));
  }
  return compute([&](int level, uint64_t index) -> absl::StatusOr<std::string> {
    auto found = fetched.find(std::make_pair(level, index));
    if (found != fetched.end()) return found->second;
    return StoredSubtrees()(level, index);  // Never, in practice.
  });
}

absl::StatusOr<uint64_t> AuditLog::CommittedSize() const {
  ASSIGN_OR_RETURN(auto checkpoint, store_->GetAuditCheckpoint());
  return checkpoint.first;
}

absl::StatusOr<v1::GetCheckpointResponse> AuditLog::GetCheckpoint() const {
  ASSIGN_OR_RETURN(auto checkpoint, store_->GetAuditCheckpoint());
  v1::GetCheckpointResponse response;
  response.set_size(checkpoint.first);
  if (checkpoint.second.empty()) {
    // An empty log still has a signed checkpoint, so clients can pin it.
    audit::Checkpoint empty;
    empty.origin = options_.origin;
    empty.root_hash = merkle::EmptyRootHash();
    ASSIGN_OR_RETURN(checkpoint.second, options_.signer->Sign(empty));
  }
  RETURN_IF_ERROR(RecordWitness(checkpoint.first, checkpoint.second));
  response.set_checkpoint(checkpoint.second);
  return response;
}

absl::StatusOr<v1::GetEntriesResponse> AuditLog::GetEntries(
    const v1::GetEntriesRequest& request) const {
  ASSIGN_OR_RETURN(uint64_t size, CommittedSize());
  if (request.start() >= size) {
    return absl::OutOfRangeError(absl::StrCat(
        "start: ", request.start(), " is at or past the log size ", size));
  }
  if (request.count() > kMaxEntriesPerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("count: at most ", kMaxEntriesPerCall));
  }
  uint64_t count = request.count() == 0 ? 100 : request.count();
  uint64_t end = std::min(size, request.start() + count);
  v1::GetEntriesResponse response;
  response.set_start(request.start());
  std::vector<std::string> entries;
  RETURN_IF_ERROR(store_->GetAuditLeaves(request.start(), end, &entries));
  for (std::string& entry : entries) response.add_entries(std::move(entry));
  return response;
}

absl::StatusOr<v1::GetRequestEntriesResponse> AuditLog::GetRequestEntries(
    const v1::GetRequestEntriesRequest& request) const {
  if (request.request_id().empty())
    return absl::InvalidArgumentError("request_id: required");
  RETURN_IF_ERROR(store_->GetRequest(request.request_id()).status());
  std::vector<uint64_t> indexes;
  RETURN_IF_ERROR(store_->ListEventIndexes(request.request_id(), &indexes));
  v1::GetRequestEntriesResponse response;
  for (uint64_t index : indexes) {
    response.add_log_indexes(index);
    ASSIGN_OR_RETURN(*response.add_entries(), store_->GetAuditLeaf(index));
  }
  return response;
}

absl::StatusOr<v1::GetInclusionProofResponse> AuditLog::GetInclusionProof(
    const v1::GetInclusionProofRequest& request) const {
  ASSIGN_OR_RETURN(uint64_t size, CommittedSize());
  uint64_t tree_size = request.tree_size() == 0 ? size : request.tree_size();
  if (tree_size > size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tree_size: ", tree_size, " is past the log size ", size));
  }
  if (request.index() >= tree_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "index: ", request.index(), " is not below tree_size ", tree_size));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> proof,
                   WithFetchedSubtrees<std::vector<std::string>>(
                       [&](const merkle::SubtreeHashFn& subtrees) {
                         return merkle::InclusionProof(
                             subtrees, request.index(), tree_size);
                       }));
  v1::GetInclusionProofResponse response;
  response.set_index(request.index());
  response.set_tree_size(tree_size);
  for (std::string& hash : proof) response.add_proof(std::move(hash));
  return response;
}

absl::StatusOr<v1::GetConsistencyProofResponse> AuditLog::GetConsistencyProof(
    const v1::GetConsistencyProofRequest& request) const {
  ASSIGN_OR_RETURN(uint64_t size, CommittedSize());
  uint64_t second = request.second_size() == 0 ? size : request.second_size();
  if (second > size) {
    return absl::InvalidArgumentError(
        absl::StrCat("second_size: ", second, " is past the log size ", size));
  }
  if (request.first_size() == 0 || request.first_size() > second) {
    return absl::InvalidArgumentError(absl::StrCat(
        "first_size: must be between 1 and second_size (", second, ")"));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> proof,
                   WithFetchedSubtrees<std::vector<std::string>>(
                       [&](const merkle::SubtreeHashFn& subtrees) {
                         return merkle::ConsistencyProof(
                             subtrees, request.first_size(), second);
                       }));
  v1::GetConsistencyProofResponse response;
  response.set_first_size(request.first_size());
  response.set_second_size(second);
  for (std::string& hash : proof) response.add_proof(std::move(hash));
  return response;
}

}  // namespace dsar
