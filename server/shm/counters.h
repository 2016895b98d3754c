// The one table of counters: every counter, gauge and histogram a process
// keeps for /metrics, named once. From it come the struct each process
// counts into (shm::Counters: worker::Stats, coordinator::Stats and
// master::MasterStats are it), the counter block of its ProcessRow, the copy
// into that row (publish_counters) and the master's rendering of /metrics
// (master/metrics.cpp). Adding a counter is one line below (and a
// kLayoutVersion bump: the row changes; the static_assert in tables.h says
// so).
//
// Contract
// - SKIRMISH_COUNTERS(X): X(field, role, kind, sync, metric, labels, help)
//     field   the member of Counters (u64)
//     role    the process that keeps it: Worker, Coordinator, Master, or Any
//     kind    Counter (only goes up; metric ends in _total) or Gauge
//     sync    Copied: counted in process memory and copied into the row by
//             publish_counters on the heartbeat (never per frame); Live:
//             written into the row where it happens (shared_add), because
//             another process acts on it (the master's hand-off reads
//             connections_open) or Segment::post counts it (mailbox_full)
//     metric  the Prometheus family; entries of one family are adjacent and
//             differ in `labels`
//     labels  fixed labels of this entry's sample ("" or `kind="full"`)
//   Every sample also carries role and index (the process's slot).
// - SKIRMISH_HISTOGRAMS(X): X(field, role, metric, bounds, divisor, help):
//   an ShmHistogram in `bounds` units, exported as seconds (value / divisor).
// - errors_by_code is the one array: Error frames a worker sent, by
//   proto::ErrorCode, exported as skirmish_errors_sent_total{code=...} with
//   every code present from the start.
// - Every entry is exported from the process's start at 0 (rate() and
//   absent() need the series before the first event).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>

#include "shm/atomic_field.h"
#include "shm/histogram_field.h"

