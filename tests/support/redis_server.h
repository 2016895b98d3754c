// A real redis-server (Debian's /usr/bin/redis-server) for a test: on a free
// loopback port, in a directory of its own, no persistence, stopped by pid.
// Header-only. Every wait is bounded; nothing sleeps for a fixed time.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/server_process.h"

namespace skirmish::test {

class RedisServer {
 public:
  RedisServer() {
    char t[] = "/tmp/skirmish-redis-XXXXXX";
    if (mkdtemp(t) != nullptr) dir_ = t;
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
      port_ = free_port();
      const pid_t p = fork();
      if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no server behind
        const std::string port = std::to_string(port_);
        const std::string log = dir_ + "/redis.log";
        execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", dir_.c_str(), "--logfile", log.c_str(), "--daemonize", "no",
              static_cast<char*>(nullptr));
        _exit(127);
      }
      if (p < 0) break;
      // Up when it accepts a connection; gone if it died (the port was taken).
      if (wait_until([&] { return answers() || !alive(p); }, std::chrono::seconds(10)) && alive(p)) {
        pid_ = p;
      } else {
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
      }
    }
  }
  ~RedisServer() {
    stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool up() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  std::string url(unsigned db = 0) const { return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db); }

  // SIGTERM, SIGKILL after 5 s; reaped.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    if (!wait_until([&] { return !alive(pid_); }, std::chrono::seconds(5))) kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  static uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    return port;
  }
  static bool alive(pid_t p) {
    int st = 0;
    return waitpid(p, &st, WNOHANG) == 0;
  }
  bool answers() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
  }

  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace skirmish::test
