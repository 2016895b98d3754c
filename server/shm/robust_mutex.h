// Robust, process-shared mutexes for the shared-memory segment.
//
// Contract
// - A RobustMutex lives inside the segment and is initialised exactly once, by
//   the master, before any fork (init_robust_mutex). It is never
//   re-initialised while the segment is in use.
// - Every lock goes through one RAII Guard. When the previous owner died while
//   holding the lock (pthread_mutex_lock returns EOWNERDEAD), the guard runs the
//   caller's repair step on the protected data FIRST and only then calls
//   pthread_mutex_consistent: recovering a lock does not repair what it
//   protected. The guard then reports recovered() == true and the process-wide
//   counter recoveries_total() goes up by one.
// - ENOTRECOVERABLE (someone unlocked after EOWNERDEAD without calling
//   pthread_mutex_consistent; our Guard never does that) cannot be repaired:
//   re-initialising a mutex that other processes may be blocked on is
//   undefined behaviour. The guard reports ok() == false and error() ==
//   ENOTRECOVERABLE. Callers treat the whole segment as corrupt: they log one
//   line and abort the process. The state stays in the segment, so respawning
//   children does not help: the tables first set Header::corrupt (through
//   mark_corrupt_and_report), and a master that sees it restarts the whole
//   instance instead of respawning children, which makes a fresh segment.
// - Locks are leaves: hold at most one shm lock at a time, never across I/O,
//   a syscall that can block, or a call into libuv.
// - Support for robust mutexes is checked when the build is configured
//   (server/shm/CMakeLists.txt runs a program that sees EOWNERDEAD), not with
//   `#ifdef PTHREAD_MUTEX_ROBUST`, which is an enum on glibc.
#pragma once

#include <pthread.h>

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace skirmish::shm {

struct RobustMutex {
  pthread_mutex_t m;
};
static_assert(std::is_trivially_copyable_v<RobustMutex>);
static_assert(std::is_standard_layout_v<RobustMutex>);

// Initialises `mu` as PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST.
// Returns 0 or an errno value.
int init_robust_mutex(RobustMutex& mu);

// Repair step run under the lock after EOWNERDEAD, before the mutex is marked
// consistent. `ctx` is whatever the caller passed to the Guard.
using RepairFn = void (*)(void* ctx);

// Number of EOWNERDEAD recoveries seen by this process (all locks).
std::uint64_t recoveries_total();

class Guard {
 public:
  // The repair step, if any, runs inside the constructor: `ctx` only has to
  // stay valid until the constructor returns.
  // Blocks until the lock is taken (or is found unrecoverable).
  explicit Guard(RobustMutex& mu, RepairFn repair = nullptr,
                 void* ctx = nullptr);
  // Gives up after `timeout` (CLOCK_MONOTONIC): ok() false, error() ETIMEDOUT.
  // Meant for tests and watchdogs; the tables use the blocking form.
  Guard(RobustMutex& mu, std::chrono::milliseconds timeout,
        RepairFn repair = nullptr, void* ctx = nullptr);
  ~Guard();

  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  Guard(Guard&&) = delete;
  Guard& operator=(Guard&&) = delete;

  // True when the lock is held.
  bool ok() const { return locked_; }
  // True when the previous owner had died and the repair step ran.
  bool recovered() const { return recovered_; }
  // 0 when ok(); else ENOTRECOVERABLE, ETIMEDOUT or another errno value.
  int error() const { return error_; }

 private:
  void after_lock(int rc, RepairFn repair, void* ctx);

  RobustMutex& mu_;
  bool locked_ = false;
  bool recovered_ = false;
  int error_ = 0;
};

// Called by the tables when a Guard fails (ok() false). `what` names the lock.
// The default handler writes one line to stderr and calls abort(). A process
// installs its own (log through spdlog, flush, abort). If the handler returns,
// the table operation fails with its "nothing done" value.
using LockFailureHandler = void (*)(const char* what, int error);
void set_lock_failure_handler(LockFailureHandler handler);
void report_lock_failure(const char* what, int error);

// What the tables call when a Guard fails: sets *corrupt_flag (the header's
// `corrupt` field, so the master stops respawning children into a broken
// segment) when it is not null, then calls the failure handler.
void mark_corrupt_and_report(std::uint32_t* corrupt_flag, const char* what,
                             int error);

}  // namespace skirmish::shm
