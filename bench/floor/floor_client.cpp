// skirmish-floor-client: the client half of the floor (bench/README.md, "The
// floor"): --conns connections to a skirmish-floor-server, each sending an
// --in byte "input" --hz times a second and taking the server's snapshots,
// on raw epoll and a timerfd. It measures both sides' CPU per bot-tick.
//
// Contract:
//   - Connects only to 127.0.0.1 (--target 127.0.0.1:PORT), at most --ramp
//     connections a second, each connect bounded (2 s, 3 tries) and the whole
//     ramp bounded (conns / ramp + 15 s); fails (exit 1) if none connects.
//     Raises RLIMIT_NOFILE to the hard limit first.
//   - --threads threads, each with a contiguous share of the connections and
//     its own timerfd firing --phases times per period (1 / --hz), all on
//     one shared clock. Connection j of a thread is on phase j % --phases:
//     at slot k the thread sends one input on every connection of phase
//     k % --phases, so the inputs go out in --phases bursts per period, as
//     skirmish-loadtest --rate does. A slot the thread woke too late for is
//     sent late (at most one period of catch-up; beyond that the inputs are
//     skipped and counted).
//   - --read slots (default): the connections sit in their own epoll set and
//     are read only at the slots, before the inputs due are sent (a bot acts
//     on what it has at its slot, so reading sooner buys nothing).
//     --read wakeup: read as soon as a connection is readable.
//   - Measures over --secs after --warmup (counted from the last connect):
//     inputs/s, snapshots/s (bytes received / --out), its own CPU and, with
//     --server-pid, the CPU of that process and all its descendants, both
//     from /proc/PID/stat (utime + stime). A bot-tick is one connection for
//     one period: CPU per bot-tick = CPU s / (connections * hz * window).
//   - Prints one "RESULT floor-client key=value ..." line on stdout and a
//     readable line on stderr. Exit 0 when every connection connected and
//     stayed open, 1 otherwise. Every loop ends by the clock.
//
//   skirmish-floor-client --target 127.0.0.1:PORT --conns 1000 [--hz 30] [--in 40] [--out 200]
//       [--phases 8] [--threads 1] [--secs 10] [--warmup 2] [--ramp 1000] [--server-pid PID]
//       [--read slots|wakeup]
#include <arpa/inet.h>
#include <poll.h>
#include <sys/epoll.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <memory>
#include <thread>

#include "floor_util.h"

namespace {

using namespace skirmish::floor;

constexpr int kMaxEvents = 1024;
constexpr int kMaxDrainPasses = 16;
constexpr uint64_t kTimerTag = ~uint64_t(0);

struct Options {
  std::string target;
  uint16_t port = 0;
  int conns = 1000;
  double hz = 30;
  int in = 40;
  int out = 200;
  int phases = 8;
  int threads = 1;
  double secs = 10;
  double warmup = 2;
  double ramp = 1000;
  int server_pid = 0;
  std::string read = "slots";
};

std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop.store(true); }

// Counters one thread writes and the main thread samples (relaxed: the window
// is seconds long, a few in-flight increments are noise).
struct alignas(64) Counters {
  std::atomic<uint64_t> sent{0}, send_failed{0}, skipped{0};
  std::atomic<uint64_t> bytes_in{0}, read_calls{0};
  std::atomic<uint64_t> wakes{0}, late_slots{0}, closed{0};
};

struct Snapshot {
  uint64_t sent = 0, send_failed = 0, skipped = 0, bytes_in = 0, read_calls = 0, wakes = 0, late_slots = 0, closed = 0;
  void add(const Counters& c) {
    sent += c.sent.load(std::memory_order_relaxed);
    send_failed += c.send_failed.load(std::memory_order_relaxed);
    skipped += c.skipped.load(std::memory_order_relaxed);
    bytes_in += c.bytes_in.load(std::memory_order_relaxed);
    read_calls += c.read_calls.load(std::memory_order_relaxed);
    wakes += c.wakes.load(std::memory_order_relaxed);
    late_slots += c.late_slots.load(std::memory_order_relaxed);
    closed += c.closed.load(std::memory_order_relaxed);
  }
};

// One non-blocking connect to 127.0.0.1:port, bounded by timeout_ms; the fd
// (non-blocking, TCP_NODELAY) or -1.
int connect_one(uint16_t port, int timeout_ms) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS) {
      close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      close(fd);
      return -1;
    }
  }
  set_nodelay(fd);
  return fd;
}

