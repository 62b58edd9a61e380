#include "storage/bundle_writer.h"

#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "storage/encrypted_file.h"
#include "storage/encrypted_zip.h"

namespace dsar {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The request's data key, as the engine would pass it.
const std::string kDataKey(kEncryptedFileKeyBytes, 'd');

// Writes `contents` as the engine stores an upload of `request_id`.
void WriteExport(const std::string& path, const std::string& contents,
                 const std::string& request_id) {
  absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> writer =
      EncryptedFileWriter::Create(path, kDataKey,
                                  ExportFileContext(request_id));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(contents).ok());
  ASSERT_TRUE((*writer)->Commit().ok());
}

// What the subject downloads: the bundle's plaintext, its SHA-256 and size.
struct Plaintext {
  std::string sha256;
  int64_t size = 0;
};
Plaintext BundlePlaintext(const std::string& zip_path,
                          const std::string& request_id = "req-42") {
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
      EncryptedFileReader::Open(zip_path, kDataKey,
                                BundleFileContext(request_id));
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return {};
  absl::StatusOr<std::string> sha =
      EncryptedFileSha256Hex(zip_path, kDataKey, BundleFileContext(request_id));
  EXPECT_TRUE(sha.ok()) << sha.status();
  return {sha.value_or(""), (*reader)->size()};
}

// The original seven fields, positionally; the Art. 15 ones stay empty.
BundleStoreEntry Entry(std::string store, std::string kind, std::string status,
                       int64_t record_count, std::string error,
                       std::string data_path, std::string data_sha256) {
  BundleStoreEntry entry;
  entry.store = std::move(store);
  entry.kind = std::move(kind);
  entry.status = std::move(status);
  entry.record_count = record_count;
  entry.error = std::move(error);
  entry.data_path = std::move(data_path);
  entry.data_sha256 = std::move(data_sha256);
  return entry;
}

class BundleWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("bundle_writer_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "out");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // An encrypted export of request req-42.
  std::string WriteData(const std::string& name, const std::string& contents) {
    std::string path = (dir_ / name).string();
    WriteExport(path, contents, "req-42");
    return path;
  }

  BundleInput TwoStoresAndAFailure() {
    BundleInput input;
    input.request_id = "req-42";
    input.data_key = kDataKey;
    input.request_type = "ACCESS";
    input.created_at = "2024-05-01T12:00:00Z";
    crm_ = R"({"records":[{"email":"a@example.com"},{"email":"b@x.org"}]})";
    orders_ = R"({"records":[{"order":1}]})";
    input.stores.push_back(Entry("crm", "postgres", "SUCCEEDED", 2, "",
                                 WriteData("crm.json", crm_), Sha256Hex(crm_)));
    input.stores.push_back(Entry("billing", "sqlite", "FAILED", 0,
                                 "UNAVAILABLE: connection refused", "", ""));
    input.stores.push_back(Entry("orders_v2", "sqlite", "SUCCEEDED", 1, "",
                                 WriteData("orders.json", orders_),
                                 Sha256Hex(orders_)));
    return input;
  }

  std::string ZipPath() const { return (dir_ / "out" / "bundle.zip").string(); }

  std::vector<std::string> OutDirListing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_ / "out")) {
      names.push_back(e.path().filename().string());
    }
    return names;
  }

  fs::path dir_;
  std::string crm_;
  std::string orders_;
};

// The entry names of the encrypted bundle at `path` in archive order, and a
// reader for each; the bundle is decrypted as libzip reads it.
class ZipReader {
 public:
  explicit ZipReader(const std::string& path,
                     const std::string& request_id = "req-42") {
    absl::StatusOr<ZipArchive> opened =
        OpenEncryptedZip(path, kDataKey, BundleFileContext(request_id));
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (opened.ok()) owner_ = *std::move(opened);
    archive_ = owner_.get();
  }
  bool ok() const { return archive_ != nullptr; }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    zip_int64_t n = zip_get_num_entries(archive_, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
      names.push_back(zip_get_name(archive_, static_cast<zip_uint64_t>(i), 0));
    }
    return names;
  }

  int32_t Compression(const std::string& name) const {
    zip_stat_t st;
    zip_stat_init(&st);
    EXPECT_EQ(zip_stat(archive_, name.c_str(), 0, &st), 0);
    return st.comp_method;
  }

  std::string Read(const std::string& name) const {
    zip_file_t* file = zip_fopen(archive_, name.c_str(), 0);
    EXPECT_NE(file, nullptr) << name;
    if (file == nullptr) return "";
    std::string out;
    char buffer[1 << 16];
    zip_int64_t n;
    while ((n = zip_fread(file, buffer, sizeof(buffer))) > 0) {
      out.append(buffer, static_cast<size_t>(n));
    }
    EXPECT_EQ(n, 0) << "read error in " << name;
    zip_fclose(file);
    return out;
  }

 private:
  ZipArchive owner_;
  zip_t* archive_ = nullptr;
};

