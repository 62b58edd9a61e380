// What the bundler gets: the exports of the latest export pass with the
// inventory facts of each store, and the thread that writes the ZIP. Part of
// Coordinator; see engine/coordinator.h.

#include <openssl/crypto.h>

#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/log.h"
#include "engine/coordinator.h"
#include "engine/coordinator_internal.h"
#include "engine/identity.h"
#include "engine/identity_reach.h"

namespace dsar {

namespace coordinator_internal {

std::vector<BundleExemption> RetainedOnErasure(const StoreSpec& store) {
  std::vector<BundleExemption> retained;
  for (const CollectionSpec& collection : store.collections) {
    if (!collection.mask_on_erase) continue;
    for (const auto& [field, mask] : collection.masks) {
      if (mask.strategy != MaskStrategy::kKeep) continue;
      retained.push_back({store.name,
                          absl::StrCat(collection.name, ".", field,
                                       " is kept when your data is erased"),
                          mask.text});
    }
  }
  return retained;
}

}  // namespace coordinator_internal

std::string Coordinator::ArtifactDir(const std::string& request_id) const {
  return absl::StrCat(options_.files_dir, "/artifacts/", request_id);
}

std::string Coordinator::ArtifactPath(const std::string& request_id, int map,
                                      int item, uint32_t attempt) const {
  return absl::StrCat(ArtifactDir(request_id), "/", map, "-", item, "-a",
                      attempt, ".json");
}

Coordinator::BuiltinJob Coordinator::BuildBundleJob(
    const LiveRequest& live) const {
  const internal::RequestRecord& record = live.record;
  BuiltinJob job;
  job.request_id = record.request().id();
  job.attempt = record.builtin_attempt();
  job.zip_path =
      absl::StrCat(options_.files_dir, "/bundles/", job.request_id, ".zip");
  job.input.request_id = job.request_id;
  job.input.request_type = v1::RequestType_Name(record.request().type());
  job.input.created_at = absl::FormatTime(
      absl::RFC3339_sec,
      absl::FromUnixSeconds(record.request().created_at().seconds()),
      absl::UTCTimeZone());
  job.input.templates_dir = options_.templates_dir;
  job.input.controller = options_.inventory->controller();
  job.input.regulation = record.request().regulation();
  auto display = [this](const google::protobuf::Timestamp& time) {
    return absl::FormatTime("%Y-%m-%d %H:%M %Z",
                            absl::FromUnixSeconds(time.seconds()), zone_);
  };
  job.input.received_at = display(record.request().created_at());
  job.input.deadline = display(record.request().deadline());
  // Which identity kinds each store was searched with: those given and
  // those discovered, as far as the store matches them.
  std::set<std::string> known_kinds;
  for (const v1::SubjectIdentity& identity : record.request().identities())
    known_kinds.insert(IdentityKey(identity));
  for (const v1::SubjectIdentity& identity : record.discovered())
    known_kinds.insert(IdentityKey(identity));
  std::vector<std::string> scope(record.request().stores().begin(),
                                 record.request().stores().end());
  std::map<std::string, std::set<std::string>> searched_with =
      SearchableIdentityKinds(*options_.inventory, scope, known_kinds);
  // The exports come from the most recent Map run whose tasks export.
  for (int m = record.maps_size() - 1; m >= 0; --m) {
    const State* map_state =
        live.definition->root().Find(record.maps(m).state());
    bool exports = false;
    if (map_state != nullptr && map_state->iterator != nullptr) {
      for (const auto& [name, state] : map_state->iterator->states) {
        if (state.resource == kResourceWorkerExport) exports = true;
      }
    }
    if (!exports) continue;
    for (const internal::MapItem& item : record.maps(m).items()) {
      BundleStoreEntry entry;
      entry.store = item.store();
      const std::set<std::string>& kinds = searched_with[item.store()];
      entry.identity_kinds.assign(kinds.begin(), kinds.end());
      if (const StoreSpec* spec = options_.inventory->Find(item.store())) {
        entry.kind = spec->kind;
        entry.purpose = spec->purpose;
        entry.legal_basis = spec->legal_basis;
        entry.recipients = spec->recipients;
        entry.retention = spec->retention;
        entry.source = spec->source;
        for (const CollectionSpec& collection : spec->collections) {
          entry.pii_categories[collection.name] = collection.pii_fields;
        }
        for (BundleExemption& kept :
             coordinator_internal::RetainedOnErasure(*spec)) {
          job.input.retained.push_back(std::move(kept));
        }
      }
      bool ok = item.phase() == internal::ITEM_SUCCEEDED &&
                !item.artifact_path().empty();
      entry.status = ok ? "SUCCEEDED" : "FAILED";
      entry.record_count = item.record_count();
      if (ok) {
        entry.data_path = item.artifact_path();
        entry.data_sha256 = item.artifact_sha256();
      } else {
        // The subject's answer carries a neutral reason; the connector's
        // message (paths, SQL errors) stays in the steps and the events.
        entry.error = "this system could not be searched";
      }
      job.input.stores.push_back(std::move(entry));
    }
    break;
  }
  return job;
}

void Coordinator::RunBundler() {
  while (true) {
    BuiltinJob job;
    {
      std::unique_lock<std::mutex> lock(bundler_mu_);
      bundler_wake_.wait(
          lock, [&] { return bundler_stopping_ || !bundler_queue_.empty(); });
      if (bundler_stopping_) return;
      job = std::move(bundler_queue_.front());
      bundler_queue_.pop_front();
    }
    // The request's data key (exports and bundle are encrypted under it) is
    // fetched here rather than in BuildBundleJob: off the commit loop, with
    // its error reported as the step's, and held only while writing.
    absl::StatusOr<BundleResult> result;
    if (absl::StatusOr<std::string> data_key = RequestDataKey(job.request_id);
        data_key.ok()) {
      job.input.data_key = *std::move(data_key);
      job.input.cancel = &bundler_cancel_;
      result = WriteExportBundle(job.input, job.zip_path);
      OPENSSL_cleanse(job.input.data_key.data(), job.input.data_key.size());
      job.input.data_key.clear();
    } else {
      result =
          absl::Status(data_key.status().code(),
                       absl::StrCat("bundle: the data key of ", job.request_id,
                                    ": ", data_key.status().message()));
    }
    Enqueue([this, job, result](Txn& txn) {
      auto it = live_.find(job.request_id);
      if (it == live_.end()) return;
      LiveRequest& live = it->second;
      if (!live.builtin_in_flight ||
          live.record.builtin_attempt() != job.attempt)
        return;
      live.builtin_in_flight = false;
      Mutate(
          txn, live,
          [&](Interpreter& interpreter, internal::RequestRecord* record) {
            const State* state = interpreter.CurrentState(*record);
            if (state == nullptr || state->type != StateType::kTask) return;
            if (result.ok()) {
              v1::Bundle* bundle = record->mutable_request()->mutable_bundle();
              bundle->set_path(job.zip_path);
              bundle->set_sha256(result->sha256);
              bundle->set_size_bytes(result->size_bytes);
              bundle->clear_files();
              for (const std::string& file : result->files)
                bundle->add_files(file);
              interpreter.CompleteBuiltin(
                  record, absl::StrCat("bundle sha256=", result->sha256,
                                       " bytes=", result->size_bytes));
              // The exports are in the bundle now: once that is durable,
              // the copies (and stale attempts' uploads) go. A crash in
              // between leaves them until the next start-up sweep.
              txn.replies.push_back(
                  [dir = ArtifactDir(job.request_id), id = job.request_id] {
                    absl::Status removed = RemoveTree(dir);
                    if (!removed.ok())
                      LogError(removed.ToString(), ForRequest(id));
                  });
            } else {
              interpreter.FailBuiltin(record, "Bundle.Failed",
                                      std::string(result.status().message()));
            }
          });
    });
  }
}

}  // namespace dsar
