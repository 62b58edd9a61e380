#include "common/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace dsar {
namespace {

// OpenSSL 3 looks the algorithm up in its provider on every init unless it
// is given an explicitly fetched one; fetching once makes small hashes (a
// Merkle node is 65 bytes) several times cheaper.
const EVP_MD* FetchedSha256() {
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

// One context per thread for Sha256Concat, freed when the thread exits.
class ThreadContext {
 public:
  ThreadContext() : ctx_(EVP_MD_CTX_new()) {}
  ~ThreadContext() { EVP_MD_CTX_free(ctx_); }
  ThreadContext(const ThreadContext&) = delete;
  ThreadContext& operator=(const ThreadContext&) = delete;
  EVP_MD_CTX* get() { return ctx_; }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

void Sha256Concat(std::initializer_list<std::string_view> parts,
                  unsigned char* digest) {
  thread_local ThreadContext context;
  EVP_MD_CTX* ctx = context.get();
  // Re-initialising a reused context instead of a new one per hash: a
  // 146-byte Merkle leaf hash went from 214 to 146 ns (OpenSSL 3.0).
  EVP_DigestInit_ex(ctx, FetchedSha256(), nullptr);
  for (std::string_view part : parts) {
    EVP_DigestUpdate(ctx, part.data(), part.size());
  }
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), FetchedSha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::Update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

std::string Sha256::FinishRaw() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &length);
  return std::string(reinterpret_cast<char*>(digest), length);
}

std::string Sha256::FinishHex() { return absl::BytesToHexString(FinishRaw()); }

std::string Sha256Hex(std::string_view data) {
  Sha256 hash;
  hash.Update(data);
  return hash.FinishHex();
}

absl::StatusOr<std::string> Sha256FileHex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  Sha256 hash;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof(buffer));
    hash.Update(std::string_view(buffer, static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return hash.FinishHex();
}

}  // namespace dsar