TEST_F(BundleWriterTest, WritesManifestAndDataEntries) {
  BundleInput input = TwoStoresAndAFailure();
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();

  EXPECT_THAT(result->files, ElementsAre("manifest.json", "data/crm.json",
                                         "data/orders_v2.json"));
  // Both describe the plaintext ZIP, what the subject downloads.
  Plaintext zip_plaintext = BundlePlaintext(ZipPath());
  EXPECT_EQ(result->sha256, zip_plaintext.sha256);
  EXPECT_EQ(result->size_bytes, zip_plaintext.size);
  EXPECT_THAT(OutDirListing(), ElementsAre("bundle.zip"));  // No temp file.
  EXPECT_EQ(fs::status(ZipPath()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  EXPECT_EQ(zip.Names(), result->files);
  EXPECT_EQ(zip.Read("data/crm.json"), crm_);
  EXPECT_EQ(zip.Read("data/orders_v2.json"), orders_);
  EXPECT_EQ(zip.Compression("data/crm.json"), ZIP_CM_DEFLATE);

  nlohmann::json manifest = nlohmann::json::parse(zip.Read("manifest.json"));
  EXPECT_EQ(manifest["request_id"], "req-42");
  EXPECT_EQ(manifest["request_type"], "ACCESS");
  EXPECT_EQ(manifest["created_at"], "2024-05-01T12:00:00Z");
  ASSERT_EQ(manifest["stores"].size(), 3u);

  const nlohmann::json& crm = manifest["stores"][0];
  EXPECT_EQ(crm["store"], "crm");
  EXPECT_EQ(crm["kind"], "postgres");
  EXPECT_EQ(crm["status"], "SUCCEEDED");
  EXPECT_EQ(crm["record_count"], 2);
  EXPECT_EQ(crm["file"], "data/crm.json");
  EXPECT_EQ(crm["sha256"], Sha256Hex(crm_));
  EXPECT_FALSE(crm.contains("error"));

  const nlohmann::json& billing = manifest["stores"][1];
  EXPECT_EQ(billing["store"], "billing");
  EXPECT_EQ(billing["status"], "FAILED");
  EXPECT_EQ(billing["record_count"], 0);
  EXPECT_EQ(billing["error"], "UNAVAILABLE: connection refused");
  EXPECT_FALSE(billing.contains("file"));
  EXPECT_FALSE(billing.contains("sha256"));

  EXPECT_EQ(manifest["stores"][2]["record_count"], 1);

  // "files" covers exactly the data entries, each hash matching its content.
  EXPECT_EQ(manifest["files"].size(), 2u);
  for (std::string name : {"data/crm.json", "data/orders_v2.json"}) {
    ASSERT_TRUE(manifest["files"].contains(name)) << name;
    EXPECT_EQ(manifest["files"][name], Sha256Hex(zip.Read(name))) << name;
  }
  EXPECT_FALSE(manifest["files"].contains("manifest.json"));
}

// The general-purpose flags of the local header of entry `name` in the
// bundle at `zip_path` (bits 1-2 say how hard deflate worked: 00 normal,
// 01 maximum, 10 fast); -1 when there is no such entry.
int LocalHeaderFlags(const std::string& zip_path, const std::string& name) {
  absl::StatusOr<std::unique_ptr<EncryptedFileReader>> reader =
      EncryptedFileReader::Open(zip_path, kDataKey,
                                BundleFileContext("req-42"));
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return -1;
  std::string zip(static_cast<size_t>((*reader)->size()), '\0');
  absl::StatusOr<size_t> read = (*reader)->ReadAt(0, zip.data(), zip.size());
  EXPECT_TRUE(read.ok() && *read == zip.size());
  const std::string header = std::string("PK\x03\x04", 4);
  for (size_t at = zip.find(header); at != std::string::npos;
       at = zip.find(header, at + 1)) {
    if (at + 30 > zip.size()) break;
    auto u16 = [&](size_t offset) {
      return static_cast<unsigned char>(zip[at + offset]) |
             static_cast<unsigned char>(zip[at + offset + 1]) << 8;
    };
    if (zip.compare(at + 30, name.size(), name) == 0 &&
        static_cast<size_t>(u16(26)) == name.size()) {
      return u16(6);
    }
  }
  return -1;
}

// Speed over size: at libzip's default level (9) large exports made the
// bundle deflate-bound; level 1 is 6-7 times faster for a third more bytes.
TEST_F(BundleWriterTest, EntriesAreDeflatedAtTheFastLevel) {
  BundleInput input = TwoStoresAndAFailure();
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());
  for (const char* name : {"manifest.json", "data/crm.json"}) {
    int flags = LocalHeaderFlags(ZipPath(), name);
    ASSERT_GE(flags, 0) << name;
    EXPECT_EQ(flags & 0x6, 0x4) << name << ": deflate option bits";
  }
}

TEST_F(BundleWriterTest, ShaMismatchIsDataLossAndCreatesNothing) {
  BundleInput input = TwoStoresAndAFailure();
  input.stores[2].data_sha256 = Sha256Hex("something else");
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("orders_v2"));
  EXPECT_TRUE(OutDirListing().empty());
}

// A stopping dsard does not wait for a bundle: a cancelled write returns
// CANCELLED and leaves nothing behind, in the ZIP pass and in the parsing
// pass of the Art. 15 answer alike.
TEST_F(BundleWriterTest, CancelledWriteLeavesNoBundle) {
  std::atomic<bool> cancel{true};
  BundleInput input = TwoStoresAndAFailure();
  input.cancel = &cancel;
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kCancelled)
      << result.status();
  EXPECT_TRUE(OutDirListing().empty());
  cancel = false;
  EXPECT_TRUE(WriteExportBundle(input, ZipPath()).ok());
}

