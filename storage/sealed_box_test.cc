#include "storage/sealed_box.h"

#include "gtest/gtest.h"

namespace dsar {
namespace {

SealedBox Box(char fill) {
  absl::StatusOr<SealedBox> box = SealedBox::Create(std::string(32, fill));
  EXPECT_TRUE(box.ok()) << box.status();
  return *box;
}

TEST(SealedBoxTest, OpensWhatItSealedAndNothingElse) {
  SealedBox box = Box('k');
  absl::StatusOr<std::string> sealed = box.Seal("12345678", "dsr_1/7");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->find("12345678"), std::string::npos);
  absl::StatusOr<std::string> opened = box.Open(*sealed, "dsr_1/7");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "12345678");
  // Another context, another key, a flipped bit, a truncation: refused.
  EXPECT_EQ(box.Open(*sealed, "dsr_2/7").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Box('x').Open(*sealed, "dsr_1/7").status().code(),
            absl::StatusCode::kDataLoss);
  std::string flipped = *sealed;
  flipped[14] ^= 1;
  EXPECT_EQ(box.Open(flipped, "dsr_1/7").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(box.Open(sealed->substr(0, 20), "dsr_1/7").status().code(),
            absl::StatusCode::kDataLoss);
  // Two seals of one value differ (random nonce).
  EXPECT_NE(*box.Seal("12345678", "dsr_1/7"), *sealed);
}

TEST(SealedBoxTest, KeyMustBe32Bytes) {
  EXPECT_EQ(SealedBox::Create("short").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsar
