// fuzz_game: one game module (sdk/include/skirmish/game.h) driven through
// its C table as the server drives it, with untrusted input bytes.
//
// The module is named by $SKIRMISH_FUZZ_GAME (default "arena") and loaded
// once through module::load, so it is found by module.h's rules:
// $SKIRMISH_GAMES_DIR when set, else <exe dir>/../games (build-fuzz/games/
// <name>.so, built and instrumented with the fuzzer). fuzz/run.sh runs
// this fuzzer once per games/*.so of the build.
//
// Input:  players u8, seed u64, then ops until the input ends:
//   op u8 % 4
//     Check  len u8, bytes       check_input on 1 + len % max_input_bytes
//                                bytes (any content; the server checks the
//                                length range before it asks the module)
//     Input  seat u8, len u8, bytes
//                                the same bytes, queued for seat % players
//                                for the next step if check_input passed
//                                (at most SKIRMISH_MAX_QUEUED_INPUTS a seat)
//     Bot    seat u8             bot_input from that seat's newest view
//                                (when the module has a bot), queued
//     Step   n u8, away u8       1 + n % 8 steps; seat i is disconnected
//                                when bit i % 8 of `away` is set
//   A read past the end of the input yields 0.
//
// Checked, beyond "no crash, no ASan/UBSan report, no leak":
//   - init writes every byte of the state (two states, one pre-filled with
//     0x00 and one with 0xFF, are equal after init with the same seed);
//   - determinism: the two states stepped with the same inputs stay equal
//     byte for byte (one of them is viewed after every step, the other
//     never: view and outcome do not change the state);
//   - check_input returns a known verdict; a bot's input is accepted by
//     check_input (the load tester sends it as is) and within the cap;
//   - view() for every seat and the spectator returns at most
//     max_view_bytes into a buffer of exactly max_view_bytes, twice the
//     same bytes; with SKIRMISH_GAME_SHARED_VIEW every seat's view is the
//     spectator's;
//   - step is never called once outcome() said ended, and an ended match
//     gives every seat a place in 1..players.
// Inputs are copied into buffers of exactly their length and the states
// have exactly state_bytes, so a read or write past either is reported.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "module/module.h"
#include "skirmish/game.h"

#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz_game (%s): check failed: %s (%s:%d)\n", g_name.c_str(), #cond, __FILE__, \
                   __LINE__);                                                                 \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace {

using namespace skirmish;

std::string g_name;
std::optional<module::Module> g_module;
std::optional<module::GameParams> g_params;  // defaults: no [game.params]

const skirmish_game_v1_t& game() { return *g_module->game; }

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(u8()) << (8 * i);
    return v;
  }
  // `len` bytes, zero-filled past the end of the input, in a buffer of
  // exactly that size.
  std::vector<uint8_t> bytes(size_t len) {
    std::vector<uint8_t> out(len, 0);
    const size_t take = std::min(len, n_);
    if (take > 0) std::memcpy(out.data(), p_, take);
    p_ += take;
    n_ -= take;
    return out;
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

struct StateDeleter {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(16)); }
};
using State = std::unique_ptr<uint8_t[], StateDeleter>;

State new_state(uint8_t fill) {
  const size_t n = game().state_bytes;
  State s(static_cast<uint8_t*>(::operator new[](n, std::align_val_t(16))));
  std::memset(s.get(), fill, n);
  return s;
}

struct Queued {
  uint8_t seat;
  uint32_t seq;
  std::vector<uint8_t> bytes;  // exactly the input's length
};

class Match {
 public:
  Match(uint32_t players, uint64_t seed) : players_(players), a_(new_state(0x00)), b_(new_state(0xFF)) {
    game().init(a_.get(), g_params->view(), players, seed);
    game().init(b_.get(), g_params->view(), players, seed);
    FUZZ_CHECK(std::memcmp(a_.get(), b_.get(), game().state_bytes) == 0);  // every byte written
    view_buf_.reset(new uint8_t[game().max_view_bytes]);
    views_.resize(players_);
    for (uint32_t s = 0; s < players_; ++s) rng_[s] = (seed ^ (0x9e3779b97f4a7c15ull * (s + 1))) | 1;
    look();
  }

  void check(Reader& r) {
    const auto bytes = r.bytes(1 + r.u8() % game().max_input_bytes);
    (void)verdict(bytes);
  }

  void input(Reader& r) {
    const uint8_t seat = uint8_t(r.u8() % players_);
    auto bytes = r.bytes(1 + r.u8() % game().max_input_bytes);
    if (verdict(bytes) == SKIRMISH_INPUT_OK) queue(seat, std::move(bytes));
  }

  void bot(Reader& r) {
    const uint8_t seat = uint8_t(r.u8() % players_);
    if (game().bot_input == nullptr) return;
    const uint32_t cap = game().max_input_bytes;
    std::vector<uint8_t> out(cap);
    const std::vector<uint8_t>& v = views_[seat];
    const uint32_t n = game().bot_input(v.data(), uint32_t(v.size()), seat, &rng_[seat], out.data(), cap);
    FUZZ_CHECK(n <= cap);
    FUZZ_CHECK(rng_[seat] != 0);
    if (n == 0) return;
    out.resize(n);
    FUZZ_CHECK(verdict(out) == SKIRMISH_INPUT_OK);  // the load tester sends it as is
    queue(seat, std::move(out));
  }