TEST_F(BundleWriterTest, MissingDataFileIsDataLoss) {
  BundleInput input = TwoStoresAndAFailure();
  input.stores[0].data_path = (dir_ / "gone.json").string();
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("crm"));
  EXPECT_TRUE(OutDirListing().empty());
}

TEST_F(BundleWriterTest, RejectsStoreNamesThatAreNotPlainIdentifiers) {
  const std::vector<std::string> bad_names = {
      "../etc", "a/b", "", "CRM", "a.json", "x\\y", std::string("a\0b", 3)};
  for (const std::string& bad : bad_names) {
    BundleInput input = TwoStoresAndAFailure();
    input.stores[0].store = bad;
    EXPECT_EQ(WriteExportBundle(input, ZipPath()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  // A FAILED store's name goes into the manifest, so it is checked too.
  BundleInput input = TwoStoresAndAFailure();
  input.stores[1].store = "../billing";
  EXPECT_EQ(WriteExportBundle(input, ZipPath()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(OutDirListing().empty());
}

TEST_F(BundleWriterTest, RejectsDuplicateStoresAndUnknownStatus) {
  BundleInput input = TwoStoresAndAFailure();
  input.stores[2].store = "crm";
  EXPECT_EQ(WriteExportBundle(input, ZipPath()).status().code(),
            absl::StatusCode::kInvalidArgument);
  input = TwoStoresAndAFailure();
  input.stores[1].status = "RUNNING";
  EXPECT_EQ(WriteExportBundle(input, ZipPath()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BundleWriterTest, RewritingAnExistingBundleReplacesIt) {
  BundleInput input = TwoStoresAndAFailure();
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());

  // Second run: the failed store now succeeded.
  std::string billing = R"({"records":[{"invoice":7}]})";
  input.stores[1] =
      Entry("billing", "sqlite", "SUCCEEDED", 1, "",
            WriteData("billing.json", billing), Sha256Hex(billing));
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(OutDirListing(), ElementsAre("bundle.zip"));
  EXPECT_EQ(result->sha256, BundlePlaintext(ZipPath()).sha256);

  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  EXPECT_THAT(zip.Names(),
              ElementsAre("manifest.json", "data/crm.json", "data/billing.json",
                          "data/orders_v2.json"));
  EXPECT_EQ(zip.Read("data/billing.json"), billing);
  nlohmann::json manifest = nlohmann::json::parse(zip.Read("manifest.json"));
  EXPECT_EQ(manifest["files"].size(), 3u);
  EXPECT_EQ(manifest["stores"][1]["status"], "SUCCEEDED");
}

TEST_F(BundleWriterTest, BundlesALargeDataFile) {
  // 20 MiB of JSON-ish text that is not trivially compressible.
  std::string path = (dir_ / "big.json").string();
  Sha256 hash;
  {
    absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> out =
        EncryptedFileWriter::Create(path, kDataKey,
                                    ExportFileContext("req-big"));
    ASSERT_TRUE(out.ok()) << out.status();
    uint64_t x = 88172645463325252ull;
    std::string chunk;
    for (int i = 0; i < 20 * 1024; ++i) {
      chunk.clear();
      while (chunk.size() < 1024) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk += std::to_string(x % 1000000);
        chunk += ',';
      }
      chunk.resize(1024);
      ASSERT_TRUE((*out)->Append(chunk).ok());
      hash.Update(chunk);
    }
    ASSERT_TRUE((*out)->Commit().ok());
  }
  std::string sha = hash.FinishHex();

  BundleInput input;
  input.request_id = "req-big";
  input.data_key = kDataKey;
  input.request_type = "PORTABILITY";
  input.created_at = "2024-05-01T12:00:00Z";
  input.stores.push_back(
      Entry("events", "postgres", "SUCCEEDED", 123456, "", path, sha));
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->size_bytes, static_cast<int64_t>(20u * 1024 * 1024));
  EXPECT_EQ(result->sha256, BundlePlaintext(ZipPath(), "req-big").sha256);

  ZipReader zip(ZipPath(), "req-big");
  ASSERT_TRUE(zip.ok());
  std::string data = zip.Read("data/events.json");
  EXPECT_EQ(data.size(), 20u * 1024 * 1024);
  EXPECT_EQ(Sha256Hex(data), sha);
}

// The organisation's templates, as shipped in templates/art15/.
std::string ShippedTemplatesDir() {
  if (const char* source_dir = std::getenv("DSAR_SOURCE_DIR")) {
    return (fs::path(source_dir) / "templates" / "art15").string();
  }
  return (fs::path(__FILE__).parent_path().parent_path() / "templates" /
          "art15")
      .string();
}

class Art15BundleTest : public BundleWriterTest {
 protected:
  // Two stores, one failed; crm holds users (with a hostile name) and orders.
  BundleInput Art15Input(const std::string& type) {
    BundleInput input;
    input.request_id = "req-42";
    input.data_key = kDataKey;
    input.request_type = type;
    input.created_at = "2024-05-01T12:00:00Z";
    input.templates_dir = ShippedTemplatesDir();
    input.controller = "Example & Co GmbH";
    input.regulation = "GDPR";
    input.received_at = "2024-05-01 14:00 CEST";
    input.deadline = "2024-06-01 23:59 CEST";
    crm_ = R"({"store":"crm","records":[)"
           R"({"collection":"users","data":{"id":7,"email":"a@example.com",)"
           R"("name":"<script>alert(1)</script>","note":"likes | pipes"}},)"
           R"({"collection":"users","data":{"id":8,"email":"b@example.com",)"
           R"("name":"Bob","vip":true,"nick":"_bob_"}},)"
           R"({"collection":"orders","data":{"order_id":1,"user_id":7,)"
           R"("address":"1 Main St, \"Apt\" 2\nCity","items":[1,2],)"
           R"("meta":{"k":"v"},"coupon":null}}]})";
    BundleStoreEntry crm;
    crm.store = "crm";
    crm.kind = "sqlite";
    crm.status = "SUCCEEDED";
    crm.record_count = 3;
    crm.identity_kinds = {"email", "user_id"};
    crm.data_path = WriteData("crm.json", crm_);
    crm.data_sha256 = Sha256Hex(crm_);
    crm.purpose = "Customer accounts";
    crm.legal_basis = "Contract (Art. 6(1)(b))";
    crm.recipients = {"Mailer Inc.", "Hosting Ltd."};
    crm.retention = "7 years after account closure";
    crm.source = "Collected from you at sign-up";
    crm.pii_categories = {
        {"users", {{"email", "contact"}, {"name", "identity"}}},
        {"orders", {{"address", "contact"}}}};
    input.stores.push_back(crm);

    BundleStoreEntry billing;
    billing.store = "billing";
    billing.kind = "jsonl";
    billing.status = "FAILED";
    billing.error = "UNAVAILABLE: connection refused";
    billing.purpose = "Invoicing";
    billing.legal_basis = "Legal obligation (Art. 6(1)(c))";
    billing.retention = "10 years";
    billing.source = "Payment provider";
    billing.pii_categories = {{"invoices", {{"iban", "financial"}}}};
    input.stores.push_back(billing);
    return input;
  }

  // Every entry but the manifest is listed in "files" with its real hash.
  void ExpectManifestCoversEveryEntry(const ZipReader& zip) {
    nlohmann::json manifest = nlohmann::json::parse(zip.Read("manifest.json"));
    std::vector<std::string> names = zip.Names();
    EXPECT_EQ(manifest["files"].size(), names.size() - 1);
    for (const std::string& name : names) {
      if (name == "manifest.json") continue;
      ASSERT_TRUE(manifest["files"].contains(name)) << name;
      EXPECT_EQ(manifest["files"][name], Sha256Hex(zip.Read(name))) << name;
    }
  }
};

TEST_F(Art15BundleTest, AccessBundleHasResponseAndExemptions) {
  absl::StatusOr<BundleResult> result =
      WriteExportBundle(Art15Input("ACCESS"), ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->files,
              ElementsAre("manifest.json", "response.md", "response.html",
                          "exemptions.json", "data/crm.json"));
  EXPECT_THAT(OutDirListing(), ElementsAre("bundle.zip"));  // No temp files.
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  ExpectManifestCoversEveryEntry(zip);
  EXPECT_EQ(zip.Read("data/crm.json"), crm_);

  nlohmann::json manifest = nlohmann::json::parse(zip.Read("manifest.json"));
  EXPECT_EQ(manifest["regulation"], "GDPR");
  EXPECT_EQ(manifest["deadline"], "2024-06-01 23:59 CEST");
  EXPECT_FALSE(manifest["stores"][0].contains("csv_files"));  // ACCESS.

  nlohmann::json exemptions =
      nlohmann::json::parse(zip.Read("exemptions.json"));
  EXPECT_EQ(exemptions["request_id"], "req-42");
  ASSERT_EQ(exemptions["exemptions"].size(), 1u);
  const nlohmann::json& billing = exemptions["exemptions"][0];
  EXPECT_EQ(billing["store"], "billing");
  EXPECT_EQ(billing["kind"], "unavailable");
  EXPECT_EQ(billing["reason"], "UNAVAILABLE: connection refused");
  EXPECT_THAT(billing["legal_basis"].get<std::string>(),
              HasSubstr("Not withheld: technical failure"));
  EXPECT_THAT(billing["legal_basis"].get<std::string>(),
              HasSubstr("Art. 12(3)"));

  const std::string md = zip.Read("response.md");
  // Confirmation, identity only by request id, dates.
  EXPECT_THAT(md, HasSubstr("the data subject of request req-42"));
  EXPECT_THAT(md, HasSubstr("Yes. We process personal data concerning you: "
                            "we found 3 records"));
  EXPECT_THAT(md, HasSubstr("Some systems could not be searched"));
  EXPECT_THAT(md, HasSubstr("**Received:** 2024-05-01 14:00 CEST"));
  // Each system with the identities it was searched with; never "every
  // system" when one could not be searched.
  EXPECT_THAT(md, HasSubstr("| crm | email, user_id | 3 record(s) |"));
  EXPECT_THAT(md, HasSubstr("| billing | could not be searched |"));
  EXPECT_THAT(md, Not(HasSubstr("every system was searched")));
  EXPECT_EQ(manifest["stores"][0]["searched_with"],
            nlohmann::json::array({"email", "user_id"}));
  EXPECT_THAT(md, HasSubstr("**Answer due by:** 2024-06-01 23:59 CEST"));
  EXPECT_THAT(md, HasSubstr("Example \\& Co GmbH"));
  // Data by category, from the inventory's pii_fields, with source/retention.
  EXPECT_THAT(md, HasSubstr("### Contact\n"));
  EXPECT_THAT(md, HasSubstr("### Identity\n"));
  EXPECT_THAT(md, HasSubstr("### Other data (not categorised"));
  EXPECT_LT(md.find("### Contact"), md.find("### Identity"));
  EXPECT_LT(md.find("### Identity"), md.find("### Other data"));
  EXPECT_THAT(md, HasSubstr("- users.email: a@example.com\n"
                            "- users.email: b@example.com\n"
                            "- orders.address: 1 Main St, \"Apt\" 2 City\n"));
  EXPECT_THAT(md, HasSubstr("Source: Collected from you at sign-up. "
                            "Kept: 7 years after account closure."));
  // Markdown escaping: the hostile value stays text.
  EXPECT_THAT(md, HasSubstr("- users.name: \\<script\\>alert(1)\\</script\\>"));
  EXPECT_THAT(md, HasSubstr("likes \\| pipes"));
  EXPECT_THAT(md, HasSubstr("- users.nick: \\_bob\\_\n"));
  EXPECT_THAT(md, HasSubstr("- orders.order_id: 1\n"));
  EXPECT_THAT(md, Not(HasSubstr("<script>")));
  // Processing activities, retention and source for every store.
  EXPECT_THAT(md, HasSubstr("| crm | Customer accounts | Contract (Art. "
                            "6(1)(b)) | Contact, Identity | Mailer Inc., "
                            "Hosting Ltd. |"));
  EXPECT_THAT(md, HasSubstr("| billing | Invoicing | Legal obligation (Art. "
                            "6(1)(c)) | Financial | none |"));
  EXPECT_THAT(md, HasSubstr("| billing | 10 years | Payment provider |"));
  // Rights, including the complaint.
  for (const char* right :
       {"**Rectification**", "**Erasure**", "**Restriction**", "**Objection**",
        "**Portability**",
        "right to lodge a complaint with a supervisory authority"}) {
    EXPECT_THAT(md, HasSubstr(right));
  }
  // The failed store as an exemption.
  EXPECT_THAT(md, HasSubstr("- **billing** (unavailable): UNAVAILABLE: "
                            "connection refused. Not withheld"));

  const std::string html = zip.Read("response.html");
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html,
              HasSubstr("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
  EXPECT_THAT(html, Not(HasSubstr("<script>")));
  EXPECT_THAT(html, HasSubstr("Example &amp; Co GmbH"));
  EXPECT_THAT(html, HasSubstr("the data subject of request req-42"));
  EXPECT_THAT(html, HasSubstr("<h3>Contact</h3>"));
  EXPECT_THAT(html, HasSubstr("right to lodge a complaint with a supervisory "
                              "authority"));
  EXPECT_THAT(html, HasSubstr("<strong>billing</strong> (unavailable)"));
  EXPECT_THAT(html, HasSubstr("<td>crm</td><td>Customer accounts</td>"));
}

TEST_F(Art15BundleTest, PortabilityWritesOneRfc4180CsvPerCollection) {
  absl::StatusOr<BundleResult> result =
      WriteExportBundle(Art15Input("PORTABILITY"), ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->files,
              ElementsAre("manifest.json", "response.md", "response.html",
                          "exemptions.json", "data/crm.json",
                          "data/crm.users.csv", "data/crm.orders.csv"));
  EXPECT_THAT(OutDirListing(), ElementsAre("bundle.zip"));  // CSV dir gone.
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  ExpectManifestCoversEveryEntry(zip);

  // Header = fields in first-seen order; a field missing from a record is an
  // empty cell; CRLF line ends.
  EXPECT_EQ(zip.Read("data/crm.users.csv"),
            "id,email,name,note,vip,nick\r\n"
            "7,a@example.com,<script>alert(1)</script>,likes | pipes,,\r\n"
            "8,b@example.com,Bob,,true,_bob_\r\n");
  // Quoting: comma, quote (doubled) and newline; arrays and objects as JSON;
  // null empty.
  EXPECT_EQ(zip.Read("data/crm.orders.csv"),
            "order_id,user_id,address,items,meta,coupon\r\n"
            "1,7,\"1 Main St, \"\"Apt\"\" 2\nCity\",\"[1,2]\","
            "\"{\"\"k\"\":\"\"v\"\"}\",\r\n");

  nlohmann::json manifest = nlohmann::json::parse(zip.Read("manifest.json"));
  EXPECT_EQ(manifest["stores"][0]["csv_files"],
            nlohmann::json({"data/crm.users.csv", "data/crm.orders.csv"}));
  EXPECT_FALSE(manifest["stores"][1].contains("csv_files"));
  EXPECT_THAT(zip.Read("response.md"), HasSubstr("as JSON and as CSV"));
}

TEST_F(Art15BundleTest, CollectionNamesAreSanitisedInEntryNames) {
  BundleInput input = Art15Input("PORTABILITY");
  input.stores.resize(1);
  crm_ = R"({"store":"crm","records":[)"
         R"({"collection":"../etc/passwd","data":{"a":1}},)"
         R"({"collection":"a.b","data":{"b":2}},)"
         R"({"collection":"a_b","data":{"c":3}}]})";
  input.stores[0].data_path = WriteData("crm.json", crm_);
  input.stores[0].data_sha256 = Sha256Hex(crm_);
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->files,
              ElementsAre("manifest.json", "response.md", "response.html",
                          "exemptions.json", "data/crm.json",
                          "data/crm.___etc_passwd.csv", "data/crm.a_b.csv",
                          "data/crm.a_b-2.csv"));
}

TEST_F(Art15BundleTest, CancelledWhileParsingExportsLeavesNoBundle) {
  std::atomic<bool> cancel{true};
  BundleInput input = Art15Input("PORTABILITY");
  input.cancel = &cancel;
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kCancelled)
      << result.status();
  EXPECT_TRUE(OutDirListing().empty());
}

TEST_F(Art15BundleTest, NoDataFoundAndNothingWithheld) {
  BundleInput input = Art15Input("ACCESS");
  input.stores.resize(1);
  crm_ = R"({"store":"crm","records":[]})";
  input.stores[0].data_path = WriteData("crm.json", crm_);
  input.stores[0].data_sha256 = Sha256Hex(crm_);
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  std::string md = zip.Read("response.md");
  EXPECT_THAT(md, HasSubstr("No. We searched every system listed below and "
                            "found no personal data concerning you."));
  EXPECT_THAT(md, Not(HasSubstr("Yes. We process")));
  EXPECT_THAT(md, HasSubstr("Nothing was withheld, and every system was "
                            "searched."));
  EXPECT_EQ(nlohmann::json::parse(zip.Read("exemptions.json"))["exemptions"],
            nlohmann::json::array());
}

TEST_F(Art15BundleTest, WithheldDataIsListedWithItsLegalBasis) {
  BundleInput input = Art15Input("ACCESS");
  input.regulation = "CCPA";
  input.withheld.push_back({"crm", "Notes about another customer",
                            "Cal. Civ. Code 1798.145(k): rights of others"});
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  nlohmann::json exemptions =
      nlohmann::json::parse(zip.Read("exemptions.json"))["exemptions"];
  ASSERT_EQ(exemptions.size(), 2u);
  EXPECT_THAT(exemptions[0]["legal_basis"].get<std::string>(),
              HasSubstr("1798.130"));
  EXPECT_EQ(exemptions[1],
            nlohmann::json({{"store", "crm"},
                            {"kind", "withheld"},
                            {"reason", "Notes about another customer"},
                            {"legal_basis",
                             "Cal. Civ. Code 1798.145(k): rights of others"}}));
  std::string md = zip.Read("response.md");
  EXPECT_THAT(md,
              HasSubstr("**crm** (withheld): Notes about another customer"));
  EXPECT_THAT(md, HasSubstr("California Privacy Protection Agency"));
  EXPECT_THAT(md, HasSubstr("right to lodge a complaint with a supervisory "
                            "authority"));
  EXPECT_THAT(md, Not(HasSubstr("(Art. 17)")));  // GDPR wording left out.

  input.withheld[0].legal_basis.clear();
  absl::StatusOr<BundleResult> bad = WriteExportBundle(input, ZipPath());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("withheld[0]"));
}

TEST_F(Art15BundleTest, DataKeptOnErasureIsListedWithItsLegalReason) {
  BundleInput input = Art15Input("ACCESS");
  input.retained.push_back({"crm",
                            "invoices.amount is kept when your data is erased",
                            "Tax law: HGB 257, 10 years"});
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  nlohmann::json exemptions =
      nlohmann::json::parse(zip.Read("exemptions.json"))["exemptions"];
  ASSERT_FALSE(exemptions.empty());
  EXPECT_EQ(exemptions.back(),
            nlohmann::json(
                {{"store", "crm"},
                 {"kind", "retained"},
                 {"reason", "invoices.amount is kept when your data is erased"},
                 {"legal_basis", "Tax law: HGB 257, 10 years"}}));
  std::string md = zip.Read("response.md");
  EXPECT_THAT(md, HasSubstr("What we keep if you ask us to erase your data"));
  EXPECT_THAT(md, HasSubstr("**crm**: invoices.amount is kept when your data "
                            "is erased. Tax law: HGB 257, 10 years"));
  EXPECT_THAT(zip.Read("response.html"),
              HasSubstr("Tax law: HGB 257, 10 years"));

  input.retained[0].legal_basis.clear();
  absl::StatusOr<BundleResult> bad = WriteExportBundle(input, ZipPath());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("retained[0]"));
}

TEST_F(Art15BundleTest, NothingKeptMeansNoErasureSection) {
  BundleInput input = Art15Input("ACCESS");
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  EXPECT_THAT(zip.Read("response.md"),
              Not(HasSubstr("What we keep if you ask us")));
}

TEST_F(Art15BundleTest, ResponseShowsABoundedSampleOfEachCategory) {
  BundleInput input = Art15Input("ACCESS");
  input.stores.resize(1);
  crm_ = R"({"store":"crm","records":[)";
  for (int i = 0; i < kMaxResponseValuesPerCategory + 5; ++i) {
    if (i > 0) crm_ += ',';
    crm_ += R"({"collection":"users","data":{"email":"u)" + std::to_string(i) +
            R"(@example.com"}})";
  }
  crm_ += "]}";
  input.stores[0].data_path = WriteData("crm.json", crm_);
  input.stores[0].data_sha256 = Sha256Hex(crm_);
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());
  ZipReader zip(ZipPath());
  std::string md = zip.Read("response.md");
  EXPECT_THAT(md, HasSubstr("u99@example.com"));
  EXPECT_THAT(md, Not(HasSubstr("u100@example.com")));
  EXPECT_THAT(md, HasSubstr("- and 5 more values, all in `data/crm.json`"));
  EXPECT_THAT(md, HasSubstr("we found 105 records"));
}

