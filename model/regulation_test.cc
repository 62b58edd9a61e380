#include "model/regulation.h"

#include "gtest/gtest.h"

namespace dsar {
namespace {

TEST(Regulation, NamesRoundTrip) {
  EXPECT_EQ(ParseRegulation("GDPR"), Regulation::kGdpr);
  EXPECT_EQ(ParseRegulation("CCPA"), Regulation::kCcpa);
  for (Regulation regulation : {Regulation::kGdpr, Regulation::kCcpa}) {
    EXPECT_EQ(ParseRegulation(RegulationName(regulation)), regulation);
  }
}

TEST(Regulation, OnlyTheExactNamesParse) {
  for (const char* name : {"", "gdpr", "Ccpa", " GDPR", "UK-GDPR", "LGPD"}) {
    EXPECT_FALSE(ParseRegulation(name).has_value()) << '"' << name << '"';
  }
}

TEST(Regulation, DefaultIsGdpr) {
  EXPECT_EQ(ParseRegulation(kDefaultRegulation), Regulation::kGdpr);
}

}  // namespace
}  // namespace dsar