  void step(Reader& r) {
    const int n = 1 + r.u8() % 8;
    const uint8_t away = r.u8();
    uint32_t connected = 0;
    for (uint32_t s = 0; s < players_; ++s)
      if (((away >> (s % 8)) & 1) == 0) connected |= 1u << s;
    for (int i = 0; i < n && !ended_; ++i) {
      // Grouped by seat in ascending order, in arrival order within a seat.
      std::stable_sort(queued_.begin(), queued_.end(),
                       [](const Queued& x, const Queued& y) { return x.seat < y.seat; });
      std::vector<skirmish_input> items;
      for (const Queued& q : queued_)
        items.push_back(skirmish_input{q.seat, uint8_t(q.bytes.size()), 0, q.seq, q.bytes.data()});
      const skirmish_inputs in{items.empty() ? nullptr : items.data(), uint32_t(items.size()), connected};
      ++tick_;
      game().step(a_.get(), &in, tick_);
      game().step(b_.get(), &in, tick_);
      FUZZ_CHECK(std::memcmp(a_.get(), b_.get(), game().state_bytes) == 0);  // deterministic
      queued_.clear();
      per_seat_.fill(0);
      look();
    }
  }

 private:
  uint32_t verdict(const std::vector<uint8_t>& bytes) {
    const uint32_t v = game().check_input(bytes.data(), uint32_t(bytes.size()));
    FUZZ_CHECK(v == SKIRMISH_INPUT_OK || v == SKIRMISH_INPUT_MALFORMED || v == SKIRMISH_INPUT_OUT_OF_RANGE);
    return v;
  }

  void queue(uint8_t seat, std::vector<uint8_t> bytes) {
    if (per_seat_[seat] >= SKIRMISH_MAX_QUEUED_INPUTS) return;
    ++per_seat_[seat];
    queued_.push_back(Queued{seat, ++seq_[seat], std::move(bytes)});
  }

  // Views of every seat and the spectator from state a (b is never viewed),
  // then the outcome.
  std::vector<uint8_t> view_of(uint32_t seat) {
    const uint32_t cap = game().max_view_bytes;
    const uint32_t n = game().view(a_.get(), seat, view_buf_.get(), cap);
    FUZZ_CHECK(n <= cap);
    std::vector<uint8_t> v(view_buf_.get(), view_buf_.get() + n);
    const uint32_t n2 = game().view(a_.get(), seat, view_buf_.get(), cap);
    FUZZ_CHECK(n2 == n && std::memcmp(view_buf_.get(), v.data(), n) == 0);  // deterministic in (state, seat)
    return v;
  }

  void look() {
    const std::vector<uint8_t> spectator = view_of(SKIRMISH_SPECTATOR);
    for (uint32_t s = 0; s < players_; ++s) {
      views_[s] = view_of(s);
      if (game().flags & SKIRMISH_GAME_SHARED_VIEW) FUZZ_CHECK(views_[s] == spectator);
    }
    skirmish_outcome o;
    std::memset(&o, 0xAB, sizeof o);
    game().outcome(a_.get(), &o);
    FUZZ_CHECK(o.end <= SKIRMISH_END_TIME_LIMIT);
    if (o.end != SKIRMISH_RUNNING) {
      ended_ = true;
      for (uint32_t s = 0; s < players_; ++s) FUZZ_CHECK(o.seats[s].place >= 1 && o.seats[s].place <= players_);
    }
  }

  uint32_t players_;
  State a_, b_;
  std::unique_ptr<uint8_t[]> view_buf_;
  std::vector<std::vector<uint8_t>> views_;
  std::vector<Queued> queued_;
  std::array<uint32_t, SKIRMISH_MAX_SEATS> per_seat_{};
  std::array<uint32_t, SKIRMISH_MAX_SEATS> seq_{};
  std::array<uint64_t, SKIRMISH_MAX_SEATS> rng_{};
  uint32_t tick_ = 0;
  bool ended_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("SKIRMISH_FUZZ_GAME");
  g_name = env != nullptr && *env != '\0' ? env : "arena";
  std::string error;
  g_module = module::load(g_name, module::Limits{}, error);
  if (!g_module) {
    std::fprintf(stderr, "fuzz_game: %s\n", error.c_str());
    std::exit(2);
  }
  const skirmish_game_v1_t& t = game();
  const uint32_t rate = std::clamp<uint32_t>(30, t.min_tick_rate_hz, t.max_tick_rate_hz);
  g_params.emplace(std::vector<module::GameParam>{}, rate);
  char err[256] = {};
  if (t.check_params(g_params->view(), t.min_players, err, sizeof err) != 0) {
    std::fprintf(stderr, "fuzz_game: %s refuses its default params for %u players: %.*s\n", g_name.c_str(),
                 unsigned(t.min_players), int(sizeof err), err);
    std::exit(2);
  }
  std::fprintf(stderr, "fuzz_game: %s %s from %s (state %u bytes, input <= %u, view <= %u, %u..%u players)\n",
               t.name, t.version, g_module->path.c_str(), t.state_bytes, t.max_input_bytes, t.max_view_bytes,
               unsigned(t.min_players), unsigned(t.max_players));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const skirmish_game_v1_t& t = game();
  const uint32_t players = t.min_players + r.u8() % (uint32_t(t.max_players) - t.min_players + 1);
  char err[256];
  if (t.check_params(g_params->view(), players, err, sizeof err) != 0) return 0;  // not a playable count
  Match m(players, r.u64());
  for (int ops = 0; !r.empty() && ops < 4096; ++ops) {
    switch (r.u8() % 4) {
      case 0: m.check(r); break;
      case 1: m.input(r); break;
      case 2: m.bot(r); break;
      default: m.step(r); break;
    }
  }
  return 0;
}