TEST_F(Art15BundleTest, MissingTemplateIsAnErrorNamingTheFile) {
  BundleInput input = Art15Input("ACCESS");
  fs::path templates = dir_ / "templates";
  fs::create_directories(templates);
  input.templates_dir = templates.string();
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(),
              HasSubstr((templates / "response.md.mustache").string()));

  // An organisation's own Markdown template is used; the HTML one is missing.
  std::ofstream(templates / "response.md.mustache")
      << "Answer for {{request_id}}\n";
  result = WriteExportBundle(input, ZipPath());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(),
              HasSubstr((templates / "response.html.mustache").string()));
  EXPECT_TRUE(OutDirListing().empty());

  std::ofstream(templates / "response.html.mustache") << "{{#stores}}oops\n";
  result = WriteExportBundle(input, ZipPath());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(),
              HasSubstr("response.html.mustache is not valid Mustache"));
  EXPECT_TRUE(OutDirListing().empty());

  std::ofstream(templates / "response.html.mustache") << "<p>{{request_id}}\n";
  ASSERT_TRUE(WriteExportBundle(input, ZipPath()).ok());
  ZipReader zip(ZipPath());
  EXPECT_EQ(zip.Read("response.md"), "Answer for req-42\n");
}

TEST_F(Art15BundleTest, RejectsExportsThatAreNotTheDocumentedFormat) {
  const std::vector<std::string> bad_exports = {
      R"({"store":"crm"})",
      R"({"store":"crm","records":{"a":{"b":1}}})",
      R"({"store":"crm","records":[1]})",
      R"({"store":"crm","records":[{"collection":"t"}]})",
      R"({"store":"crm","records":[{"collection":1,"data":{}}]})",
      R"({"store":"crm","records":[{"collection":"t","data":{}})",
      "not json",
  };
  for (const std::string& bad : bad_exports) {
    BundleInput input = Art15Input("PORTABILITY");
    input.stores[0].data_path = WriteData("crm.json", bad);
    input.stores[0].data_sha256 = Sha256Hex(bad);
    absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss) << bad;
    EXPECT_THAT(result.status().message(), HasSubstr("crm")) << bad;
    EXPECT_THAT(OutDirListing(), testing::IsEmpty()) << bad;
  }
}

