// skirmish-floor-server: the server half of the floor (bench/README.md, "The
// floor"): Skirmish's traffic shape with nothing else, on raw epoll and a
// timerfd. It is what any server on this kernel pays for the same bytes, so
// skirmish-server's CPU per bot-tick is read as a ratio to it, measured in the
// same run (scripts/bench-compare.sh).
//
// Contract:
//   - Listens on 127.0.0.1:--port (0 = the OS picks) and prints
//     "listening on 127.0.0.1:PORT" on stdout once every process listens.
//   - Forks --procs processes. The first listener is bound with SO_REUSEPORT
//     and its port read back; the others are bound to that port with
//     SO_REUSEPORT, one per process, so the kernel spreads the connections
//     (no shared accept queue, no thundering herd). The parent only waits.
//   - Each process, every 1/--hz s (a timerfd): reads what its connections
//     sent, then writes --out bytes ("a snapshot") to every connection it
//     holds, one send() each. Inputs are read and dropped: the floor has no
//     game. A send that would block is counted, never buffered.
//   - --read tick (default): between ticks a process sleeps on its timer and
//     its listener only; the connections sit in a second epoll set that each
//     tick drains in one pass (epoll_wait with timeout 0). An input is applied
//     at the next tick anyway, so this costs no latency and saves a wake-up,
//     an epoll_wait and a context switch per burst of inputs.
//     --read wakeup: the connections are in the main set and are read as soon
//     as they are readable (what a plain event loop does).
//   - Stops after --secs, or on SIGTERM/SIGINT (the parent forwards it to the
//     processes, SIGKILL after 5 s). Each process prints one line of counts on
//     stderr at exit. Exit status 0 when every process ended cleanly.
//
//   skirmish-floor-server --port 0 --procs 2 --hz 30 --out 200 --secs 60 [--read tick|wakeup]
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <csignal>

#include "floor_util.h"

namespace {

using namespace skirmish::floor;

constexpr int kBacklog = 4096;
constexpr int kMaxEvents = 1024;
constexpr int kMaxDrainPasses = 16;  // a tick's drain of the connection set: at most this many epoll_waits
constexpr int kMaxAcceptsPerWake = 1024;
constexpr uint64_t kListenerTag = ~uint64_t(0);
constexpr uint64_t kTimerTag = ~uint64_t(0) - 1;

struct Options {
  uint16_t port = 0;
  int procs = 1;
  double hz = 30;
  int out = 200;
  double secs = 60;
  std::string read = "tick";
};

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }


// A non-blocking listener on 127.0.0.1:port with SO_REUSEPORT; -1 on failure.
int bind_listener(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, kBacklog) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

struct Counts {
  uint64_t accepted = 0, closed = 0;
  uint64_t ticks = 0, late_ticks = 0;  // late: the timer had expired more than once when read
  uint64_t snapshots = 0, would_block = 0, short_writes = 0;
  uint64_t read_calls = 0, bytes_in = 0;
  uint64_t epoll_waits = 0;
};

// One forked process: its listener, its connections, its tick.
class Process {
 public:
  Process(const Options& o, int listener) : o_(o), lfd_(listener), snap_(size_t(o.out), 's') {}

