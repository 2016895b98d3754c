// fuzz_record: a match's record file (server/record/record.h), which
// skirmish-replay reads from wherever a user found it: record::parse on any
// bytes and, for a file that parses as an arena record, record::replay with
// the arena module (loaded once through module::load, as skirmish-replay
// loads it after the same checks).
//
// Input: the file's bytes, as they are. Seeds (make_seed_corpus): a real
// 90-tick arena record written through the ring as the server writes it,
// cut at every few records, with a hash and an input byte changed.
//
// Checked, beyond "no crash, no ASan/UBSan report":
//   - parse() is a pure function (twice, the same result) and says why it
//     refuses in one line;
//   - a parsed record is self-consistent: ticks 1, 2, ... strictly rising,
//     every tick's inputs inside Parsed::inputs, every input's bytes inside
//     Parsed::bytes and at most SKIRMISH_MAX_INPUT_BYTES long;
//   - replay() answers Ok, Diverged or Incomplete with a one-line message,
//     and a Diverged tick is one the record holds (or 0, init's).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "module/module.h"
#include "record/record.h"
#include "record/replay.h"

#define FUZZ_CHECK(cond)                                                                         \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "fuzz_record: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

namespace {

using namespace skirmish;

std::optional<module::Module> g_arena;

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

void check_parsed(const record::Parsed& p) {
  std::uint32_t prev = 0;
  for (const record::Tick& t : p.ticks) {
    FUZZ_CHECK(t.tick > prev);
    prev = t.tick;
    FUZZ_CHECK(std::uint64_t(t.first) + t.count <= p.inputs.size());
  }
  for (const record::Input& in : p.inputs) {
    FUZZ_CHECK(in.len <= SKIRMISH_MAX_INPUT_BYTES);
    FUZZ_CHECK(std::uint64_t(in.offset) + in.len <= p.bytes.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string error;
  g_arena = module::load("arena", module::Limits{}, error);
  if (!g_arena) {
    std::fprintf(stderr, "fuzz_record: %s\n", error.c_str());
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  record::Parsed p;
  std::string error;
  const bool ok = record::parse(data, size, p, error);
  record::Parsed again;
  std::string error2;
  FUZZ_CHECK(record::parse(data, size, again, error2) == ok);
  if (!ok) {
    FUZZ_CHECK(one_line(error) && error == error2);
    return 0;
  }
  FUZZ_CHECK(again.ticks.size() == p.ticks.size() && again.bytes == p.bytes);
  check_parsed(p);

  // skirmish-replay's own checks before it replays (replay_main.cpp).
  const skirmish_game_v1_t* g = g_arena->game;
  const record::FileHeader& h = p.header;
  if (h.game_name != g->name || h.game_version != g->version || h.state_bytes != g->state_bytes) return 0;
  if (!module::check_match(*g_arena, module::GameParams(h.params, h.tick_rate_hz), h.players, error)) return 0;
  const record::ReplayResult r = record::replay(p, g, [](const std::string&) {});
  FUZZ_CHECK(r.verdict == record::Verdict::Ok || r.verdict == record::Verdict::Diverged ||
             r.verdict == record::Verdict::Incomplete);
  FUZZ_CHECK(one_line(r.message));
  if (r.verdict == record::Verdict::Diverged && r.tick != 0) {
    bool held = false;
    for (const record::Tick& t : p.ticks) held = held || t.tick == r.tick;
    FUZZ_CHECK(held);
  }
  return 0;
}