TEST_F(Art15BundleTest, RejectsAnUnknownRegulation) {
  BundleInput input = Art15Input("ACCESS");
  input.regulation = "";
  EXPECT_EQ(WriteExportBundle(input, ZipPath()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Peak resident memory (VmHWM) in KiB, after resetting it when the kernel
// allows (/proc/self/clear_refs "5"); -1 when unknown.
int64_t ResetAndReadPeakRssKb(bool reset) {
  if (reset) std::ofstream("/proc/self/clear_refs") << "5";
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST_F(Art15BundleTest, LargePortabilityExportStreamsWithFlatMemory) {
  // ~18 MiB of export: parsed into a DOM it would take several times that.
  BundleInput input = Art15Input("PORTABILITY");
  input.stores.resize(1);
  std::string path = (dir_ / "big.json").string();
  Sha256 hash;
  int64_t records = 0;
  int64_t export_bytes = 0;
  {
    absl::StatusOr<std::unique_ptr<EncryptedFileWriter>> out =
        EncryptedFileWriter::Create(path, kDataKey,
                                    ExportFileContext("req-42"));
    ASSERT_TRUE(out.ok()) << out.status();
    std::string chunk = R"({"store":"crm","records":[)";
    for (int i = 0; i < 100000; ++i) {
      if (i > 0) chunk += ',';
      chunk +=
          R"({"collection":"events","data":{"id":)" + std::to_string(i) +
          R"(,"email":"user@example.com","payload":"value, with \"quotes\" )" +
          std::string(80, 'x') + R"("}})";
      ++records;
      if (chunk.size() > (1 << 20)) {
        ASSERT_TRUE((*out)->Append(chunk).ok());
        hash.Update(chunk);
        chunk.clear();
      }
    }
    chunk += "]}";
    ASSERT_TRUE((*out)->Append(chunk).ok());
    hash.Update(chunk);
    export_bytes = (*out)->size();
    ASSERT_TRUE((*out)->Commit().ok());
  }
  int64_t export_kb = export_bytes / 1024;
  ASSERT_GT(export_kb, 16 * 1024);
  input.stores[0].data_path = path;
  input.stores[0].data_sha256 = hash.FinishHex();
  input.stores[0].record_count = records;

  int64_t before_kb = ResetAndReadPeakRssKb(/*reset=*/true);
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  int64_t after_kb = ResetAndReadPeakRssKb(/*reset=*/false);
  ASSERT_TRUE(result.ok()) << result.status();
  // Under ASan freed memory sits in its quarantine, so the peak says nothing
  // about the writer there (tools/test --sanitize); the plain build checks.
#if !defined(__SANITIZE_ADDRESS__)
  constexpr bool kRssMeansSomething = true;
#else
  constexpr bool kRssMeansSomething = false;
#endif
  if (kRssMeansSomething && before_kb >= 0 && after_kb >= 0) {
    EXPECT_LT(after_kb - before_kb, 24 * 1024)
        << "peak RSS grew by " << (after_kb - before_kb) << " KiB for a "
        << export_kb << " KiB export";
  }
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  std::string csv = zip.Read("data/crm.events.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), records + 1);
  EXPECT_EQ(csv.substr(0, csv.find("\r\n")), "id,email,payload");
  nlohmann::json manifest = nlohmann::json::parse(zip.Read("manifest.json"));
  EXPECT_EQ(manifest["files"]["data/crm.events.csv"], Sha256Hex(csv));
}

TEST_F(BundleWriterTest, DataKeyIsRequired) {
  for (const std::string& key : {std::string(), std::string(16, 'k')}) {
    BundleInput input = TwoStoresAndAFailure();
    input.data_key = key;
    absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(result.status().message(), HasSubstr("data_key"));
  }
  EXPECT_TRUE(OutDirListing().empty());
}

TEST_F(BundleWriterTest, ExportOfAnotherRequestOrKeyIsDataLoss) {
  BundleInput input = TwoStoresAndAFailure();
  // Uploaded for another request: bound to its context.
  WriteExport(input.stores[0].data_path, crm_, "req-43");
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("crm"));
  EXPECT_TRUE(OutDirListing().empty());

  // The right request, another key.
  WriteExport(input.stores[0].data_path, crm_, "req-42");
  input.data_key = std::string(kEncryptedFileKeyBytes, 'e');
  result = WriteExportBundle(input, ZipPath());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("crm"));
  EXPECT_TRUE(OutDirListing().empty());
}

