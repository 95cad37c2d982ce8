// A progress line for long work: rewritten in place on a terminal at most every 200 ms, silent otherwise
// (unless forced), finished with a newline.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace pvnet::tools {

class Progress {
 public:
  Progress(std::string what, uint64_t total, bool force = false)
      : what_(std::move(what)), total_(total), enabled_(force || ::isatty(STDERR_FILENO)) {}
  ~Progress() { finish(); }

  void update(uint64_t done) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
    if (total_ > 0)
      std::fprintf(stderr, "\r%s: %llu/%llu (%3.0f%%) %.0f/s   ", what_.c_str(), (unsigned long long)done,
                   (unsigned long long)total_, 100.0 * static_cast<double>(done) / static_cast<double>(total_), rate);
    else
      std::fprintf(stderr, "\r%s: %llu %.0f/s   ", what_.c_str(), (unsigned long long)done, rate);
    printed_ = true;
  }
  void finish() {
    if (printed_) std::fputc('\n', stderr);
    printed_ = false;
  }

 private:
  std::string what_;
  uint64_t total_;
  bool enabled_;
  bool printed_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace pvnet::tools
