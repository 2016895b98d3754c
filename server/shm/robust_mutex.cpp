#include "shm/robust_mutex.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace skirmish::shm {
namespace {

std::atomic<std::uint64_t> g_recoveries{0};

void default_lock_failure(const char* what, int error) {
  char line[256];
  int n = std::snprintf(line, sizeof line,
                        "skirmish shm: lock %s failed: %s; the shared segment "
                        "is corrupt, aborting\n",
                        what, std::strerror(error));
  if (n > 0) {
    ssize_t ignored = ::write(STDERR_FILENO, line,
                              static_cast<size_t>(n) < sizeof line
                                  ? static_cast<size_t>(n)
                                  : sizeof line - 1);
    (void)ignored;
  }
  std::abort();
}

std::atomic<LockFailureHandler> g_failure_handler{&default_lock_failure};

}  // namespace

int init_robust_mutex(RobustMutex& mu) {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc != 0) return rc;
  rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(&mu.m, &attr);
  pthread_mutexattr_destroy(&attr);
  return rc;
}

std::uint64_t recoveries_total() {
  return g_recoveries.load(std::memory_order_relaxed);
}

Guard::Guard(RobustMutex& mu, RepairFn repair, void* ctx) : mu_(mu) {
  after_lock(pthread_mutex_lock(&mu_.m), repair, ctx);
}

Guard::Guard(RobustMutex& mu, std::chrono::milliseconds timeout,
             RepairFn repair, void* ctx)
    : mu_(mu) {
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  const auto ms = timeout.count() < 0 ? 0 : timeout.count();
  deadline.tv_sec += static_cast<time_t>(ms / 1000);
  deadline.tv_nsec += static_cast<long>((ms % 1000) * 1000000);
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  after_lock(pthread_mutex_clocklock(&mu_.m, CLOCK_MONOTONIC, &deadline),
             repair, ctx);
}

void Guard::after_lock(int rc, RepairFn repair, void* ctx) {
  if (rc == 0) {
    locked_ = true;
    return;
  }
  if (rc == EOWNERDEAD) {
    // We own the lock now; the data it protects may be torn. Repair first,
    // then declare the mutex consistent so later lockers see plain success.
    // If we die inside the repair, the next locker gets EOWNERDEAD again.
    if (repair != nullptr) repair(ctx);
    int crc = pthread_mutex_consistent(&mu_.m);
    if (crc != 0) {
      // Cannot happen for a robust mutex we hold; do not keep a lock we
      // could not make consistent.
      pthread_mutex_unlock(&mu_.m);
      error_ = crc;
      return;
    }
    locked_ = true;
    recovered_ = true;
    g_recoveries.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  error_ = rc;  // ENOTRECOVERABLE, ETIMEDOUT, EINVAL, ...
}

Guard::~Guard() {
  if (locked_) pthread_mutex_unlock(&mu_.m);
}

void set_lock_failure_handler(LockFailureHandler handler) {
  g_failure_handler.store(handler != nullptr ? handler : &default_lock_failure,
                          std::memory_order_relaxed);
}

void report_lock_failure(const char* what, int error) {
  g_failure_handler.load(std::memory_order_relaxed)(what, error);
}

void mark_corrupt_and_report(std::uint32_t* corrupt_flag, const char* what,
                             int error) {
  if (corrupt_flag != nullptr) {
    std::atomic_ref<std::uint32_t>(*corrupt_flag)
        .store(1, std::memory_order_release);
  }
  report_lock_failure(what, error);
}

}  // namespace skirmish::shm
