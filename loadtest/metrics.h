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

  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t inputs_sent = 0;
  uint64_t snapshots = 0;
  uint64_t matches_found = 0;
  uint64_t matches_ended = 0;
  uint64_t connect_failures = 0;   // connect or handshake never reached Welcome
  uint64_t drops = 0;              // an established connection lost (then resumed or not)
  uint64_t resumes = 0;
  uint64_t write_queue_full = 0;
  uint64_t churned = 0;            // bots that left (--churn) and joined again as new players
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
    frames_in += o.frames_in;
    frames_out += o.frames_out;
    bytes_in += o.bytes_in;
    bytes_out += o.bytes_out;
    inputs_sent += o.inputs_sent;
    snapshots += o.snapshots;
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
