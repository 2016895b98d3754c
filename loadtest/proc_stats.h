// CPU time and memory of a process tree, read from /proc (Linux only).
#pragma once

#include <cstdint>
#include <string>

namespace skirmish::loadtest {

struct TreeSample {
  double cpu_s = 0;      // utime + stime of the root and its live descendants, seconds
  uint64_t pss_kib = 0;  // proportional set size summed (shared memory counted once)
  uint64_t rss_kib = 0;  // resident set size summed (shared pages counted per process)
  int processes = 0;     // 0: the root is gone
};

// The process `root` and every live descendant.
TreeSample sample_tree(int root);

// This process's own CPU time (all threads), seconds.
double self_cpu_s();

// One line each: kernel, CPU model and count, memory.
struct Machine {
  std::string hostname, kernel, cpu_model;
  unsigned cpus = 0;
  uint64_t mem_total_kib = 0;
};
Machine describe_machine();

}  // namespace skirmish::loadtest
