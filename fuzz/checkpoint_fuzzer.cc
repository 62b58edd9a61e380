// Signed checkpoints as `dsarctl audit` reads them: the note comes from the
// server (or from dsarctl's state directory) and is checked with
// VerifyCheckpoint(note, public key, origin of the note), then compared with
// the remembered one through CheckExtends.
//
// Each input is used twice:
//  1. as a whole note, verified as dsarctl does (signature lines, key ids,
//     base64; a forged signature never verifies);
//  2. its text before the last blank line (or all of it) as a note body,
//     signed here with the fuzzer's own key, so that the body parser behind
//     the signature check is reached too.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "common/sha256.h"
#include "fuzz/fuzz_check.h"
#include "storage/audit/checkpoint.h"
#include "storage/audit/merkle.h"

namespace {

// A fixed key, so that every crash reproduces. Not a secret.
struct FuzzKey {
  EVP_PKEY* key = nullptr;
  std::string public_raw;
  std::string public_pem;
};

const FuzzKey& Key() {
  static const FuzzKey* key = [] {
    auto* k = new FuzzKey;
    unsigned char seed[32];
    for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(i * 7);
    k->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed,
                                          sizeof(seed));
    FUZZ_CHECK(k->key != nullptr, "Ed25519 key");
    unsigned char raw[32];
    size_t length = sizeof(raw);
    FUZZ_CHECK(EVP_PKEY_get_raw_public_key(k->key, raw, &length) == 1,
               "raw public key");
    k->public_raw.assign(reinterpret_cast<char*>(raw), length);
    BIO* bio = BIO_new(BIO_s_mem());
    FUZZ_CHECK(PEM_write_bio_PUBKEY(bio, k->key) == 1, "public key PEM");
    char* pem = nullptr;
    long pem_length = BIO_get_mem_data(bio, &pem);
    k->public_pem.assign(pem, static_cast<size_t>(pem_length));
    BIO_free(bio);
    return k;
  }();
  return *key;
}

// dsarctl's OriginOf: the note's first line is the origin and key name.
std::string OriginOf(std::string_view note) {
  return std::string(note.substr(0, note.find('\n')));
}

// The signed note of `body` (C2SP signed-note format) under `key_name`.
std::string SignNote(std::string_view body, const std::string& key_name) {
  const FuzzKey& key = Key();
  dsar::Sha256 hash;
  hash.Update(key_name);
  hash.Update("\n\x01");
  hash.Update(key.public_raw);
  std::string key_id = hash.FinishRaw().substr(0, 4);
  unsigned char signature[64];
  size_t signature_size = sizeof(signature);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key.key) == 1 &&
            EVP_DigestSign(ctx, signature, &signature_size,
                           reinterpret_cast<const unsigned char*>(body.data()),
                           body.size()) == 1;
  EVP_MD_CTX_free(ctx);
  FUZZ_CHECK(ok, "Ed25519 signing");
  std::string blob =
      key_id + std::string(reinterpret_cast<char*>(signature), signature_size);
  return std::string(body) + "\n\xE2\x80\x94 " + key_name + " " +
         absl::Base64Escape(blob) + "\n";
}

void CheckVerified(const dsar::audit::Checkpoint& checkpoint,
                   std::string_view note) {
  FUZZ_CHECK(!checkpoint.origin.empty(), "empty origin");
  FUZZ_CHECK(checkpoint.root_hash.size() == dsar::merkle::kHashSize,
             "root size");
  // The parsed fields print back as the start of the signed body: one
  // encoding per checkpoint (no leading zeros, padded base64).
  std::string body = dsar::audit::CheckpointBody(checkpoint);
  FUZZ_CHECK(
      absl::StartsWith(absl::string_view(note.data(), note.size()), body),
      body);
  absl::Status same = dsar::audit::CheckExtends(checkpoint, checkpoint, {});
  FUZZ_CHECK(same.ok(), same.ToString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const FuzzKey& key = Key();

  // 1. The input as a note.
  absl::StatusOr<dsar::audit::Checkpoint> verified =
      dsar::audit::VerifyCheckpoint(input, key.public_pem, OriginOf(input));
  if (verified.ok()) {
    CheckVerified(*verified, input);
  } else {
    absl::StatusCode code = verified.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument ||
                   code == absl::StatusCode::kPermissionDenied,
               verified.status().ToString());
  }

  // 2. The input's body, signed with the fuzzer's key.
  size_t split = input.rfind("\n\n");
  std::string_view body =
      split == std::string_view::npos ? input : input.substr(0, split + 1);
  std::string origin = OriginOf(body);
  std::string note = SignNote(body, origin);
  absl::StatusOr<dsar::audit::Checkpoint> signed_checkpoint =
      dsar::audit::VerifyCheckpoint(note, key.public_pem, origin);
  if (signed_checkpoint.ok()) {
    CheckVerified(*signed_checkpoint, note);
  } else {
    FUZZ_CHECK(
        signed_checkpoint.status().code() == absl::StatusCode::kInvalidArgument,
        signed_checkpoint.status().ToString());
  }
  return 0;
}
