// Process helpers shared by every role: clocks, titles, randomness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace skirmish::core {

// CLOCK_MONOTONIC, the same clock in every process of the machine, so a
// heartbeat written by one process can be aged by another.
int64_t monotonic_ms();
int64_t monotonic_us();

// Remembers argv so set_process_title can rewrite it (for ps); call first
// thing in main.
// It also keeps a copy of argv and the path of the running executable, for
// the binary upgrade (USR2), which executes them again.
void init_process_title(int argc, char** argv);
const std::vector<std::string>& original_argv();
// readlink(/proc/self/exe) at start, before an upgrade could replace the
// file: the path the new binary is installed at.
const std::string& executable_path();
// "skirmish: worker 3" in ps and /proc/PID/cmdline; the first 15 bytes also
// become the comm name (top, /proc/PID/comm).
void set_process_title(const std::string& title);

// Fills buf from the kernel CSPRNG (getrandom). False only if the kernel
// refuses, which callers treat as fatal.
bool random_bytes(void* buf, size_t len);

}  // namespace skirmish::core
