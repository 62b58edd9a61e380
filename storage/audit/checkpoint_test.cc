#include "storage/audit/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "storage/audit/merkle.h"

namespace dsar::audit {
namespace {

namespace fs = std::filesystem;

constexpr char kName[] = "dsar.test/audit";
constexpr char kEmDash[] = "\xE2\x80\x94";

// golang.org/x/mod/sumdb/note's documented example (note.go, note_test.go):
// an independent implementation's signed note, keys and signature.
constexpr char kGoVerifierKeyB64[] =
    "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";  // 0x01 || public key.
constexpr char kGoSignerKeyB64[] =
    "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";  // 0x01 || seed.
constexpr char kGoText[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr char kGoSignature[] =
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=";

std::string Unbase64(const std::string& text) {
  std::string bytes;
  EXPECT_TRUE(absl::Base64Unescape(text, &bytes)) << text;
  return bytes;
}

std::string ToPem(EVP_PKEY* key, bool private_key) {
  BIO* bio = BIO_new(BIO_s_mem());
  int ok = private_key ? PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0,
                                                  nullptr, nullptr)
                       : PEM_write_bio_PUBKEY(bio, key);
  EXPECT_EQ(ok, 1);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  return pem;
}

std::string PublicPemFromRaw(const std::string& raw) {
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  EXPECT_NE(key, nullptr);
  std::string pem = ToPem(key, false);
  EVP_PKEY_free(key);
  return pem;
}

std::string PrivatePemFromSeed(const std::string& seed) {
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(seed.data()), seed.size());
  EXPECT_NE(key, nullptr);
  std::string pem = ToPem(key, true);
  EVP_PKEY_free(key);
  return pem;
}

// A signed note over arbitrary `text`, built with OpenSSL directly rather
// than CheckpointSigner, so malformed bodies can carry valid signatures.
std::string SignText(const std::string& private_pem, const std::string& name,
                     const std::string& text) {
  BIO* bio =
      BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EXPECT_NE(key, nullptr);
  unsigned char raw[32];
  size_t raw_length = sizeof(raw);
  EXPECT_EQ(EVP_PKEY_get_raw_public_key(key, raw, &raw_length), 1);
  Sha256 key_hash;
  key_hash.Update(name);
  key_hash.Update("\n\x01");
  key_hash.Update(std::string_view(reinterpret_cast<char*>(raw), raw_length));
  std::string blob = key_hash.FinishRaw().substr(0, 4);

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char signature[64];
  size_t signature_length = sizeof(signature);
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(ctx, signature, &signature_length,
                           reinterpret_cast<const unsigned char*>(text.data()),
                           text.size()),
            1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  blob.append(reinterpret_cast<char*>(signature), signature_length);
  return absl::StrCat(text, "\n", kEmDash, " ", name, " ",
                      absl::Base64Escape(blob), "\n");
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (fs::temp_directory_path() / "dsar_checkpoint_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    key_path_ = (fs::path(dir_) / "keys" / "log.key").string();
    ASSERT_TRUE(MakeDirectories(DirName(key_path_)).ok());
    root_ = Sha256Raw("root");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Sha256Raw(const std::string& seed) {
    Sha256 hash;
    hash.Update(seed);
    return hash.FinishRaw();
  }

  std::unique_ptr<CheckpointSigner> Signer(const std::string& path,
                                           const std::string& name = kName) {
    auto signer = CheckpointSigner::LoadOrCreate(path, name);
    EXPECT_TRUE(signer.ok()) << signer.status();
    if (!signer.ok()) return nullptr;
    return *std::move(signer);
  }

  Checkpoint Sample(uint64_t size = 42) const {
    Checkpoint checkpoint;
    checkpoint.origin = kName;
    checkpoint.size = size;
    checkpoint.root_hash = root_;
    return checkpoint;
  }

  std::string PrivatePem() const { return *ReadFile(key_path_); }

  std::string dir_;
  std::string key_path_;
  std::string root_;
};

TEST_F(CheckpointTest, SignsInTheSignedNoteFormatAndVerifies) {
  auto signer = Signer(key_path_);
  ASSERT_NE(signer, nullptr);
  absl::StatusOr<std::string> note = signer->Sign(Sample());
  ASSERT_TRUE(note.ok()) << note.status();

  std::string body =
      absl::StrCat(kName, "\n42\n", absl::Base64Escape(root_), "\n");
  EXPECT_EQ(CheckpointBody(Sample()), body);
  std::string prefix = absl::StrCat(body, "\n", kEmDash, " ", kName, " ");
  ASSERT_TRUE(absl::StartsWith(*note, prefix)) << *note;
  ASSERT_TRUE(absl::EndsWith(*note, "\n"));
  std::string blob =
      Unbase64(note->substr(prefix.size(), note->size() - prefix.size() - 1));
  EXPECT_EQ(blob.size(), 4u + 64u);
  // The implementation agrees byte for byte with the independent builder,
  // which reproduces Go's note (GoSignedNoteKnownAnswer).
  EXPECT_EQ(*note, SignText(PrivatePem(), kName, body));

  absl::StatusOr<Checkpoint> parsed =
      VerifyCheckpoint(*note, signer->public_key_pem(), kName);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->origin, kName);
  EXPECT_EQ(parsed->size, 42u);
  EXPECT_EQ(parsed->root_hash, root_);

  for (uint64_t size : {uint64_t{0}, uint64_t{1}, UINT64_MAX}) {
    absl::StatusOr<std::string> other = signer->Sign(Sample(size));
    ASSERT_TRUE(other.ok());
    absl::StatusOr<Checkpoint> round =
        VerifyCheckpoint(*other, signer->public_key_pem(), kName);
    ASSERT_TRUE(round.ok()) << round.status();
    EXPECT_EQ(round->size, size);
  }
}

TEST_F(CheckpointTest, ParseCheckpointNoteReadsTheBodyOnly) {
  auto signer = Signer(key_path_);
  ASSERT_NE(signer, nullptr);
  absl::StatusOr<std::string> note = signer->Sign(Sample());
  ASSERT_TRUE(note.ok()) << note.status();
  // A signature that does not verify is not looked at.
  std::string resigned = *note;
  resigned[resigned.size() - 3] ^= 1;
  absl::StatusOr<Checkpoint> parsed = ParseCheckpointNote(resigned);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->origin, kName);
  EXPECT_EQ(parsed->size, 42u);
  EXPECT_EQ(parsed->root_hash, root_);
  EXPECT_EQ(ParseCheckpointNote(CheckpointBody(Sample())).status().code(),
            absl::StatusCode::kInvalidArgument);  // No signature block.
}

