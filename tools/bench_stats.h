#ifndef DSAR_TOOLS_BENCH_STATS_H_
#define DSAR_TOOLS_BENCH_STATS_H_

// Timing and summary helpers shared by the benchmark programs in tools/.

#include <algorithm>
#include <chrono>
#include <vector>

namespace dsar::bench {

using Clock = std::chrono::steady_clock;

// Seconds since `start`.
inline double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The median (mean of the middle two for an even count); 0 when empty.
inline double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The value at quantile q (0..1) by nearest rank; 0 when empty.
inline double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(q * values.size() + 0.999999);
  rank = std::min(std::max<size_t>(rank, 1), values.size());
  return values[rank - 1];
}

}  // namespace dsar::bench

#endif  // DSAR_TOOLS_BENCH_STATS_H_
