#include "storage/key_ring.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <string_view>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "storage/sealed_box.h"

namespace dsar {
namespace {

constexpr char kActiveFile[] = "ACTIVE";
constexpr char kKeyPrefix[] = "kek-";
constexpr char kKeySuffix[] = ".key";

std::string KeyPath(const std::string& dir, int id) {
  return absl::StrCat(dir, "/", kKeyPrefix, id, kKeySuffix);
}

// The associated data of a wrapped key: what it is, whose, under which KEK.
std::string WrapContext(absl::string_view owner, absl::string_view kek_id) {
  return absl::StrCat("dsar data key\n", owner, "\n", kek_id);
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1) {
    return absl::InternalError("no randomness for a key");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> NewDataKey() {
  return RandomBytes(kSealedBoxKeyBytes);
}

absl::StatusOr<std::unique_ptr<FileKeyRing>> FileKeyRing::Open(
    const std::string& dir) {
  RETURN_IF_ERROR(MakeDirectories(dir));
  if (::chmod(dir.c_str(), 0700) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("key ring ", dir, ": cannot make it private"));
  }
  std::unique_ptr<FileKeyRing> ring(new FileKeyRing(dir));
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    absl::string_view id_text = name;
    if (!absl::ConsumePrefix(&id_text, kKeyPrefix) ||
        !absl::ConsumeSuffix(&id_text, kKeySuffix)) {
      continue;
    }
    int id = 0;
    if (!absl::SimpleAtoi(id_text, &id) || id <= 0) continue;
    absl::StatusOr<std::string> hex = ReadFile(entry.path().string());
    std::string key;
    if (hex.ok()) {
      absl::string_view trimmed = absl::StripAsciiWhitespace(*hex);
      if (trimmed.size() == 2 * kSealedBoxKeyBytes) {
        key = absl::HexStringToBytes(trimmed);
      }
    }
    if (key.size() != kSealedBoxKeyBytes) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ring: ", entry.path().string(), " is not a 64-hex-digit key"));
    }
    ring->keys_[id] = std::move(key);
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ring ", dir, ": ", error.message()));
  }
  std::lock_guard<std::mutex> lock(ring->mu_);
  const std::string active_path = absl::StrCat(dir, "/", kActiveFile);
  absl::StatusOr<std::string> active = ReadFile(active_path);
  if (!active.ok()) {
    if (!ring->keys_.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("key ring: ", active_path,
                       " is missing but keys exist; write the id of the "
                       "active key into it"));
    }
    RETURN_IF_ERROR(ring->AddNewKey());
    return ring;
  }
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*active), &ring->active_) ||
      ring->keys_.count(ring->active_) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ring: ", active_path, " names no key file of ", dir));
  }
  return ring;
}

absl::Status FileKeyRing::AddNewKey() {
  const int id = keys_.empty() ? 1 : keys_.rbegin()->first + 1;
  ASSIGN_OR_RETURN(std::string key, RandomBytes(kSealedBoxKeyBytes));
  // The key is durable before it is named active, and active before use.
  RETURN_IF_ERROR(
      WriteFileAtomically(KeyPath(dir_, id), absl::BytesToHexString(key)));
  RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(dir_, "/", kActiveFile),
                                      absl::StrCat(id, "\n")));
  keys_[id] = std::move(key);
  active_ = id;
  return absl::OkStatus();
}

absl::StatusOr<WrappedKey> FileKeyRing::Wrap(absl::string_view data_key,
                                             absl::string_view owner) {
  std::lock_guard<std::mutex> lock(mu_);
  WrappedKey out;
  out.kek_id = absl::StrCat(active_);
  ASSIGN_OR_RETURN(SealedBox box, SealedBox::Create(keys_.at(active_)));
  ASSIGN_OR_RETURN(out.wrapped,
                   box.Seal(std::string_view(data_key.data(), data_key.size()),
                            WrapContext(owner, out.kek_id)));
  return out;
}

absl::StatusOr<std::string> FileKeyRing::Unwrap(const WrappedKey& wrapped,
                                                absl::string_view owner) {
  int id = 0;
  std::string key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it =
        absl::SimpleAtoi(wrapped.kek_id, &id) ? keys_.find(id) : keys_.end();
    if (it == keys_.end()) {
      return absl::NotFoundError(absl::StrCat(
          "key-encryption key ", wrapped.kek_id, " is not in ", dir_));
    }
    key = it->second;
  }
  ASSIGN_OR_RETURN(SealedBox box, SealedBox::Create(std::move(key)));
  absl::StatusOr<std::string> data_key =
      box.Open(wrapped.wrapped, WrapContext(owner, wrapped.kek_id));
  if (!data_key.ok()) {
    return absl::DataLossError(absl::StrCat(
        "data key of ", owner, " does not unwrap under key-encryption key ",
        wrapped.kek_id));
  }
  return data_key;
}

absl::StatusOr<std::string> FileKeyRing::Rotate() {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(AddNewKey());
  return absl::StrCat(active_);
}

std::string FileKeyRing::ActiveKeyId() const {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrCat(active_);
}

}  // namespace dsar