TEST_F(CheckpointTest, RejectsAnyChangedByte) {
  auto signer = Signer(key_path_);
  ASSERT_NE(signer, nullptr);
  std::string note = *signer->Sign(Sample());
  std::string pem = signer->public_key_pem();
  size_t body_size = CheckpointBody(Sample()).size();

  for (size_t i = 0; i < note.size(); ++i) {
    std::string changed = note;
    changed[i] ^= 0x01;
    absl::StatusOr<Checkpoint> result = VerifyCheckpoint(changed, pem, kName);
    EXPECT_FALSE(result.ok()) << "byte " << i << " changed";
    if (i < body_size && note[i] != '\n') {
      EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied)
          << "body byte " << i << ": " << result.status();
    }
  }

  // Signature bytes changed under valid base64: PERMISSION_DENIED.
  std::string prefix =
      absl::StrCat(CheckpointBody(Sample()), "\n", kEmDash, " ", kName, " ");
  std::string blob =
      Unbase64(note.substr(prefix.size(), note.size() - prefix.size() - 1));
  for (size_t i : {size_t{0}, size_t{4}, size_t{40}, size_t{67}}) {
    std::string bad_blob = blob;
    bad_blob[i] ^= static_cast<char>(0x40);
    std::string changed =
        absl::StrCat(prefix, absl::Base64Escape(bad_blob), "\n");
    EXPECT_EQ(VerifyCheckpoint(changed, pem, kName).status().code(),
              absl::StatusCode::kPermissionDenied)
        << "signature byte " << i;
  }
}

