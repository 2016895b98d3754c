// chaos_server.cpp: skirmish-bench-chaos's server process (chaos_bench.h).
//
// Starts the real skirmish-server (fork/exec) with its stdout+stderr into a
// pipe the loop reads for the whole run; counts its log lines and takes the
// game port from its "listening on 127.0.0.1:PORT" line, which starts the
// bots; after SIGTERM, reaps it (SIGKILL after 10 s) and waits for the end of
// its log. Only this server is signalled, by pid.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/chaos_bench.h"

namespace bench_chaos {

using namespace skirmish;
using client::Client;

// ---------------------------------------------------------------- server

bool Bench::spawn_server(const std::string& config_path) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    startup_error_ = std::string("pipe: ") + strerror(errno);
    return false;
  }
  std::vector<std::string> args{o_.server,    "--config",     config_path, "--port",     "0",
                                "--admin-port", "0",          "--workers", std::to_string(o_.workers),
                                "--shm-name",  shm_name_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    startup_error_ = std::string("fork: ") + strerror(errno);
    return false;
  }
  if (pid == 0) {
    // Dies (drains) with this program if it dies first.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    signal(SIGPIPE, SIG_DFL);
    dup2(p[1], 1);
    dup2(p[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  server_pid_ = pid;
  uv_pipe_init(&loop_, &log_pipe_, 0);
  log_pipe_.data = this;
  uv_pipe_open(&log_pipe_, p[0]);
  log_open_ = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&log_pipe_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char block[65536];
        *buf = uv_buf_init(block, sizeof block);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<Bench*>(s->data);
        if (n > 0) self->on_log_data(buf->base, size_t(n));
        if (n < 0) {
          self->log_eof_ = true;
          uv_read_stop(s);
          if (!self->log_partial_.empty()) self->on_log_line(self->log_partial_);
          self->log_partial_.clear();
          if (self->port_ == 0 && !self->startup_failed_) {
            self->startup_failed_ = true;
            self->startup_error_ = "the server closed its log before listening (it exited?)";
            self->finish();
          }
        }
      });
  return true;
}

void Bench::on_log_data(const char* data, size_t n) {
  if (log_copy_) log_copy_->write(data, std::streamsize(n));
  size_t start = 0;
  for (size_t i = 0; i < n; ++i) {
    if (data[i] != '\n') continue;
    log_partial_.append(data + start, i - start);
    on_log_line(log_partial_);
    log_partial_.clear();
    start = i + 1;
  }
  log_partial_.append(data + start, n - start);
  if (log_partial_.size() > 65536) {  // a line without end: take it as is
    on_log_line(log_partial_);
    log_partial_.clear();
  }
}

void Bench::on_log_line(const std::string& line) {
  ++log_lines_;
  log_tail_.push_back(line.substr(0, 300));
  if (log_tail_.size() > 30) log_tail_.pop_front();
  bool notable = false;
  if (line.find("] warning: ") != std::string::npos || line.find("] warn: ") != std::string::npos) {
    ++log_warn_;
    notable = true;
  } else if (line.find("] error: ") != std::string::npos) {
    ++log_error_;
    notable = true;
  } else if (line.find("] critical: ") != std::string::npos) {
    ++log_critical_;
    notable = true;
  }
  if (notable && log_notable_.size() < 16) log_notable_.push_back(line.substr(0, 240));
  if (line.find("adopted by worker") != std::string::npos) ++log_adopted_;
  if (line.find("missed its heartbeat") != std::string::npos) ++log_heartbeat_;
  if (line.find("passes behind: skipped") != std::string::npos) ++log_ticks_skipped_;
  if (port_ == 0 && !startup_failed_) {
    static const std::string needle = "] info: listening on 127.0.0.1:";
    auto at = line.find(needle);
    if (at != std::string::npos) {
      const long p = std::strtol(line.c_str() + at + needle.size(), nullptr, 10);
      if (p > 0 && p < 65536) {
        port_ = uint16_t(p);
        start_deadline_->stop();
        start_bots();
      }
    }
  }
}

void Bench::poll_server() {
  if (!server_reaped_) {
    int st = 0;
    pid_t r = waitpid(server_pid_, &st, WNOHANG);
    if (r == server_pid_) {
      server_reaped_ = true;
      server_status_ = st;
    }
  }
  const double waited = hr_ms() - term_sent_ms_;
  if (!server_reaped_ && !server_sigkilled_ && waited > 10000) {
    ::kill(server_pid_, SIGKILL);
    server_sigkilled_ = true;
  }
  // Done when reaped and its log is read to the end (its children write to
  // the same pipe: EOF means every one of them is gone), or past 20 s.
  if ((server_reaped_ && (log_eof_ || waited > 12000)) || waited > 20000) close_all_handles();
}

}  // namespace bench_chaos