  int run() {
    const bool at_tick = o_.read == "tick";
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    cep_ = at_tick ? epoll_create1(EPOLL_CLOEXEC) : ep_;
    tfd_ = periodic_timer(uint64_t(1e9 / o_.hz));
    if (ep_ < 0 || cep_ < 0 || tfd_ < 0) {
      std::perror("floor-server: epoll/timerfd");
      return 1;
    }
    add(ep_, lfd_, kListenerTag);
    add(ep_, tfd_, kTimerTag);
    const uint64_t end = now_ns() + uint64_t(o_.secs * 1e9);
    epoll_event evs[kMaxEvents];
    while (!g_stop && now_ns() < end) {
      const int n = epoll_wait(ep_, evs, kMaxEvents, 100);
      ++c_.epoll_waits;
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = evs[i].data.u64;
        if (tag == kListenerTag) {
          accept_some();
        } else if (tag == kTimerTag) {
          tick(at_tick);
        } else {
          read_conn(int(tag));
        }
      }
      close_pending();
    }
    std::fprintf(stderr,
                 "floor-server[%d]: read %s, accepted %llu, closed %llu, ticks %llu (late %llu), snapshots %llu, "
                 "would-block %llu, short %llu, read calls %llu, bytes in %llu, epoll_waits %llu\n",
                 int(getpid()), o_.read.c_str(), ull(c_.accepted), ull(c_.closed), ull(c_.ticks), ull(c_.late_ticks),
                 ull(c_.snapshots), ull(c_.would_block), ull(c_.short_writes), ull(c_.read_calls), ull(c_.bytes_in),
                 ull(c_.epoll_waits));
    return 0;
  }

 private:
  static unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

  static void add(int ep, int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }

  void accept_some() {
    for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
      const int c = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) return;  // EAGAIN, or EMFILE: the rest wait in the backlog
      set_nodelay(c);
      add(cep_, c, uint64_t(c));
      if (size_t(c) >= pos_.size()) pos_.resize(size_t(c) + 1, -1);
      pos_[size_t(c)] = int(conns_.size());
      conns_.push_back(c);
      ++c_.accepted;
    }
  }

  // Reads everything fd has (inputs are dropped); a peer that closed or
  // failed is queued for close_pending().
  void read_conn(int fd) {
    for (int i = 0; i < 4; ++i) {
      const ssize_t r = recv(fd, rbuf_, sizeof rbuf_, 0);
      ++c_.read_calls;
      if (r > 0) {
        c_.bytes_in += uint64_t(r);
        if (size_t(r) < sizeof rbuf_) return;
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      doomed_.push_back(fd);
      return;
    }
  }

  void tick(bool at_tick) {
    uint64_t expirations = 0;
    if (read(tfd_, &expirations, sizeof expirations) != sizeof expirations) return;
    ++c_.ticks;
    if (expirations > 1) ++c_.late_ticks;
    if (at_tick) {
      epoll_event evs[kMaxEvents];
      for (int pass = 0; pass < kMaxDrainPasses; ++pass) {
        const int m = epoll_wait(cep_, evs, kMaxEvents, 0);
        ++c_.epoll_waits;
        for (int j = 0; j < m; ++j) read_conn(int(evs[j].data.u64));
        if (m < kMaxEvents) break;
      }
    }
    for (int fd : conns_) {
      const ssize_t w = send(fd, snap_.data(), snap_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w == ssize_t(snap_.size())) {
        ++c_.snapshots;
      } else if (w >= 0) {
        ++c_.short_writes;
      } else if (errno == EAGAIN) {
        ++c_.would_block;
      } else {
        doomed_.push_back(fd);
      }
    }
  }

  void close_pending() {
    for (int fd : doomed_) {
      if (size_t(fd) >= pos_.size() || pos_[size_t(fd)] < 0) continue;  // queued twice
      const int at = pos_[size_t(fd)];
      const int last = conns_.back();
      conns_[size_t(at)] = last;
      pos_[size_t(last)] = at;
      conns_.pop_back();
      pos_[size_t(fd)] = -1;
      epoll_ctl(cep_, EPOLL_CTL_DEL, fd, nullptr);
      close(fd);
      ++c_.closed;
    }
    doomed_.clear();
  }

  const Options& o_;
  int lfd_ = -1, ep_ = -1, cep_ = -1, tfd_ = -1;
  std::vector<int> conns_;   // every open connection, in no order
  std::vector<int> pos_;     // fd -> index in conns_, -1 if none
  std::vector<int> doomed_;  // to close after the current batch of events
  std::string snap_;
  Counts c_;
  char rbuf_[64 * 1024];
};