TEST_F(CheckpointTest, RejectsAnotherKeyOrKeyName) {
  auto signer = Signer(key_path_);
  auto other = Signer((fs::path(dir_) / "other.key").string());
  ASSERT_NE(signer, nullptr);
  ASSERT_NE(other, nullptr);
  std::string note = *signer->Sign(Sample());

  EXPECT_EQ(
      VerifyCheckpoint(note, other->public_key_pem(), kName).status().code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(VerifyCheckpoint(note, signer->public_key_pem(), "other.name")
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);

  // The same key under another name signs as another signer.
  auto renamed = Signer(key_path_, "other.name");
  ASSERT_NE(renamed, nullptr);
  std::string renamed_note = *renamed->Sign(Sample());
  EXPECT_EQ(VerifyCheckpoint(renamed_note, signer->public_key_pem(), kName)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      VerifyCheckpoint(renamed_note, signer->public_key_pem(), "other.name")
          .ok());

  // Other signers' lines are skipped; ours still has to verify.
  std::string body = CheckpointBody(Sample());
  std::string other_line = other->Sign(Sample())->substr(body.size() + 1);
  std::string our_line = note.substr(body.size() + 1);
  std::string cosigned = absl::StrCat(body, "\n", other_line, our_line);
  EXPECT_TRUE(VerifyCheckpoint(cosigned, signer->public_key_pem(), kName).ok());
  EXPECT_TRUE(VerifyCheckpoint(cosigned, other->public_key_pem(), kName).ok());
  EXPECT_EQ(VerifyCheckpoint(absl::StrCat(body, "\n", other_line),
                             signer->public_key_pem(), kName)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(CheckpointTest, LoadOrCreateCreatesOnceThenLoads) {
  auto first = Signer(key_path_);
  ASSERT_NE(first, nullptr);
  struct stat info;
  ASSERT_EQ(::stat(key_path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  absl::StatusOr<std::string> pub = ReadFile(key_path_ + ".pub");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, first->public_key_pem());
  EXPECT_TRUE(absl::StartsWith(*pub, "-----BEGIN PUBLIC KEY-----"));
  EXPECT_TRUE(absl::StartsWith(PrivatePem(), "-----BEGIN PRIVATE KEY-----"));
  EXPECT_EQ(first->key_name(), kName);
  std::string key_before = PrivatePem();

  auto second = Signer(key_path_);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(PrivatePem(), key_before) << "the key was replaced";
  EXPECT_EQ(second->public_key_pem(), first->public_key_pem());
  std::string note = *second->Sign(Sample());
  EXPECT_TRUE(VerifyCheckpoint(note, *pub, kName).ok());
  EXPECT_EQ(note, *first->Sign(Sample())) << "Ed25519 is deterministic";

  // A lost .pub is written again from the private key.
  fs::remove(key_path_ + ".pub");
  ASSERT_NE(Signer(key_path_), nullptr);
  EXPECT_EQ(*ReadFile(key_path_ + ".pub"), *pub);
}

TEST_F(CheckpointTest, LoadOrCreateRejectsBadKeysAndNames) {
  ASSERT_TRUE(WriteFileAtomically(key_path_, "not a key").ok());
  EXPECT_FALSE(CheckpointSigner::LoadOrCreate(key_path_, kName).ok());
  EXPECT_EQ(*ReadFile(key_path_), "not a key") << "a bad key was overwritten";

  // A key of another type (P-256).
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  ASSERT_TRUE(WriteFileAtomically(key_path_, ToPem(ec, true)).ok());
  std::string ec_public = ToPem(ec, false);
  EVP_PKEY_free(ec);
  EXPECT_FALSE(CheckpointSigner::LoadOrCreate(key_path_, kName).ok());

  std::string fresh = (fs::path(dir_) / "fresh.key").string();
  for (const char* name : {"has space", "plus+sign", "new\nline"}) {
    EXPECT_EQ(CheckpointSigner::LoadOrCreate(fresh, name).status().code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_FALSE(fs::exists(fresh));

  auto signer = Signer(fresh);
  ASSERT_NE(signer, nullptr);
  std::string note = *signer->Sign(Sample());
  EXPECT_EQ(VerifyCheckpoint(note, "garbage", kName).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyCheckpoint(note, ec_public, kName).status().code(),
            absl::StatusCode::kInvalidArgument);

  Checkpoint bad = Sample();
  bad.root_hash = root_.substr(1);
  EXPECT_EQ(signer->Sign(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = Sample();
  bad.origin = "two\nlines";
  EXPECT_FALSE(signer->Sign(bad).ok());
  bad.origin = "";
  EXPECT_FALSE(signer->Sign(bad).ok());
}

TEST_F(CheckpointTest, RejectsMalformedNotes) {
  auto signer = Signer(key_path_);
  ASSERT_NE(signer, nullptr);
  std::string pem = signer->public_key_pem();
  std::string body = CheckpointBody(Sample());
  std::string note = *signer->Sign(Sample());
  std::string line = note.substr(body.size() + 1);  // "— name blob\n"
  std::string blob = line.substr(line.rfind(' ') + 1);
  blob.pop_back();

  struct Case {
    const char* what;
    std::string note;
  };
  std::vector<Case> cases = {
      {"no blank line", body + line},
      {"no signature line", body + "\n"},
      {"nothing after the body", body},
      {"no final newline", note.substr(0, note.size() - 1)},
      {"hyphen instead of em dash",
       absl::StrCat(body, "\n- ", kName, " ", blob, "\n")},
      {"no space after the dash",
       absl::StrCat(body, "\n", kEmDash, kName, " ", blob, "\n")},
      {"bad base64", absl::StrCat(body, "\n", kEmDash, " ", kName, " ", "!!",
                                  blob.substr(2), "\n")},
      {"unpadded base64", absl::StrCat(body, "\n", kEmDash, " ", kName, " ",
                                       blob.substr(0, blob.find('=')), "\n")},
      {"base64 of only a key id",
       absl::StrCat(body, "\n", kEmDash, " ", kName, " ",
                    absl::Base64Escape(Unbase64(blob).substr(0, 4)), "\n")},
      {"no signature after the name",
       absl::StrCat(body, "\n", kEmDash, " ", kName, "\n")},
      {"trailing blank line", note + "\n"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Checkpoint> result = VerifyCheckpoint(c.note, pem, kName);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << c.what << ": " << result.status();
  }
}

TEST_F(CheckpointTest, RejectsMalformedBodiesEvenWhenSigned) {
  auto signer = Signer(key_path_);
  ASSERT_NE(signer, nullptr);
  std::string pem = signer->public_key_pem();
  std::string private_pem = PrivatePem();
  std::string root = absl::Base64Escape(root_);
  auto verify = [&](const std::string& body) {
    return VerifyCheckpoint(SignText(private_pem, kName, body), pem, kName);
  };

  std::vector<std::string> bad_bodies = {
      absl::StrCat(kName, "\n42\n"), absl::StrCat(kName, "\n"),
      absl::StrCat("\n42\n", root, "\n"),
      absl::StrCat(kName, "\n42\n", root),  // No final newline.
  };
  for (const char* size : {"", "-1", "+5", "4a", " 5", "5 ", "0x10", "007",
                           "18446744073709551616", "99999999999999999999"}) {
    bad_bodies.push_back(absl::StrCat(kName, "\n", size, "\n", root, "\n"));
  }
  for (const std::string& bad_root :
       {absl::Base64Escape(root_.substr(1)), absl::Base64Escape(root_ + "x"),
        root.substr(0, root.size() - 1), std::string("!") + root.substr(1),
        std::string(""), absl::WebSafeBase64Escape(std::string(32, '\xff'))}) {
    bad_bodies.push_back(absl::StrCat(kName, "\n42\n", bad_root, "\n"));
  }
  for (const std::string& body : bad_bodies) {
    absl::StatusOr<Checkpoint> result = verify(body);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << absl::CEscape(body) << ": " << result.status();
  }

  absl::StatusOr<Checkpoint> largest =
      verify(absl::StrCat(kName, "\n18446744073709551615\n", root, "\n"));
  ASSERT_TRUE(largest.ok()) << largest.status();
  EXPECT_EQ(largest->size, UINT64_MAX);
  // tlog-checkpoint allows extension lines after the root.
  absl::StatusOr<Checkpoint> extended =
      verify(absl::StrCat(kName, "\n0\n", root, "\nextension line\n"));
  ASSERT_TRUE(extended.ok()) << extended.status();
  EXPECT_EQ(extended->size, 0u);
}

TEST_F(CheckpointTest, GoSignedNoteKnownAnswer) {
  std::string verifier_key = Unbase64(kGoVerifierKeyB64);
  std::string signer_key = Unbase64(kGoSignerKeyB64);
  ASSERT_EQ(verifier_key.size(), 33u);
  ASSERT_EQ(signer_key.size(), 33u);
  ASSERT_EQ(verifier_key[0], '\x01');
  std::string public_pem = PublicPemFromRaw(verifier_key.substr(1));
  std::string private_pem = PrivatePemFromSeed(signer_key.substr(1));
  std::string go_note = absl::StrCat(kGoText, "\n", kEmDash, " PeterNeumann ",
                                     kGoSignature, "\n");

  // The test's own note builder reproduces Go's note exactly.
  EXPECT_EQ(SignText(private_pem, "PeterNeumann", kGoText), go_note);

  // Go's signature verifies; the body is then rejected for not being a
  // checkpoint (2 lines), which is INVALID_ARGUMENT, not PERMISSION_DENIED.
  absl::StatusOr<Checkpoint> result =
      VerifyCheckpoint(go_note, public_pem, "PeterNeumann");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
      << result.status();
  std::string tampered = go_note;
  tampered[tampered.find("cryptography")] = 'C';
  EXPECT_EQ(
      VerifyCheckpoint(tampered, public_pem, "PeterNeumann").status().code(),
      absl::StatusCode::kPermissionDenied);

  // Our signer with Go's key computes Go's key id, c74f20a3.
  ASSERT_TRUE(WriteFileAtomically(key_path_, private_pem).ok());
  auto signer = Signer(key_path_, "PeterNeumann");
  ASSERT_NE(signer, nullptr);
  EXPECT_EQ(signer->public_key_pem(), public_pem);
  Checkpoint checkpoint = Sample();
  std::string note = *signer->Sign(checkpoint);
  std::string blob = Unbase64(
      note.substr(note.rfind(' ') + 1, note.size() - note.rfind(' ') - 2));
  EXPECT_EQ(absl::BytesToHexString(blob.substr(0, 4)), "c74f20a3");
  EXPECT_TRUE(VerifyCheckpoint(note, public_pem, "PeterNeumann").ok());

  // The verifier key Go's note package documents for this key, written
  // next to the private key.
  constexpr char kGoVerifierKey[] =
      "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  EXPECT_EQ(signer->verifier_key(), kGoVerifierKey);
  EXPECT_EQ(VerifierKey("PeterNeumann", verifier_key.substr(1)),
            kGoVerifierKey);
  EXPECT_EQ(*ReadFile(VerifierKeyPath(key_path_)),
            absl::StrCat(kGoVerifierKey, "\n"));
}

TEST_F(CheckpointTest, VerifierKeyIsPublishedInTheC2spFormat) {
  EXPECT_EQ(VerifierKeyPath("/k/checkpoint.key"), "/k/checkpoint.vkey");
  EXPECT_EQ(VerifierKeyPath("/k/signing"), "/k/signing.vkey");
  auto signer = Signer(key_path_);
  ASSERT_NE(signer, nullptr);
  absl::StatusOr<std::string> written =
      ReadFile((fs::path(dir_) / "keys" / "log.vkey").string());
  ASSERT_TRUE(written.ok()) << written.status();
  std::string vkey = signer->verifier_key();
  EXPECT_EQ(*written, vkey + "\n");
  // <name>+<hex key id>+<base64(0x01 || public key)>.
  std::vector<std::string> parts =
      absl::StrSplit(vkey, absl::MaxSplits('+', 2));  // base64 has '+'.
  ASSERT_EQ(parts.size(), 3u) << vkey;
  EXPECT_EQ(parts[0], kName);
  std::string key = Unbase64(parts[2]);
  ASSERT_EQ(key.size(), 33u);
  EXPECT_EQ(key[0], '\x01');
  EXPECT_EQ(key.substr(1), signer->public_key_raw());
  EXPECT_EQ(PublicPemFromRaw(key.substr(1)), signer->public_key_pem());
  // The key id is the one every signature line of this key carries.
  std::string note = *signer->Sign(Sample());
  std::string blob = Unbase64(
      note.substr(note.rfind(' ') + 1, note.size() - note.rfind(' ') - 2));
  EXPECT_EQ(parts[1], absl::BytesToHexString(blob.substr(0, 4)));
  EXPECT_EQ(parts[1].size(), 8u);
}

TEST_F(CheckpointTest, UnnamedSignerSignsOnlyOnceNamed) {
  auto signer = CheckpointSigner::LoadOrCreate(key_path_, "");
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ((*signer)->Sign(Sample()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(VerifierKeyPath(key_path_)));
  EXPECT_EQ((*signer)->SetKeyName("bad name").code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*signer)->SetKeyName(kName).ok());
  std::string note = *(*signer)->Sign(Sample());
  EXPECT_TRUE(VerifyCheckpoint(note, (*signer)->public_key_pem(), kName).ok());
  EXPECT_EQ(*ReadFile(VerifierKeyPath(key_path_)),
            (*signer)->verifier_key() + "\n");
}

// CheckExtends: the rollback and fork rules a remembered checkpoint imposes.
TEST_F(CheckpointTest, CheckExtendsCatchesRollbackAndFork) {
  // Trees of 3 and 7 leaves, and a 7-leaf tree that rewrote leaf 1.
  auto leaves = [](int n, int rewritten) {
    std::vector<std::string> hashes;
    for (int i = 0; i < n; ++i) {
      hashes.push_back(merkle::LeafHash(
          absl::StrCat("leaf ", i, i == rewritten ? " rewritten" : "")));
    }
    return hashes;
  };
  auto checkpoint = [](const std::vector<std::string>& hashes, uint64_t size) {
    merkle::CompactRange range;
    for (uint64_t i = 0; i < size; ++i)
      range.Append(hashes[i], [](int, uint64_t, const std::string&) {});
    Checkpoint result;
    result.origin = kName;
    result.size = size;
    result.root_hash = range.RootHash();
    return result;
  };
  auto proof = [](const std::vector<std::string>& hashes, uint64_t first,
                  uint64_t second) {
    auto subtrees = [&hashes](int level,
                              uint64_t index) -> absl::StatusOr<std::string> {
      merkle::CompactRange range;
      uint64_t width = uint64_t{1} << level;
      for (uint64_t i = index * width; i < (index + 1) * width; ++i)
        range.Append(hashes[i], [](int, uint64_t, const std::string&) {});
      return range.RootHash();
    };
    return *merkle::ConsistencyProof(subtrees, first, second);
  };
  std::vector<std::string> honest = leaves(7, -1);
  std::vector<std::string> forked = leaves(7, 1);
  Checkpoint small = checkpoint(honest, 3);
  Checkpoint large = checkpoint(honest, 7);
  Checkpoint other = checkpoint(forked, 7);

  EXPECT_TRUE(CheckExtends(small, large, proof(honest, 3, 7)).ok());
  EXPECT_TRUE(CheckExtends(large, large, {}).ok());
  Checkpoint empty = checkpoint(honest, 0);
  EXPECT_TRUE(CheckExtends(empty, large, {}).ok());

  absl::Status rollback = CheckExtends(large, small, {});
  EXPECT_EQ(rollback.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(rollback.message(), "rollback:")) << rollback;

  // The forked server's own proof does not link it to the remembered root.
  absl::Status fork = CheckExtends(small, other, proof(forked, 3, 7));
  EXPECT_EQ(fork.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(fork.message(), "fork:")) << fork;
  fork = CheckExtends(large, other, {});
  EXPECT_TRUE(absl::StartsWith(fork.message(), "fork:")) << fork;
}

}  // namespace
}  // namespace dsar::audit