// Opens up to o.conns connections at o.ramp per second; stops early at the
// ramp's deadline or on a signal.
std::vector<int> connect_all(const Options& o, uint64_t& failures) {
  std::vector<int> fds;
  fds.reserve(size_t(o.conns));
  const uint64_t t0 = now_ns();
  const uint64_t deadline = t0 + uint64_t((o.conns / o.ramp + 15) * 1e9);
  for (int i = 0; i < o.conns && !g_stop.load(); ++i) {
    const uint64_t due = t0 + uint64_t(double(i) * 1e9 / o.ramp);
    for (uint64_t now = now_ns(); now < due; now = now_ns()) {
      const uint64_t gap = due - now;
      timespec ts{time_t(gap / 1'000'000'000ull), long(gap % 1'000'000'000ull)};
      nanosleep(&ts, nullptr);
    }
    int fd = -1;
    for (int attempt = 0; attempt < 3 && fd < 0; ++attempt) {
      const uint64_t now = now_ns();
      if (now >= deadline) break;
      fd = connect_one(o.port, int(std::min<uint64_t>(2000, (deadline - now) / 1'000'000 + 1)));
      if (fd < 0) {
        ++failures;
        usleep(50'000);
      }
    }
    if (fd < 0) {
      if (now_ns() >= deadline) break;
      continue;
    }
    fds.push_back(fd);
  }
  return fds;
}

// One thread: its connections, its slot timer, its counters.
class Bots {
 public:
  Bots(const Options& o, std::vector<int> fds, uint64_t clock0, Counters& c)
      : o_(o), fds_(std::move(fds)), open_(fds_.size(), true), msg_(size_t(o.in), 'i'), clock0_(clock0), c_(c) {}

  void run(uint64_t hard_end) {
    const bool at_slots = o_.read == "slots";
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    const int cep = at_slots ? epoll_create1(EPOLL_CLOEXEC) : ep;
    const int tfd = slot_timer();
    if (ep < 0 || cep < 0 || tfd < 0) {
      std::perror("floor-client: epoll/timerfd");
      g_stop.store(true);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTimerTag;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    for (size_t j = 0; j < fds_.size(); ++j) {
      ev.data.u64 = j;
      epoll_ctl(cep, EPOLL_CTL_ADD, fds_[j], &ev);
    }
    epoll_event evs[kMaxEvents];
    uint64_t slot = 0;
    while (!g_stop.load(std::memory_order_relaxed) && now_ns() < hard_end) {
      const int n = epoll_wait(ep, evs, kMaxEvents, 100);
      for (int i = 0; i < n; ++i) {
        if (evs[i].data.u64 != kTimerTag) {
          read_conn(size_t(evs[i].data.u64), cep);
          continue;
        }
        uint64_t expirations = 0;
        if (read(tfd, &expirations, sizeof expirations) != sizeof expirations) continue;
        c_.wakes.fetch_add(1, std::memory_order_relaxed);
        if (at_slots) drain(cep);
        send_slots(slot, expirations);
        slot += expirations;
      }
    }
    for (size_t j = 0; j < fds_.size(); ++j) close(fds_[j]);
    close(tfd);
    if (cep != ep) close(cep);
    close(ep);
  }

 private:
  // Fires at clock0 + k * period / phases for k = 1, 2, ...: the same slots in
  // every thread.
  int slot_timer() const {
    const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) return -1;
    const uint64_t step = uint64_t(1e9 / o_.hz / o_.phases);
    const uint64_t first = clock0_ + step;
    itimerspec its{};
    its.it_interval.tv_sec = time_t(step / 1'000'000'000ull);
    its.it_interval.tv_nsec = long(step % 1'000'000'000ull);
    its.it_value.tv_sec = time_t(first / 1'000'000'000ull);
    its.it_value.tv_nsec = long(first % 1'000'000'000ull);
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, nullptr) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  void drain(int cep) {
    epoll_event evs[kMaxEvents];
    for (int pass = 0; pass < kMaxDrainPasses; ++pass) {
      const int m = epoll_wait(cep, evs, kMaxEvents, 0);
      for (int j = 0; j < m; ++j) read_conn(size_t(evs[j].data.u64), cep);
      if (m < kMaxEvents) break;
    }
  }

  void read_conn(size_t j, int cep) {
    for (int i = 0; i < 4; ++i) {
      const ssize_t r = recv(fds_[j], rbuf_, sizeof rbuf_, 0);
      c_.read_calls.fetch_add(1, std::memory_order_relaxed);
      if (r > 0) {
        c_.bytes_in.fetch_add(uint64_t(r), std::memory_order_relaxed);
        if (size_t(r) < sizeof rbuf_) return;
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      drop(j, cep);
      return;
    }
  }

  void drop(size_t j, int cep) {
    if (!open_[j]) return;
    open_[j] = false;
    epoll_ctl(cep, EPOLL_CTL_DEL, fds_[j], nullptr);
    c_.closed.fetch_add(1, std::memory_order_relaxed);
  }

  // The slots slot+1 .. slot+expirations are due; at most one period of them
  // is sent, the rest counted as skipped.
  void send_slots(uint64_t slot, uint64_t expirations) {
    const uint64_t phases = uint64_t(o_.phases);
    if (expirations > 1) c_.late_slots.fetch_add(expirations - 1, std::memory_order_relaxed);
    uint64_t first = slot + 1;
    if (expirations > phases) {
      const uint64_t skipped_slots = expirations - phases;
      c_.skipped.fetch_add(skipped_slots * fds_.size() / phases, std::memory_order_relaxed);
      first += skipped_slots;
    }
    for (uint64_t k = first; k <= slot + expirations; ++k) {
      uint64_t sent = 0, failed = 0;
      for (size_t j = size_t(k % phases); j < fds_.size(); j += size_t(phases)) {
        if (!open_[j]) continue;
        const ssize_t w = send(fds_[j], msg_.data(), msg_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w == ssize_t(msg_.size())) {
          ++sent;
        } else {
          ++failed;
        }
      }
      c_.sent.fetch_add(sent, std::memory_order_relaxed);
      if (failed) c_.send_failed.fetch_add(failed, std::memory_order_relaxed);
    }
  }

  const Options& o_;
  std::vector<int> fds_;
  std::vector<bool> open_;
  std::string msg_;
  uint64_t clock0_;
  Counters& c_;
  char rbuf_[64 * 1024];
};

Snapshot sample(const std::vector<std::unique_ptr<Counters>>& cs) {
  Snapshot s;
  for (const auto& c : cs) s.add(*c);
  return s;
}

// Sleeps until t (bounded: wakes every 100 ms to look at the stop flag).
void sleep_until(uint64_t t) {
  for (uint64_t now = now_ns(); now < t && !g_stop.load(); now = now_ns()) {
    const uint64_t gap = std::min<uint64_t>(t - now, 100'000'000ull);
    timespec ts{0, long(gap)};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"skirmish-floor-client: the traffic floor's bots, raw epoll + timerfd (bench/README.md)"};
  app.add_option("--target", o.target, "server, 127.0.0.1:PORT (loopback only)")->required();
  app.add_option("--conns", o.conns, "connections (bots)")->check(CLI::Range(1, 200000));
  app.add_option("--hz", o.hz, "inputs per second per connection")->check(CLI::Range(1.0, 1000.0));
  app.add_option("--in", o.in, "bytes per input")->check(CLI::Range(1, 65536));
  app.add_option("--out", o.out, "bytes per snapshot the server writes (to count snapshots)")
      ->check(CLI::Range(1, 65536));
  app.add_option("--phases", o.phases, "input bursts per period, as skirmish-loadtest --rate")
      ->check(CLI::Range(1, 1000));
  app.add_option("--threads", o.threads, "threads, each with its share of the connections")->check(CLI::Range(1, 64));
  app.add_option("--secs", o.secs, "measured seconds")->check(CLI::Range(0.5, 3600.0));
  app.add_option("--warmup", o.warmup, "seconds after the last connect, not measured")->check(CLI::Range(0.0, 600.0));
  app.add_option("--ramp", o.ramp, "connections opened per second")->check(CLI::Range(1.0, 100000.0));
  app.add_option("--server-pid", o.server_pid, "read this process tree's CPU from /proc over the window");
  app.add_option("--read", o.read, "slots: read only at the phase slots; wakeup: as soon as readable")
      ->check(CLI::IsMember({"slots", "wakeup"}));
  CLI11_PARSE(app, argc, argv);
  if (!parse_loopback_target(o.target, o.port)) {
    std::fprintf(stderr, "floor-client: --target must be 127.0.0.1:PORT, not %s\n", o.target.c_str());
    return 2;
  }
  const uint64_t nofile = raise_nofile();
  if (uint64_t(o.conns) + 64 > nofile) {
    std::fprintf(stderr, "floor-client: %d connections need RLIMIT_NOFILE >= %d; the hard limit is %llu\n", o.conns,
                 o.conns + 64, static_cast<unsigned long long>(nofile));
    return 2;
  }
  install_stop_handlers(on_stop_signal);

  uint64_t connect_failures = 0;
  std::vector<int> fds = connect_all(o, connect_failures);
  const int connected = int(fds.size());
  if (connected == 0) {
    std::fprintf(stderr, "floor-client: no connection to %s\n", o.target.c_str());
    return 1;
  }
  const int threads = std::min(o.threads, connected);
  const uint64_t clock0 = now_ns();
  const uint64_t t_meas = clock0 + uint64_t(o.warmup * 1e9);
  const uint64_t t_end = t_meas + uint64_t(o.secs * 1e9);
  std::vector<std::unique_ptr<Counters>> counters;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    const size_t lo = size_t(connected) * size_t(t) / size_t(threads);
    const size_t hi = size_t(connected) * size_t(t + 1) / size_t(threads);
    counters.push_back(std::make_unique<Counters>());
    std::vector<int> share(fds.begin() + long(lo), fds.begin() + long(hi));
    Counters& c = *counters.back();
    pool.emplace_back([&o, mine = std::move(share), clock0, &c, t_end]() mutable {
      Bots bots(o, std::move(mine), clock0, c);
      bots.run(t_end + 2'000'000'000ull);
    });
  }

  sleep_until(t_meas);
  const uint64_t w0 = now_ns();
  const Snapshot s0 = sample(counters);
  const double self0 = pid_cpu_s(int(getpid()));
  const double srv0 = o.server_pid > 0 ? tree_cpu_s(o.server_pid) : -1;
  sleep_until(t_end);
  const uint64_t w1 = now_ns();
  const Snapshot s1 = sample(counters);
  const double self1 = pid_cpu_s(int(getpid()));
  const double srv1 = o.server_pid > 0 ? tree_cpu_s(o.server_pid) : -1;
  const bool interrupted = g_stop.exchange(true);
  for (auto& th : pool) th.join();

  const double dt = double(w1 - w0) / 1e9;
  const double bot_ticks = double(connected) * o.hz * dt;
  const double client_cpu = self1 - self0;
  const bool have_server = o.server_pid > 0 && srv0 >= 0 && srv1 >= 0;
  const double server_cpu = have_server ? srv1 - srv0 : -1;
  const double inputs_per_s = double(s1.sent - s0.sent) / dt;
  const double snapshots_per_s = double(s1.bytes_in - s0.bytes_in) / double(o.out) / dt;
  const double server_cores = have_server ? server_cpu / dt : -1;
  const double client_cores = client_cpu / dt;
  const double server_us = have_server ? server_cpu / bot_ticks * 1e6 : -1;
  const double client_us = client_cpu / bot_ticks * 1e6;
  const double per1000 = 1000.0 / double(connected);
  const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };

  std::printf("RESULT floor-client conns=%d connected=%d hz=%.0f in=%d out=%d phases=%d threads=%d read=%s "
              "window_s=%.2f inputs_per_s=%.0f snapshots_per_s=%.0f expected_per_s=%.0f server_cores=%.3f "
              "client_cores=%.3f server_us_per_bot_tick=%.2f client_us_per_bot_tick=%.2f "
              "server_cores_per_1000=%.3f client_cores_per_1000=%.3f connect_failures=%llu closed=%llu "
              "send_failed=%llu skipped=%llu late_slots=%llu client_wakes_per_s=%.0f client_reads_per_s=%.0f\n",
              o.conns, connected, o.hz, o.in, o.out, o.phases, threads, o.read.c_str(), dt, inputs_per_s,
              snapshots_per_s, double(connected) * o.hz, server_cores, client_cores, server_us, client_us,
              have_server ? server_cores * per1000 : -1.0, client_cores * per1000, u(connect_failures),
              u(s1.closed), u(s1.send_failed - s0.send_failed), u(s1.skipped - s0.skipped),
              u(s1.late_slots - s0.late_slots), double(s1.wakes - s0.wakes) / dt,
              double(s1.read_calls - s0.read_calls) / dt);
  std::fflush(stdout);
  char server_text[96] = "server not measured (no --server-pid)";
  if (have_server)
    std::snprintf(server_text, sizeof server_text, "server %.3f cores = %.2f us per bot-tick", server_cores,
                  server_us);
  std::fprintf(stderr,
               "floor: %d/%d connections, %.1f s measured: %.0f inputs/s, %.0f snapshots/s (%.0f expected); %s; "
               "client %.3f cores = %.2f us per bot-tick%s\n",
               connected, o.conns, dt, inputs_per_s, snapshots_per_s, double(connected) * o.hz, server_text,
               client_cores, client_us, interrupted ? " (interrupted)" : "");
  const bool clean = connected == o.conns && s1.closed == 0 && !interrupted && (o.server_pid <= 0 || have_server);
  return clean ? 0 : 1;
}
