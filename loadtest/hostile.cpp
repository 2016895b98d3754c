// skirmish-hostile: hostile clients against a skirmish-server, each attack
// checked against what protocol/PROTOCOL.md says the server must answer.
//
// One libuv loop, one thread. Every attacker socket is bound to one of the
// --sources loopback addresses (round robin), so the server's per-address
// cap applies to the attackers and not to well-behaved bots on 127.0.0.1.
// One 10 ms tick opens connections, sends the timed bytes (slowloris,
// noread) and judges deadlines; nothing runs past --duration, and every
// count that drives a loop is bounded (per tick, per connection, in all).
//
// Each connection ends in exactly one verdict: expected (the server did
// what PROTOCOL.md says), unexpected (it did not: a reason is kept),
// capped (Error TooManyConnections or ServerFull at accept), connect_failed,
// or unfinished (the run ended first). What the server must answer to a
// random frame is not guessed: the bytes are run through the server's own
// decoder (proto::FrameDecoder with the handshake limits) first.
//
// Protocol v2: the tool knows no game but what MatchFound says (game name,
// max_input_bytes). Its inputs are the arena's bytes where it must send a
// valid one without having read MatchFound (noread: three zero bytes, a
// standing arena player; another game answers BadInput, which is not fatal
// and never read), and the badinput attack's bytes follow MatchFound.
//
// Exit codes: 0 = no unexpected outcome; 1 = at least one, or no attack
// connection was ever established; 2 = bad usage.
//
// This file: the run, the tick (open, send timed bytes, judge deadlines)
// and the output. The attacker's declarations are in hostile_attacker.h,
// what each attack sends in hostile_attacks.cpp, reads, writes, closes and
// verdicts in hostile_io.cpp; the final table and the JSON report in
// hostile_report.cpp, the command line in hostile_main.cpp.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "loadtest/hostile.h"
#include "loadtest/hostile_attacker.h"

namespace skirmish::hostile::attacker {

using namespace skirmish::proto;

Hostile::Hostile(const Options& o) : o_(o), rng_(o.seed * 0x9E3779B97F4A7C15ull + 1) {
  for (Attack a : kRateAttacks)
    if (o_.enabled[size_t(a)]) rate_attacks_.push_back(a);
  std::vector<uint8_t> ping = frame_ping(0);
  for (size_t i = 0; i < kFloodBatch; ++i) flood_batch_.insert(flood_batch_.end(), ping.begin(), ping.end());
  held_.assign(o_.sources.size(), 0);
  rlimit rl{};
  max_open_ = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 200 ? uint64_t(rl.rlim_cur) - 100 : 100;
}

int Hostile::run() {
  uv_loop_init(&loop_);
  start_ns_ = now_ns();
  tty_ = isatty(STDOUT_FILENO) != 0;
  auto init = [this](uv_timer_t& t) {
    uv_timer_init(&loop_, &t);
    t.data = this;
  };
  init(tick_);
  init(status_);
  init(end_);
  uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<Hostile*>(t->data)->on_tick(); }, 0, kTickMs);
  uv_timer_start(
      &status_, [](uv_timer_t* t) { static_cast<Hostile*>(t->data)->print_status(false); }, 1000, 1000);
  uv_timer_start(&end_, [](uv_timer_t* t) { static_cast<Hostile*>(t->data)->stop(); },
                 uint64_t(o_.duration_s * 1000), 0);
  for (int i = 0; i < 2; ++i) {
    uv_signal_init(&loop_, &signals_[i]);
    signals_[i].data = this;
    uv_signal_start(&signals_[i], [](uv_signal_t* s, int) { static_cast<Hostile*>(s->data)->stop(); },
                    i == 0 ? SIGINT : SIGTERM);
  }
  std::printf("skirmish-hostile: -> %s for %.0f s from %zu source address(es), attacks %s, rate %.0f/s, "
              "slowloris %u, flood %u, noread %u, handshake %llu ms\n",
              o_.target.c_str(), o_.duration_s, o_.sources.size(), o_.attacks_text.c_str(), o_.rate,
              o_.slowloris, o_.flood, o_.noread, (unsigned long long)o_.handshake_ms);
  std::fflush(stdout);
  uv_run(&loop_, UV_RUN_DEFAULT);  // returns once stop() has closed every handle
  uv_loop_close(&loop_);
  r_.elapsed_s = double(now_ns() - start_ns_) / 1e9;
  print_table(o_, r_);
  return finish();
}

// ---- the tick: open, send timed bytes, judge deadlines ----

void Hostile::on_tick() {
  const uint64_t now = now_ns();
  spawn(now);
  for (Conn* c = head_.next; c != &head_;) {
    Conn* next = c->next;  // a close frees c only in its close callback, never here
    if (!c->closing) tick_conn(c, now);
    c = next;
  }
}

