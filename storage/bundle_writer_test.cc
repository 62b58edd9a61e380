#include "storage/bundle_writer.h"

#include <unistd.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace dsar {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

  std::string WriteData(const std::string& name, const std::string& contents) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  BundleInput TwoStoresAndAFailure() {
    BundleInput input;
    input.request_id = "req-42";
    input.request_type = "ACCESS";
    input.created_at = "2024-05-01T12:00:00Z";
    crm_ = R"({"records":[{"email":"a@example.com"},{"email":"b@x.org"}]})";
    orders_ = R"({"records":[{"order":1}]})";
    input.stores.push_back({"crm", "postgres", "SUCCEEDED", 2, "",
                            WriteData("crm.json", crm_), Sha256Hex(crm_)});
    input.stores.push_back({"billing", "sqlite", "FAILED", 0,
                            "UNAVAILABLE: connection refused", "", ""});
    input.stores.push_back({"orders_v2", "sqlite", "SUCCEEDED", 1, "",
                            WriteData("orders.json", orders_),
                            Sha256Hex(orders_)});
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

// The entry names of `zip_path` in archive order, and a reader for each.
class ZipReader {
 public:
  explicit ZipReader(const std::string& path) {
    int error = 0;
    archive_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error);
  }
  ~ZipReader() {
    if (archive_ != nullptr) zip_discard(archive_);
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
  zip_t* archive_ = nullptr;
};

TEST_F(BundleWriterTest, WritesManifestAndDataEntries) {
  BundleInput input = TwoStoresAndAFailure();
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();

  EXPECT_THAT(result->files, ElementsAre("manifest.json", "data/crm.json",
                                         "data/orders_v2.json"));
  absl::StatusOr<std::string> zip_sha = Sha256FileHex(ZipPath());
  ASSERT_TRUE(zip_sha.ok());
  EXPECT_EQ(result->sha256, *zip_sha);
  EXPECT_EQ(result->size_bytes, static_cast<int64_t>(fs::file_size(ZipPath())));
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

TEST_F(BundleWriterTest, ShaMismatchIsDataLossAndCreatesNothing) {
  BundleInput input = TwoStoresAndAFailure();
  input.stores[2].data_sha256 = Sha256Hex("something else");
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("orders_v2"));
  EXPECT_TRUE(OutDirListing().empty());
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
  input.stores[1] = {"billing",
                     "sqlite",
                     "SUCCEEDED",
                     1,
                     "",
                     WriteData("billing.json", billing),
                     Sha256Hex(billing)};
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(OutDirListing(), ElementsAre("bundle.zip"));
  EXPECT_EQ(result->sha256, *Sha256FileHex(ZipPath()));

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
    std::ofstream out(path, std::ios::binary);
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
      out << chunk;
      hash.Update(chunk);
    }
  }
  std::string sha = hash.FinishHex();
  ASSERT_EQ(fs::file_size(path), 20u * 1024 * 1024);

  BundleInput input;
  input.request_id = "req-big";
  input.request_type = "PORTABILITY";
  input.created_at = "2024-05-01T12:00:00Z";
  input.stores.push_back(
      {"events", "postgres", "SUCCEEDED", 123456, "", path, sha});
  absl::StatusOr<BundleResult> result = WriteExportBundle(input, ZipPath());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->size_bytes, static_cast<int64_t>(20u * 1024 * 1024));

  ZipReader zip(ZipPath());
  ASSERT_TRUE(zip.ok());
  std::string data = zip.Read("data/events.json");
  EXPECT_EQ(data.size(), 20u * 1024 * 1024);
  EXPECT_EQ(Sha256Hex(data), sha);
}

}  // namespace
}  // namespace dsar
