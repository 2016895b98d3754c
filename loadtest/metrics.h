// What skirmish-loadtest measures, per thread and in all.
//
// Each bot thread records into its own Metrics with no lock; a few times a
// second it hands the interval over (merge + reset under its mutex) and the
// main thread merges the intervals into the run's totals and its time
// series. Histograms are nanoseconds unless the name says otherwise.
#pragma once

#include <array>
#include <cstdint>

#include "loadtest/histogram.h"
#include "client/lib/skirmish_client.h"

namespace skirmish::loadtest {

struct Metrics {
  Histogram connect_welcome;  // TCP connect started -> Welcome
  Histogram ping_rtt;         // Ping -> Pong
  Histogram queue_match;      // QueueJoin -> MatchFound
  Histogram input_snapshot;   // Input seq S sent -> first Snapshot with last_input_seq >= S
  Histogram snapshot_rate;    // per finished match: snapshots per second x 1000 (milli-Hz)
  // With the kernel receive clock (Options::rx_kernel): the same samples as
  // input_snapshot with the time the thread read them instead, and that
  // read delay per snapshot (read time - kernel receive time).
  Histogram input_snapshot_read;
  Histogram read_delay;

  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t inputs_sent = 0;
  uint64_t bot_idle = 0;           // times the game's bot_input had nothing to send (not its turn, say)
  uint64_t snapshots = 0;
  // Snapshot sizes, from the client library's counters: frames (with the
  // 4-byte length header) of full views and of deltas applied, and the
  // views they rebuilt (the game's bytes, whatever the encoding).
  uint64_t snapshots_full = 0, snapshots_delta = 0;
  uint64_t snapshot_bytes_full = 0, snapshot_bytes_delta = 0;
  uint64_t snapshots_missing_base = 0, snapshots_bad_delta = 0;
  uint64_t view_bytes = 0;         // sum of the views' sizes over `snapshots`
  uint64_t matches_without_bot = 0;  // matches whose game has no bot_input (or no module here): no input sent
  uint64_t matches_found = 0;
  uint64_t matches_ended = 0;
  uint64_t connect_failures = 0;   // connect or handshake never reached Welcome
  uint64_t drops = 0;              // an established connection lost (then resumed or not)
  uint64_t resumes = 0;
  uint64_t write_queue_full = 0;
  uint64_t churned = 0;            // bots that left (--churn) and joined again as new players
  uint64_t reads = 0;              // socket reads that returned bytes (client library's count)
  uint64_t reads_multi_snapshot = 0;  // ... that carried more than one Snapshot
  uint64_t reads_without_rx_time = 0;  // kernel clock: reads with no timestamp (read time used)
  uint64_t rx_after_read = 0;      // kernel clock: a receive time later than the read (clock error; read time used)
  uint64_t latency_negative = 0;   // input->snapshot samples < 0 (not recorded)
  std::array<uint64_t, client::kErrorCodeCount> errors{};  // Error messages by code

  uint64_t error_total() const {
    uint64_t n = 0;
    for (uint64_t e : errors) n += e;
    return n;
  }

  void merge(const Metrics& o) {
    connect_welcome.merge(o.connect_welcome);
    ping_rtt.merge(o.ping_rtt);
    queue_match.merge(o.queue_match);
    input_snapshot.merge(o.input_snapshot);
    snapshot_rate.merge(o.snapshot_rate);
    input_snapshot_read.merge(o.input_snapshot_read);
    read_delay.merge(o.read_delay);
    reads += o.reads;
    reads_multi_snapshot += o.reads_multi_snapshot;
    reads_without_rx_time += o.reads_without_rx_time;
    rx_after_read += o.rx_after_read;
    latency_negative += o.latency_negative;
    frames_in += o.frames_in;
    frames_out += o.frames_out;
    bytes_in += o.bytes_in;
    bytes_out += o.bytes_out;
    inputs_sent += o.inputs_sent;
    bot_idle += o.bot_idle;
    snapshots += o.snapshots;
    snapshots_full += o.snapshots_full;
    snapshots_delta += o.snapshots_delta;
    snapshot_bytes_full += o.snapshot_bytes_full;
    snapshot_bytes_delta += o.snapshot_bytes_delta;
    snapshots_missing_base += o.snapshots_missing_base;
    snapshots_bad_delta += o.snapshots_bad_delta;
    view_bytes += o.view_bytes;
    matches_without_bot += o.matches_without_bot;
    matches_found += o.matches_found;
    matches_ended += o.matches_ended;
    connect_failures += o.connect_failures;
    drops += o.drops;
    resumes += o.resumes;
    write_queue_full += o.write_queue_full;
    churned += o.churned;
    for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  }
};

// How many bots are where, right now (a gauge, not summed over time).
struct Gauges {
  uint32_t connecting = 0;
  uint32_t idle = 0;     // connected, not queued
  uint32_t queued = 0;
  uint32_t in_match = 0;
  uint32_t closed = 0;   // gave up

  uint32_t connected() const { return idle + queued + in_match; }
  void add(const Gauges& o) {
    connecting += o.connecting;
    idle += o.idle;
    queued += o.queued;
    in_match += o.in_match;
    closed += o.closed;
  }
};

}  // namespace skirmish::loadtest
