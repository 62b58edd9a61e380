#include "gateway/next_request_spin.h"

#include "gtest/gtest.h"

namespace dsar::gateway {
namespace {

TEST(NextRequestSpinTest, SpinsWhileRequestsComeWithinTheWindow) {
  NextRequestSpin spin(absl::Microseconds(100));
  EXPECT_TRUE(spin.ShouldSpin()) << "a new connection's first request";
  spin.RequestCame(absl::Microseconds(40));
  EXPECT_TRUE(spin.ShouldSpin());
  spin.RequestCame(absl::Microseconds(100));
  EXPECT_TRUE(spin.ShouldSpin()) << "the window's end is within it";
}

TEST(NextRequestSpinTest, AClientThatPausesStopsTheSpinUntilItIsQuickAgain) {
  NextRequestSpin spin(absl::Microseconds(100));
  spin.RequestCame(absl::Milliseconds(20));
  EXPECT_FALSE(spin.ShouldSpin());
  spin.RequestCame(absl::Milliseconds(20));
  EXPECT_FALSE(spin.ShouldSpin());
  // Measured while the thread slept: the client is quick again.
  spin.RequestCame(absl::Microseconds(70));
  EXPECT_TRUE(spin.ShouldSpin());
}

TEST(NextRequestSpinTest, AZeroWindowNeverSpins) {
  NextRequestSpin spin(absl::ZeroDuration());
  EXPECT_FALSE(spin.ShouldSpin());
  spin.RequestCame(absl::ZeroDuration());
  EXPECT_FALSE(spin.ShouldSpin());
}

TEST(SpinSlotsTest, NoMoreTakenAtOnceThanThereAreSlots) {
  SpinSlots slots(2);
  EXPECT_TRUE(slots.TryTake());
  EXPECT_TRUE(slots.TryTake());
  EXPECT_FALSE(slots.TryTake());
  slots.Give();
  EXPECT_TRUE(slots.TryTake());
  EXPECT_FALSE(slots.TryTake());
}

TEST(SpinSlotsTest, NoSlotsNeverSpins) {
  SpinSlots slots(0);
  EXPECT_FALSE(slots.TryTake());
}

}  // namespace
}  // namespace dsar::gateway
