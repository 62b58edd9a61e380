#include "model/bounded_memo.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace dsar {
namespace {

TEST(BoundedMemoTest, ComputesAKeyOnceWhileItIsRemembered) {
  BoundedMemo<std::string> memo(8);
  int computed = 0;
  auto upper = [&](const std::string& text) {
    return [&computed, text] {
      ++computed;
      std::string out = text;
      for (char& c : out) c = static_cast<char>(c - 'a' + 'A');
      return out;
    };
  };
  EXPECT_EQ(memo.Get("abc", upper("abc")), "ABC");
  EXPECT_EQ(memo.Get("abc", upper("abc")), "ABC");
  EXPECT_EQ(computed, 1);
  EXPECT_EQ(memo.Get("xyz", upper("xyz")), "XYZ");
  EXPECT_EQ(computed, 2);
}

TEST(BoundedMemoTest, AFullMemoIsEmptiedAndFillsAgain) {
  BoundedMemo<int> memo(2);
  int computed = 0;
  auto length = [&](const std::string& key) {
    return [&computed, key] {
      ++computed;
      return static_cast<int>(key.size());
    };
  };
  EXPECT_EQ(memo.Get("a", length("a")), 1);
  EXPECT_EQ(memo.Get("bb", length("bb")), 2);
  EXPECT_EQ(computed, 2);
  // Full: the third key empties it, so "a" is computed again, then kept.
  EXPECT_EQ(memo.Get("ccc", length("ccc")), 3);
  EXPECT_EQ(memo.Get("a", length("a")), 1);
  EXPECT_EQ(computed, 4);
  EXPECT_EQ(memo.Get("ccc", length("ccc")), 3);
  EXPECT_EQ(computed, 4);
}

TEST(BoundedMemoTest, ThreadsShareItsValues) {
  BoundedMemo<std::string> memo(16);
  std::vector<std::thread> threads;
  std::vector<std::string> answers(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&memo, &answers, i] {
      for (int round = 0; round < 1000; ++round) {
        std::string key = std::to_string(round % 20);
        answers[i] = memo.Get(key, [key] { return key + "!"; });
        if (answers[i] != key + "!") return;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& answer : answers) EXPECT_EQ(answer, "19!");
}

}  // namespace
}  // namespace dsar
