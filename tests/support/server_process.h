// Starts the real skirmish-server binary for a test and stops it by pid.
//
// The server runs with --port 0 --admin-port 0 and a unique shm name; the
// ports are read back from its log ("listening on 127.0.0.1:PORT"), which
// is captured through a pipe and kept for assertions. Every wait has a
// deadline; nothing sleeps for a fixed time.
//
// Teardown fails the test when the log holds sanitizer output, as nginx's
// tests fail on any alert: a worker that aborts under ASan is respawned by
// the master, so without this check the test could still pass.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace skirmish::test {

using namespace std::chrono_literals;

// Path of the server binary under test (set by CMake).
std::string server_binary();
// Path of a file under the source tree's configs/.
std::string config_path(const std::string& name);

// Polls `cond` until it is true or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

// The first sanitizer report in a server's log: from its first line
// (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer,
// ThreadSanitizer, "runtime error:") up to 40 lines on; empty when there is
// none. Only lines that are not the server's own log lines count (those
// begin with a timestamp, and may quote what a client sent).
std::string sanitizer_report(const std::string& log);
// Fails the running test, without throwing (so a destructor may call it),
// when `log` holds a sanitizer report; the report goes into the failure.
void check_no_sanitizer_output(const std::string& log, const std::string& whose);

class ServerProcess {
 public:
  // Extra flags after the defaults; `config` names a file in configs/.
  // `nofile`: RLIMIT_NOFILE for the server (0 = inherit), as `ulimit -n`.
  explicit ServerProcess(std::vector<std::string> extra_args = {},
                         const std::string& config = "skirmish.toml", unsigned nofile = 0);
  // SIGKILL if still running, reap, then check_no_sanitizer_output.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Waits for both "listening" lines. False if the process died or the
  // deadline passed.
  bool wait_ready(std::chrono::milliseconds timeout = 10s);
  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }
  pid_t pid() const { return pid_; }
  const std::string& shm_name() const { return shm_name_; }

  // Reads whatever the server logged so far (non-blocking) and returns the
  // whole log.
  const std::string& log();
  // Waits until the log contains `needle`.
  bool wait_log(const std::string& needle, std::chrono::milliseconds timeout = 10s);

  void signal(int sig);
  // Waits for exit; returns the exit status as from waitpid (or -1 on
  // timeout).
  int wait_exit(std::chrono::milliseconds timeout = 10s);
  bool running();

 private:
  pid_t pid_ = -1;
  int log_fd_ = -1;
  std::string log_;
  std::string shm_name_;
  uint16_t port_ = 0, admin_port_ = 0;
  int status_ = -1;
  bool reaped_ = false;
};

// Runs the server binary with `args` to completion (for bad-config tests);
// returns exit code and combined output.
struct RunResult {
  int exit_code;
  std::string output;
};
RunResult run_server(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 10s);

// Resident set size of a process in KiB, from /proc (0 if gone).
long rss_kib(pid_t pid);
// Open file descriptors of a process, from /proc (-1 if gone).
int fd_count(pid_t pid);

// /proc helpers for process tests.
std::string read_file(const std::string& path);
std::string cmdline(pid_t pid);  // NULs as spaces
// Children of `parent` that are not zombies.
std::vector<pid_t> children_of(pid_t parent);
// The child of `master` whose title is exactly `title`, or 0.
pid_t child_titled(pid_t master, const std::string& title);

}  // namespace skirmish::test