TEST_F(BundleWriterTest, BundleIsEncryptedForItsRequest) {
  ASSERT_TRUE(WriteExportBundle(TwoStoresAndAFailure(), ZipPath()).ok());
  std::ifstream in(ZipPath(), std::ios::binary);
  std::string raw(std::istreambuf_iterator<char>(in), {});
  EXPECT_EQ(raw.substr(0, 8), "DSARENC1");  // Not "PK\3\4".
  EXPECT_EQ(OpenEncryptedZip(ZipPath(), kDataKey, BundleFileContext("req-43"))
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      OpenEncryptedZip(ZipPath(), std::string(kEncryptedFileKeyBytes, 'e'),
                       BundleFileContext("req-42"))
          .status()
          .code(),
      absl::StatusCode::kDataLoss);
}

// Every regular file under `dir` that holds `needle` in its raw bytes. Files
// that vanish while it looks are skipped.
std::set<std::string> FilesContaining(const fs::path& dir,
                                      const std::string& needle,
                                      std::set<std::string>* seen = nullptr) {
  std::set<std::string> found;
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end;
       !error && it != end; it.increment(error)) {
    if (!it->is_regular_file(error)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    if (!in) continue;
    if (seen != nullptr) seen->insert(it->path().string());
    std::string raw(std::istreambuf_iterator<char>(in), {});
    if (raw.find(needle) != std::string::npos) {
      found.insert(it->path().string());
    }
  }
  return found;
}