void Hostile::spawn(uint64_t now) {
  const double secs = double(now - start_ns_) / 1e9;
  if (!rate_attacks_.empty()) {
    const uint64_t due = uint64_t(o_.rate * secs);
    if (due > rate_spawned_ + kMaxSpawnPerTick) {
      r_.rate_skipped += due - rate_spawned_ - kMaxSpawnPerTick;  // behind: skip, not burst
      rate_spawned_ = due - kMaxSpawnPerTick;
    }
    for (; rate_spawned_ < due && live() < max_open_; ++rate_spawned_) {
      const Attack a = rate_attacks_[rate_next_++ % rate_attacks_.size()];
      open(a, a == Attack::WrongState ? uint8_t(wrongstate_next_++ % 3) : 0);
    }
  }
  auto top_up = [&](Attack a, uint32_t want) {
    if (!o_.enabled[size_t(a)] || now < paused_until_[size_t(a)]) return;
    for (uint32_t i = 0; i < kMaxSpawnPerTick && open_[size_t(a)] < want && live() < max_open_; ++i) open(a);
  };
  top_up(Attack::Slowloris, o_.slowloris);
  top_up(Attack::NoRead, o_.noread);
  if (o_.enabled[size_t(Attack::BadInput)] && now >= paused_until_[size_t(Attack::BadInput)] &&
      open_[size_t(Attack::BadInput)] < o_.badinput && now >= badinput_next_ns_ && live() < max_open_) {
    open(Attack::BadInput, uint8_t(badinput_next_++ % 4));
    badinput_next_ns_ = now + kBadInputPauseMs * kMs;
  }
  if (o_.enabled[size_t(Attack::Flood)] && open_[size_t(Attack::Flood)] < o_.flood && now >= flood_next_ns_ &&
      live() < max_open_) {
    open(Attack::Flood);
    flood_next_ns_ = now + kFloodPauseMs * kMs;
  }
}

void Hostile::tick_conn(Conn* c, uint64_t now) {
  if (!c->connected) {
    if (now > c->started_ns + kConnectTimeoutMs * kMs) fail_connect(c, "connect timed out");
    return;
  }
  if (c->done) return;
  const Expect& w = c->want;
  if (c->welcome_deadline_ns != 0 && now > c->welcome_deadline_ns)
    return unexpected(c, "no Welcome to a valid Hello");
  if (c->match_deadline_ns != 0 && now > c->match_deadline_ns)
    return unexpected(c, "no MatchFound within " + ms_since(c, c->match_deadline_ns) + " of a QueueJoin");
  if (w.armed && !w.got && now > w.deadline_ns)
    return unexpected(c, "no " + error_name(w.code, w.fatal) + " within " + ms_since(c, w.deadline_ns));
  if (w.armed && w.got && w.fatal && now > w.close_by_ns(o_.grace_ms * kMs))
    return unexpected(c, "not closed within " + ms_since(c, w.close_by_ns(o_.grace_ms * kMs)) + " after " +
                             error_name(w.code, true));
  if (w.armed && w.got && !w.fatal && now > w.got_ns + kHoldMs * kMs) {
    // Still open after a non-fatal Error, as PROTOCOL.md says: we close.
    if (c->attack == Attack::WrongState && c->step != 3)
      return unexpected(c, "AlreadyInQueue without a QueueStatus first");
    verdict(c, Verdict::Expected);
    return close(c);
  }
  if (c->attack == Attack::Slowloris && now >= c->next_ns && c->sent + 1 < c->bytes.size()) {
    write(c, {c->bytes[c->sent++]});  // never the last byte: the Hello never completes
    c->next_ns += 1000 * kMs;
  } else if (c->attack == Attack::NoRead && c->step == 2 && now >= c->next_ns) {
    c->next_ns += kNoReadInputMs * kMs;
    if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp)) < 64 * 1024)
      write(c, frame_input(++c->seq));  // valid inputs: the server's read side stays happy
  }
}

void Hostile::stop() {
  if (stopping_) return;
  stopping_ = true;
  for (Conn* c = head_.next; c != &head_;) {
    Conn* next = c->next;
    const bool held = c->attack == Attack::NoRead && c->step >= 2;
    if (!c->done) verdict(c, held ? Verdict::StillOpen : Verdict::Unfinished);
    close(c);
    c = next;
  }
  print_status(true);
  for (uv_timer_t* t : {&tick_, &status_, &end_}) uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  for (uv_signal_t& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
}

// ---- output ----

void Hostile::print_status(bool last) {
  if (last && !tty_) return;
  const Counters t = r_.total();
  char line[320];
  std::snprintf(line, sizeof line,
                "[%5.1fs] open %llu (slowloris %llu) | opened %llu expected %llu unexpected %llu capped %llu "
                "connect_failed %llu | server closes %llu",
                double(now_ns() - start_ns_) / 1e9, (unsigned long long)live(),
                (unsigned long long)open_[size_t(Attack::Slowloris)], (unsigned long long)t.opened,
                (unsigned long long)t.expected, (unsigned long long)t.unexpected, (unsigned long long)t.capped,
                (unsigned long long)t.connect_failed, (unsigned long long)t.server_closes);
  if (tty_) std::printf("\r%s\033[K%s", line, last ? "\n" : "");
  else std::printf("%s\n", line);
  std::fflush(stdout);
}

int Hostile::finish() const {
  const Counters t = r_.total();
  const uint64_t connected = t.opened - t.connect_failed;
  int rc = t.unexpected == 0 && connected > 0 ? 0 : 1;
  if (connected == 0) std::printf("no attack connection was established\n");
  if (!o_.report.empty()) {
    std::string error;
    if (write_report(o_, r_, rc, error)) {
      std::printf("report: %s\n", o_.report.c_str());
    } else {
      std::fprintf(stderr, "report: %s\n", error.c_str());
      rc = 1;
    }
  }
  std::printf("%s\n", rc == 0 ? "OK: the server answered every attack as PROTOCOL.md says"
                              : "FAILED: see the unexpected outcomes above");
  return rc;
}

}  // namespace skirmish::hostile::attacker

namespace skirmish::hostile {

int run(const Options& o) {
  attacker::Hostile h(o);
  return h.run();
}

}  // namespace skirmish::hostile
