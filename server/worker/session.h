// One client connection inside a worker: its socket, decoder, write queue,
// deadlines and handshake state. Sessions are owned by the Worker; a
// Session is freed only from its handle's close callback.
//
// Write path: frames are appended to `out`; once per loop iteration the
// worker's check handle flushes every dirty session with one send(2)
// (Worker::try_send; the common case: the kernel takes it all, no allocation, no request);
// whatever the kernel refuses moves to `inflight` behind one uv_write.
// `out` + `inflight` never exceed the configured write-queue cap: past it
// the client is a slow consumer and is closed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <vector>

#include "protocol/codec.h"

namespace skirmish::worker {

class Worker;
struct Session;

// An intrusive doubly linked list node: sessions sit in exactly one
// deadline list (handshake, idle or closing) ordered by `since_ms`.
struct ListNode {
  ListNode* prev = this;
  ListNode* next = this;
  Session* owner = nullptr;
  bool linked() const { return next != this; }
  void unlink() {
    prev->next = next;
    next->prev = prev;
    prev = next = this;
  }
  void push_back(ListNode* n) {  // `this` is the list head
    n->prev = prev;
    n->next = this;
    prev->next = n;
    prev = n;
  }
};

enum class SessionState : uint8_t { Handshake, Ready, Closing, Closed };

struct Session {
  uv_tcp_t tcp;  // tcp.data points back at the Session
  int fd = -1;   // tcp's socket (uv_fileno), for send(2) in Worker::try_send and recv(2)
  bool in_read_set = false;  // read from the worker's read set (else by libuv's uv_read_start)
  Worker* worker = nullptr;
  uint64_t id = 0;
  SessionState state = SessionState::Handshake;
  bool loading = false;  // Hello taken, its stored record being read (worker/identity.cpp)
  proto::FrameDecoder decoder;

  // Deadline list membership; since_ms is connect time (handshake), last
  // frame time (idle) or the time closing began (closing linger).
  ListNode node;
  int64_t since_ms = 0;

  // Token bucket for messages per second.
  double tokens = 0;
  int64_t tokens_at_ms = 0;

  // Write queue.
  std::vector<uint8_t> out;
  std::vector<uint8_t> inflight;
  uv_write_t write_req;
  bool writing = false;
  bool dirty = false;
  Session* dirty_next = nullptr;

  // Identity once the handshake is done.
  uint32_t player_id = 0;
  uint32_t player_wire = 0;  // players-table handle (shm/handle.h), 0 none
  uint32_t token[4] = {};
  char peer[48] = {};
  uint64_t handoff_seq = UINT64_MAX;  // nth socket from the master (close reports); MAX = not from it

  // Play (worker/play.cpp). match_wire is the match this session is seated
  // in as far as this worker told the client (MatchFound sent), 0 none.
  uint32_t match_wire = 0;
  uint8_t seat = 0;
  uint32_t ack_tick = 0;        // newest tick the client acknowledged (Input.ack_tick)
  uint32_t last_sent_tick = 0;  // newest tick sent in a Snapshot
  // The first Snapshot tick sent since MatchFound (that one is full); an
  // ack below it names a world this connection never got (one from before
  // a resume, or from another match) and is ignored.
  uint32_t first_sent_tick = 0;
  int64_t match_ended_ms = 0;   // when MatchEnd was sent (inputs in flight are dropped quietly)
  // A MatchEnd queued but not yet handed to the kernel: the player's row
  // keeps the match until it is (Worker::on_flushed), so a kill -9 of this
  // worker before the write leaves it to come again on resume.
  uint32_t end_unflushed_wire = 0;
};

}  // namespace skirmish::worker