TEST_F(Art15BundleTest, NoPlaintextPersonalDataOnDisk) {
  // Big enough that the CSV temporaries exist for a while, so the watcher
  // below sees them as well as the exports and the bundle.
  BundleInput input = Art15Input("PORTABILITY");
  crm_ = R"({"store":"crm","records":[)";
  for (int i = 0; i < 20000; ++i) {
    if (i > 0) crm_ += ',';
    crm_ += R"({"collection":"users","data":{"id":)" + std::to_string(i) +
            R"(,"email":"person)" + std::to_string(i) +
            R"(@example.com","note":")" + std::string(100, 'n') + R"("}})";
  }
  crm_ += "]}";
  input.stores[0].data_path = WriteData("crm.json", crm_);
  input.stores[0].data_sha256 = Sha256Hex(crm_);
  const std::string personal = "@example.com";

  std::atomic<bool> done{false};
  std::set<std::string> leaked;
  std::set<std::string> seen;
  std::thread watcher([&] {
    while (!done.load()) {
      for (const std::string& path : FilesContaining(dir_, personal, &seen)) {
        leaked.insert(path);
      }
    }
  });
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  done = true;
  watcher.join();
  ASSERT_TRUE(result.ok()) << result.status();

  EXPECT_THAT(leaked, testing::IsEmpty());
  EXPECT_THAT(FilesContaining(dir_, personal), testing::IsEmpty());
  EXPECT_THAT(FilesContaining(dir_, "person1@"), testing::IsEmpty());
  // How many files the watcher read (the CSV temporaries among them).
  RecordProperty("files_watched", static_cast<int>(seen.size()));
  // The data is there, for whoever holds the key.
  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  EXPECT_THAT(zip.Read("data/crm.users.csv"),
              HasSubstr("7,person7@example.com,"));
  EXPECT_THAT(zip.Read("data/crm.json"), HasSubstr("person19999@example.com"));
}

}  // namespace
}  // namespace dsar