namespace skirmish::shm {

inline constexpr std::uint32_t kErrorCodeSlots = 24;  // >= proto::ErrorCode::MAX + 1

// clang-format off
#define SKIRMISH_COUNTERS(X) \
  /* worker: connections */ \
  X(connections_open, Worker, Gauge, Live, "skirmish_connections_open", "", "Client connections the worker holds now.") \
  X(connections_accepted, Worker, Counter, Live, "skirmish_worker_connections_accepted_total", "", "Connections the worker took from the master.") \
  X(connections_closed, Worker, Counter, Live, "skirmish_worker_connections_closed_total", "", "Connections the worker closed.") \
  X(frames_in, Worker, Counter, Copied, "skirmish_frames_received_total", "", "Frames received from clients.") \
  X(frames_out, Worker, Counter, Copied, "skirmish_frames_sent_total", "", "Frames queued to clients.") \
  X(bytes_in, Worker, Counter, Copied, "skirmish_received_bytes_total", "", "Bytes received from clients.") \
  X(bytes_out, Worker, Counter, Copied, "skirmish_sent_bytes_total", "", "Bytes written to clients.") \
  X(decode_errors, Worker, Counter, Copied, "skirmish_decode_errors_total", "", "Connections closed because their bytes were not valid frames (bad header, too large, unverifiable).") \
  X(rate_limited, Worker, Counter, Copied, "skirmish_rate_limited_total", "", "Connections closed for sending more messages than messages_per_second allows.") \
  X(handshake_timeouts, Worker, Counter, Copied, "skirmish_handshake_timeouts_total", "", "Connections closed for not finishing the handshake within handshake_timeout_ms.") \
  X(idle_timeouts, Worker, Counter, Copied, "skirmish_idle_timeouts_total", "", "Connections closed after idle_timeout_ms of silence.") \
  X(slow_consumers, Worker, Counter, Copied, "skirmish_slow_consumers_total", "", "Clients closed because their write queue was full.") \
  X(close_reports_dropped, Worker, Counter, Copied, "skirmish_close_reports_dropped_total", "", "Connection closes the worker could not report to the master (its per-address count stays high until the worker exits).") \
  /* worker: play */ \
  X(tickets_created, Worker, Counter, Copied, "skirmish_tickets_created_total", "", "Matchmaking tickets created (QueueJoin).") \
  X(tickets_cancelled, Worker, Counter, Copied, "skirmish_tickets_cancelled_total", "", "Tickets cancelled by QueueLeave or a drain.") \
  X(inputs, Worker, Counter, Copied, "skirmish_inputs_received_total", "", "Inputs received.") \
  X(inputs_dropped, Worker, Counter, Copied, "skirmish_inputs_dropped_total", "", "Inputs dropped: stale, queue full, or superseded.") \
  X(inputs_rejected, Worker, Counter, Copied, "skirmish_inputs_rejected_total", "", "Inputs refused: by the game's check_input, longer than max_input_bytes, or not in a running match.") \
  X(matches_owned, Worker, Gauge, Copied, "skirmish_matches_owned", "", "Matches the worker ticks now.") \
  X(matches_ended, Worker, Counter, Copied, "skirmish_matches_ended_total", "", "Matches the worker ended (score or time limit, or a drain's deadline).") \
  X(matches_ended_at_deadline, Worker, Counter, Copied, "skirmish_matches_ended_at_drain_deadline_total", "", "Matches still running at a drain's deadline (timeouts.drain_timeout_ms), ended with no rating change.") \
  X(ticks, Worker, Counter, Copied, "skirmish_match_ticks_total", "", "Match steps run.") \
  X(steps_over_budget, Worker, Counter, Copied, "skirmish_game_steps_over_budget_total", "", "Match steps slower than game.step_budget_us (logged, rate-limited).") \
  X(step_crashes, Worker, Counter, Copied, "skirmish_game_step_crashes_total", "", "Matches found with a step() that never returned (the module crashed a worker in it); stepped again once.") \
  X(matches_quarantined, Worker, Counter, Copied, "skirmish_matches_quarantined_total", "", "Matches ended with GameError after the module crashed in their step() twice.") \
  X(records_lost, Worker, Counter, Copied, "skirmish_match_records_lost_total", "", "Matches whose record ring filled before the coordinator drained it: recorded up to that tick only (logged).") \
  X(views_too_long, Worker, Counter, Copied, "skirmish_game_views_refused_total", "", "Views the module returned longer than its max_view_bytes (not sent).") \
  X(ticks_late, Worker, Counter, Copied, "skirmish_tick_passes_late_total", "", "Tick passes run more than one interval late.") \
  X(ticks_skipped, Worker, Counter, Copied, "skirmish_tick_passes_skipped_total", "", "Tick passes given up after a stall (logged).") \
  X(snapshots_full, Worker, Counter, Copied, "skirmish_snapshots_sent_total", "kind=\"full\"", "Snapshots sent to clients, full or delta.") \
  X(snapshots_delta, Worker, Counter, Copied, "skirmish_snapshots_sent_total", "kind=\"delta\"", "") \
  X(snapshot_bytes_full, Worker, Counter, Copied, "skirmish_snapshot_sent_bytes_total", "kind=\"full\"", "Bytes of the snapshots sent, full or delta.") \
  X(snapshot_bytes_delta, Worker, Counter, Copied, "skirmish_snapshot_sent_bytes_total", "kind=\"delta\"", "") \
  X(resumes, Worker, Counter, Copied, "skirmish_resumes_total", "result=\"ok\"", "Resume attempts, by result.") \
  X(resume_failures, Worker, Counter, Copied, "skirmish_resumes_total", "result=\"failed\"", "") \
  X(resumes_from_dead_worker, Worker, Counter, Copied, "skirmish_resumes_from_dead_worker_total", "", "Resumes whose token was still bound to a session of a worker that had just died (free at once, before the master marked it down).") \
  /* worker: identity and the players store */ \
  X(auth_refused, Worker, Counter, Copied, "skirmish_auth_refused_total", "", "Hellos refused for their token (Error Unauthorized): none where auth.required, malformed, bad signature, expired, wrong issuer or audience.") \
  X(store_loads, Worker, Counter, Copied, "skirmish_store_loads_total", "result=\"ok\"", "Players store reads at Hello, by result (failed: the Hello was refused with Error Unavailable; logged, rate-limited).") \
  X(store_load_failures, Worker, Counter, Copied, "skirmish_store_loads_total", "result=\"failed\"", "") \
  X(store_saves, Worker, Counter, Copied, "skirmish_store_saves_total", "result=\"ok\"", "Players store writes when a rated match ends, one per match, by result (failed: that match's rating changes are not kept; logged, rate-limited).") \
  X(store_save_failures, Worker, Counter, Copied, "skirmish_store_saves_total", "result=\"failed\"", "") \
  /* coordinator */ \
  X(rounds, Coordinator, Counter, Copied, "skirmish_matchmaking_rounds_total", "", "Matchmaking rounds run.") \
  X(matches_formed, Coordinator, Counter, Copied, "skirmish_matches_formed_total", "", "Matches the coordinator formed.") \
  X(matches_raced, Coordinator, Counter, Copied, "skirmish_matches_not_formed_total", "reason=\"raced\"", "Matches the matchmaker picked but did not form: a ticket changed before the claim, or the match table was full.") \
  X(match_alloc_failed, Coordinator, Counter, Copied, "skirmish_matches_not_formed_total", "reason=\"table_full\"", "") \
  X(matches_adopted, Coordinator, Counter, Copied, "skirmish_matches_adopted_total", "", "Matches handed to a new owner after their worker died.") \
  X(matches_recovered, Coordinator, Counter, Copied, "skirmish_matches_recovered_total", "", "Half-formed matches a starting coordinator finished or undid.") \
  X(matches_released, Coordinator, Counter, Copied, "skirmish_matches_released_total", "", "Ended match rows released after their linger.") \
  X(tickets_released, Coordinator, Counter, Copied, "skirmish_tickets_released_total", "", "Ticket rows released (matched, cancelled, or their player gone).") \
  X(records_finished, Coordinator, Counter, Copied, "skirmish_match_records_total", "result=\"complete\"", "Match record files finished (game.record_dir), by result: complete, incomplete (the ring filled: see skirmish_match_records_lost_total), capped at game.record_max_bytes, or failed (a write error, logged).") \
  X(records_incomplete, Coordinator, Counter, Copied, "skirmish_match_records_total", "result=\"incomplete\"", "") \
  X(records_capped, Coordinator, Counter, Copied, "skirmish_match_records_total", "result=\"capped\"", "") \
  X(records_failed, Coordinator, Counter, Copied, "skirmish_match_records_total", "result=\"failed\"", "") \
  X(record_bytes_written, Coordinator, Counter, Copied, "skirmish_match_record_written_bytes_total", "", "Bytes written to match record files.") \
  X(invalid_parties, Coordinator, Counter, Copied, "skirmish_tickets_invalid_party_total", "", "Tickets cancelled because their party can never be matched as given.") \
  /* master */ \
  X(accepted, Master, Counter, Copied, "skirmish_connections_accepted_total", "", "TCP connections accepted by the master.") \
  X(handed_off, Master, Counter, Copied, "skirmish_connections_handed_off_total", "", "Connections passed to a worker (SCM_RIGHTS).") \
  X(refused_full, Master, Counter, Copied, "skirmish_connections_refused_total", "reason=\"server_full\"", "Connections the master refused or lost, by reason.") \
  X(refused_no_worker, Master, Counter, Copied, "skirmish_connections_refused_total", "reason=\"no_worker\"", "") \
  X(refused_per_address, Master, Counter, Copied, "skirmish_connections_refused_total", "reason=\"per_address\"", "") \
  X(refused_fd_limit, Master, Counter, Copied, "skirmish_connections_refused_total", "reason=\"fd_limit\"", "") \
  X(handoff_failed, Master, Counter, Copied, "skirmish_handoffs_failed_total", "", "Hand-offs that never reached a live worker (it died first): each went to another worker, or past 3 tries was refused (reason=no_worker).") \
  X(accept_pauses, Master, Counter, Copied, "skirmish_accept_pauses_total", "", "Times accepting paused for lack of any spare file descriptor.") \
  X(respawns, Master, Counter, Copied, "skirmish_children_respawned_total", "", "Children this master restarted, over every slot.") \
  X(heartbeat_kills, Master, Counter, Copied, "skirmish_heartbeat_kills_total", "", "Children killed by the master for a stale heartbeat.") \
  /* every process */ \
  X(mailbox_full, Any, Counter, Live, "skirmish_mailbox_posts_refused_total", "", "Events this process could not post because the receiver's mailbox was full (logged).")

#define SKIRMISH_HISTOGRAMS(X) \
  X(tick_pass_us, Worker, "skirmish_tick_pass_duration_seconds", kHistBoundsUs, 1e6, "Wall time of one tick pass over every match a worker owns.") \
  X(tick_drift_us, Worker, "skirmish_tick_drift_seconds", kHistBoundsUs, 1e6, "How late a tick pass started against its schedule.") \
  X(matchmaking_wait_ms, Coordinator, "skirmish_matchmaking_wait_seconds", kWaitBoundsMs, 1e3, "Time from a ticket's QueueJoin to its match.")
// clang-format on

enum class Keeper : std::uint8_t { Worker, Coordinator, Master, Any };
enum class CounterKind : std::uint8_t { Counter, Gauge };
enum class CounterSync : std::uint8_t { Copied, Live };

// What a process counts, and the block of its ProcessRow the counts are
// copied into. Plain u64s (value-initialise: all 0), trivially copyable.
struct Counters {
#define SKIRMISH_COUNTER_FIELD(field, ...) std::uint64_t field;
  SKIRMISH_COUNTERS(SKIRMISH_COUNTER_FIELD)
#undef SKIRMISH_COUNTER_FIELD
  std::uint64_t errors_by_code[kErrorCodeSlots];  // Error frames sent, by proto::ErrorCode (worker)
#define SKIRMISH_HISTOGRAM_FIELD(field, ...) ShmHistogram field;
  SKIRMISH_HISTOGRAMS(SKIRMISH_HISTOGRAM_FIELD)
#undef SKIRMISH_HISTOGRAM_FIELD
};
static_assert(std::is_trivially_copyable_v<Counters>);
static_assert(std::is_standard_layout_v<Counters>);

struct CounterSpec {
  std::uint64_t Counters::*field;
  Keeper role;
  CounterKind kind;
  CounterSync sync;
  const char* metric;
  const char* labels;
  const char* help;  // "" on the later entries of a family
};

struct HistogramSpec {
  ShmHistogram Counters::*field;
  Keeper role;
  const char* metric;
  const std::uint64_t (*bounds)[kHistBuckets - 1];
  double divisor;  // stored units per second
  const char* help;
};

inline constexpr CounterSpec kCounterSpecs[] = {
#define SKIRMISH_COUNTER_SPEC(field, role, kind, sync, metric, labels, help) \
  {&Counters::field, Keeper::role, CounterKind::kind, CounterSync::sync, metric, labels, help},
    SKIRMISH_COUNTERS(SKIRMISH_COUNTER_SPEC)
#undef SKIRMISH_COUNTER_SPEC
};

inline constexpr HistogramSpec kHistogramSpecs[] = {
#define SKIRMISH_HISTOGRAM_SPEC(field, role, metric, bounds, divisor, help) \
  {&Counters::field, Keeper::role, metric, &bounds, divisor, help},
    SKIRMISH_HISTOGRAMS(SKIRMISH_HISTOGRAM_SPEC)
#undef SKIRMISH_HISTOGRAM_SPEC
};

inline constexpr std::size_t kCounterCount = std::size(kCounterSpecs);
inline constexpr std::size_t kHistogramCount = std::size(kHistogramSpecs);

namespace counters_detail {
constexpr bool same(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}
constexpr bool ends_in_total(const char* s) {
  const char* e = s;
  while (*e != '\0') ++e;
  return e - s >= 6 && same(e - 6, "_total");
}
// The rules the renderer relies on: a family's entries adjacent, one HELP
// (on its first), one kind and role; counters and only counters end in
// _total.
constexpr bool well_formed() {
  for (std::size_t i = 0; i < std::size(kCounterSpecs); ++i) {
    const CounterSpec& c = kCounterSpecs[i];
    const bool first = i == 0 || !same(c.metric, kCounterSpecs[i - 1].metric);
    if (first != (c.help[0] != '\0')) return false;
    if (!first && (c.kind != kCounterSpecs[i - 1].kind || c.role != kCounterSpecs[i - 1].role)) return false;
    if (first)
      for (std::size_t j = 0; j < i; ++j)
        if (same(kCounterSpecs[j].metric, c.metric)) return false;
    if ((c.kind == CounterKind::Counter) != ends_in_total(c.metric)) return false;
  }
  return true;
}
}  // namespace counters_detail
static_assert(counters_detail::well_formed(),
              "SKIRMISH_COUNTERS: keep a family's entries adjacent with HELP on the first only, one kind and "
              "role per family, and _total on counters only");

// Whether a process of role `process` (Worker, Coordinator or Master) keeps
// an entry kept by `k`.
inline constexpr bool keeps(Keeper process, Keeper k) { return k == Keeper::Any || k == process; }

// Copies a process's Copied counters, its histograms and (a worker) its
// errors by code into its row's block. Called on the heartbeat and at exit,
// never per frame. Live entries are the row's own and left alone.
inline void publish_counters(Counters& row, const Counters& local, Keeper role) {
  for (const CounterSpec& c : kCounterSpecs)
    if (c.sync == CounterSync::Copied && keeps(role, c.role)) shared_store(row.*c.field, local.*c.field);
  for (const HistogramSpec& h : kHistogramSpecs)
    if (keeps(role, h.role)) hist_publish(row.*h.field, local.*h.field);
  if (role == Keeper::Worker)
    for (std::uint32_t i = 0; i < kErrorCodeSlots; ++i) shared_store(row.errors_by_code[i], local.errors_by_code[i]);
}

// Zeroes a row's whole block, Live entries too: the master does it before
// it starts a process in the slot, so a respawned process's counters start
// at 0 together (a counter reset, as Prometheus expects after a restart).
inline void reset_counters(Counters& row) {
  for (const CounterSpec& c : kCounterSpecs) shared_store(row.*c.field, std::uint64_t{0});
  const ShmHistogram zero{};
  for (const HistogramSpec& h : kHistogramSpecs) hist_publish(row.*h.field, zero);
  for (std::uint32_t i = 0; i < kErrorCodeSlots; ++i) shared_store(row.errors_by_code[i], std::uint64_t{0});
}

}  // namespace skirmish::shm
