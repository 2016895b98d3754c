#include "tests/support/server_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cctype>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string_view>
#include <thread>

namespace skirmish::test {

std::string server_binary() { return SKIRMISH_SERVER_BIN; }
std::string config_path(const std::string& name) {
  if (!name.empty() && name[0] == '/') return name;
  return std::string(SKIRMISH_SOURCE_DIR) + "/configs/" + name;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return cond();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

namespace {

std::atomic<int> g_counter{0};

pid_t spawn(const std::vector<std::string>& args, int* out_fd, unsigned nofile = 0) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // A test that crashes (a failed REQUIRE in a destructor, a sanitizer
    // abort) must not leave its server running: the master dies with the
    // test, and its children follow the master.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(p[1], 1);
    dup2(p[1], 2);
    if (nofile != 0) {
      rlimit rl{nofile, nofile};
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  *out_fd = p[0];
  return pid;
}

void drain(int fd, std::string& into) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return;
    into.append(buf, size_t(n));
  }
}

// "2024-05-01T10:00:00.123Z master[42] info: ..." (core/log.cpp's pattern).
bool is_server_log_line(std::string_view line) {
  return line.size() > 24 && line[4] == '-' && line[7] == '-' && line[10] == 'T' && line[23] == 'Z' &&
         std::isdigit(static_cast<unsigned char>(line[0])) != 0;
}

bool is_sanitizer_line(std::string_view line) {
  if (is_server_log_line(line)) return false;
  for (std::string_view marker : {"AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "ThreadSanitizer",
                                  "MemorySanitizer", "runtime error:"})
    if (line.find(marker) != std::string_view::npos) return true;
  return false;
}

}  // namespace

std::string sanitizer_report(const std::string& log) {
  constexpr size_t kMaxLines = 40;
  std::string_view rest = log;
  std::string report;
  size_t lines = 0;
  bool in_report = false;
  while (!rest.empty() && lines < kMaxLines) {
    const size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    if (!in_report && !is_sanitizer_line(line)) continue;
    in_report = true;
    report.append(line);
    report += '\n';
    ++lines;
  }
  return report;
}

void check_no_sanitizer_output(const std::string& log, const std::string& whose) {
  const std::string report = sanitizer_report(log);
  if (!report.empty()) FAIL_CHECK(whose << "'s log holds sanitizer output:\n" << report);
}

ServerProcess::ServerProcess(std::vector<std::string> extra_args, const std::string& config, unsigned nofile) {
  shm_name_ = "skt-" + std::to_string(getpid()) + "-" + std::to_string(g_counter++);
  // A test may name the segment itself (stale-segment tests).
  for (size_t i = 0; i + 1 < extra_args.size(); ++i)
    if (extra_args[i] == "--shm-name") {
      shm_name_ = extra_args[i + 1];
      extra_args.erase(extra_args.begin() + ptrdiff_t(i), extra_args.begin() + ptrdiff_t(i) + 2);
      break;
    }
  std::vector<std::string> args{server_binary(), "--config", config_path(config), "--port", "0",
                                "--admin-port", "0", "--shm-name", shm_name_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = spawn(args, &log_fd_, nofile);
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
  if (log_fd_ >= 0) {
    log();  // what any process wrote before it died
    close(log_fd_);
  }
  check_no_sanitizer_output(log_, "the server (pid " + std::to_string(pid_) + ")");
  // A killed server leaves its segment behind; remove it (ours by name).
  std::string path = "/dev/shm/" + shm_name_;
  unlink(path.c_str());
}

const std::string& ServerProcess::log() {
  if (log_fd_ >= 0) drain(log_fd_, log_);
  return log_;
}

bool ServerProcess::wait_log(const std::string& needle, std::chrono::milliseconds timeout) {
  return wait_until([&] { return log().find(needle) != std::string::npos; }, timeout);
}

bool ServerProcess::wait_ready(std::chrono::milliseconds timeout) {
  static const std::regex game(R"(\] info: listening on [^ \n]+:(\d+)\n)");
  static const std::regex admin(R"(admin listening on [^ \n]+:(\d+)\n)");
  bool ok = wait_until(
      [&] {
        std::smatch m1, m2;
        const std::string& l = log();
        if (std::regex_search(l, m1, game) && std::regex_search(l, m2, admin)) {
          port_ = uint16_t(std::stoi(m1[1]));
          admin_port_ = uint16_t(std::stoi(m2[1]));
          return true;
        }
        return !running();
      },
      timeout);
  return ok && port_ != 0;
}

void ServerProcess::signal(int sig) {
  if (pid_ > 0 && !reaped_) kill(pid_, sig);
}

bool ServerProcess::running() {
  if (pid_ <= 0 || reaped_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

int ServerProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (!wait_until([&] { return !running(); }, timeout)) return -1;
  log();
  return status_;
}

RunResult run_server(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  std::vector<std::string> full{server_binary()};
  full.insert(full.end(), args.begin(), args.end());
  int fd = -1;
  pid_t pid = spawn(full, &fd);
  std::string out;
  int status = 0;
  bool done = wait_until(
      [&] {
        drain(fd, out);
        return waitpid(pid, &status, WNOHANG) == pid;
      },
      timeout);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  drain(fd, out);
  close(fd);
  return {done && WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

int fd_count(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(path.c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string cmdline(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  while (!s.empty() && s.back() == '\0') s.pop_back();
  for (char& c : s)
    if (c == '\0') c = ' ';
  return s;
}

// Children of `parent`, from /proc/*/stat (field 4 is the ppid).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') out.push_back(pid);
  }
  closedir(d);
  return out;
}

// pid of the process whose title is exactly `title` among the children.
pid_t child_titled(pid_t master, const std::string& title) {
  for (pid_t p : children_of(master))
    if (cmdline(p) == title) return p;
  return 0;
}

}  // namespace skirmish::test