// Parent: forward a stop to the processes, reap them; bounded by --secs + 10 s.
int wait_for(const std::vector<pid_t>& kids, double secs) {
  const uint64_t hard_end = now_ns() + uint64_t((secs + 10) * 1e9);
  uint64_t kill_at = 0;  // SIGKILL deadline once a stop was forwarded
  bool forwarded = false;
  size_t left = kids.size();
  int status_all = 0;
  std::vector<bool> done(kids.size(), false);
  while (left > 0) {
    for (size_t i = 0; i < kids.size(); ++i) {
      if (done[i]) continue;
      int st = 0;
      if (waitpid(kids[i], &st, WNOHANG) == kids[i]) {
        done[i] = true;
        --left;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) status_all = 1;
      }
    }
    if (left == 0) break;
    const uint64_t now = now_ns();
    if ((g_stop || now >= hard_end) && !forwarded) {
      for (size_t i = 0; i < kids.size(); ++i)
        if (!done[i]) kill(kids[i], SIGTERM);
      forwarded = true;
      kill_at = now + 5'000'000'000ull;
    }
    if (forwarded && now >= kill_at) {
      for (size_t i = 0; i < kids.size(); ++i)
        if (!done[i]) kill(kids[i], SIGKILL);
      kill_at = now + 1'000'000'000ull;  // and reap on the next rounds
      status_all = 1;
    }
    usleep(20'000);
  }
  return status_all;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"skirmish-floor-server: the traffic floor's server, raw epoll + timerfd (bench/README.md)"};
  app.add_option("--port", o.port, "listen port on 127.0.0.1; 0 = the OS picks");
  app.add_option("--procs", o.procs, "processes, each with its own SO_REUSEPORT listener")->check(CLI::Range(1, 64));
  app.add_option("--hz", o.hz, "ticks per second")->check(CLI::Range(1.0, 1000.0));
  app.add_option("--out", o.out, "bytes written to every connection per tick")->check(CLI::Range(1, 65536));
  app.add_option("--secs", o.secs, "exit after this long whatever happens")->check(CLI::Range(1.0, 86400.0));
  app.add_option("--read", o.read, "tick: read the connections at the tick; wakeup: as soon as readable")
      ->check(CLI::IsMember({"tick", "wakeup"}));
  CLI11_PARSE(app, argc, argv);

  raise_nofile();
  install_stop_handlers(on_stop_signal);
  std::vector<int> listeners;
  const int first = bind_listener(o.port);
  if (first < 0) {
    std::perror("floor-server: bind/listen 127.0.0.1");
    return 1;
  }
  listeners.push_back(first);
  const uint16_t port = bound_port(first);
  for (int k = 1; k < o.procs; ++k) {
    const int fd = bind_listener(port);
    if (fd < 0) {
      std::perror("floor-server: second SO_REUSEPORT listener");
      return 1;
    }
    listeners.push_back(fd);
  }
  const pid_t parent = getpid();
  std::vector<pid_t> kids;
  for (int k = 0; k < o.procs; ++k) {
    const pid_t p = fork();
    if (p < 0) {
      std::perror("floor-server: fork");
      g_stop = 1;
      break;
    }
    if (p == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);  // the parent died before the prctl
      for (int j = 0; j < int(listeners.size()); ++j)
        if (j != k) close(listeners[size_t(j)]);
      Process proc(o, listeners[size_t(k)]);
      std::fflush(stdout);
      _exit(proc.run());
    }
    kids.push_back(p);
  }
  for (int fd : listeners) close(fd);
  if (!g_stop) {
    std::printf("listening on 127.0.0.1:%u (%d processes, read %s, %.0f Hz, %d bytes per snapshot)\n", unsigned(port),
                o.procs, o.read == "tick" ? "at the tick" : "on every wake-up", o.hz, o.out);
    std::fflush(stdout);
  }
  return wait_for(kids, o.secs);
}
