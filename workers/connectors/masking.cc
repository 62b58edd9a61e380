#include "workers/connectors/masking.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace dsar {
namespace {

// HMAC keys shorter than the hash's output weaken it (RFC 2104, 3).
constexpr size_t kMinKeyBytes = 32;
constexpr size_t kRandomBytes = 16;

std::string LowerHex(const unsigned char* bytes, size_t size) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), size));
}

}  // namespace

absl::StatusOr<std::string> ReadMaskingKey(const StoreSpec& store) {
  if (store.masking_key_file.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("store ", store.name,
                     ": the hash mask needs the inventory's masking_key_file"));
  }
  absl::StatusOr<std::string> key = ReadFile(store.masking_key_file);
  if (!key.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("store ", store.name, ": cannot read masking_key_file ",
                     store.masking_key_file, ": ", key.status().message()));
  }
  if (key->size() < kMinKeyBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store ", store.name, ": masking_key_file ", store.masking_key_file,
        " holds fewer than ", kMinKeyBytes, " bytes"));
  }
  return key;
}

MaskedValue MaskValue(const FieldMask& mask,
                      const std::optional<std::string>& current,
                      const std::string& key) {
  if (!current.has_value() || mask.strategy == MaskStrategy::kKeep) {
    return {};
  }
  switch (mask.strategy) {
    case MaskStrategy::kNull:
      return {true, std::nullopt};
    case MaskStrategy::kFixed:
      if (*current == mask.text) return {};
      return {true, mask.text};
    case MaskStrategy::kRandom: {
      unsigned char bytes[kRandomBytes];
      // RAND_bytes fails only when the generator cannot be seeded, which
      // OpenSSL 3 on Linux (getrandom) does not see; nothing random is
      // written then rather than something guessable.
      if (RAND_bytes(bytes, sizeof bytes) != 1) return {true, std::nullopt};
      return {true, LowerHex(bytes, sizeof bytes)};
    }
    case MaskStrategy::kHash: {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int size = 0;
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(current->data()),
           current->size(), digest, &size);
      return {true, LowerHex(digest, size)};
    }
    case MaskStrategy::kKeep:
      break;
  }
  return {};
}

bool UsesHashMask(const StoreSpec& store) {
  for (const CollectionSpec& collection : store.collections) {
    for (const auto& [field, mask] : collection.masks) {
      if (mask.strategy == MaskStrategy::kHash) return true;
    }
  }
  return false;
}

}  // namespace dsar
