// The shared-memory segment of one server instance.
//
// Contract
// - The master calls Segment::create once, before any fork: POSIX shm
//   "/" + name, 0600, sized by compute_layout, fully reserved up front
//   (posix_fallocate: a full /dev/shm is a start-up error, not a SIGBUS in a
//   child later), every table and lock formatted, state Ready. Children
//   inherit the mapping across fork and never re-attach.
// - A segment of the same name already there is inspected: if its header
//   names a live master (kill(pid, 0) succeeds or fails with EPERM, the pid is
//   not ours, and its start time matches the one recorded, which catches a
//   recycled pid) create fails with "shared memory /NAME is in use by a
//   running server (pid N)". Otherwise (dead master, bad magic, too small,
//   recycled pid) it is unlinked and replaced, and stale_replaced() says why
//   so the caller can log it. Residual race: two masters started within
//   microseconds with one name can both win; one name is one instance.
// - open_existing maps an existing segment read-write after checking magic,
//   version, sizes, layout and file size (tools, tests).
// - Move-only. The destructor unmaps; it never unlinks: unlink() is for the
//   master's clean exit. Errors are returned as text; the caller logs.
// - Accessor index preconditions (process(i), mailbox(i): i < process_count())
//   are programming errors and abort with a message.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "shm/handle.h"
#include "shm/layout.h"
#include "shm/mailbox.h"
#include "shm/slot_table.h"
#include "shm/tables.h"

namespace skirmish::shm {

class Segment {
 public:
  static std::optional<Segment> create(const std::string& name,
                                       const Sizes& sizes, std::string& error);
  static std::optional<Segment> open_existing(const std::string& name,
                                              std::string& error);
  // shm_unlink("/" + name) without a Segment (tools, tests). ENOENT is fine.
  static bool unlink_name(const std::string& name, std::string* error = nullptr);

  Segment(Segment&& other) noexcept;
  Segment& operator=(Segment&& other) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // Removes the name; the mapping stays valid until every process unmaps.
  bool unlink(std::string* error = nullptr) const;

  const std::string& name() const { return name_; }
  // Non-empty when create() replaced a stale segment: why it was stale.
  const std::string& stale_replaced() const { return stale_replaced_; }
  void* base() const { return base_; }
  std::uint64_t bytes() const { return layout_.total_bytes; }
  const Sizes& sizes() const { return sizes_; }
  const Layout& layout() const { return layout_; }

  Header& header() const;
  SegmentState state() const;
  void set_state(SegmentState state) const;
  bool corrupt() const;
  // A fresh player id (never 0; wraps after 2^32 - 1).
  std::uint32_t next_player_id() const;

  // Binary upgrade: the new master attaches with open_existing and, once
  // its workers are up, names itself in the header (pid and start time),
  // so the old master knows not to unlink on exit and a third server
  // start finds the right owner.
  void take_ownership() const;
  bool owned_by_this_process() const;

  std::uint32_t process_count() const { return shm::process_count(sizes_); }
  std::uint32_t worker_slots() const { return shm::worker_slots(sizes_); }
  std::uint32_t bank_base(std::uint32_t bank) const { return shm::bank_base(sizes_, bank); }
  bool is_worker(std::uint32_t index) const { return index < worker_slots(); }
  std::uint32_t coordinator_index() const { return shm::coordinator_index(sizes_); }
  std::uint32_t master_index() const { return shm::master_index(sizes_); }
  ProcessRow& process(std::uint32_t index) const;
  Mailbox mailbox(std::uint32_t index) const;
  // post() into process `to`'s mailbox, signalling its eventfd. An event
  // refused (ring full, lock unrecoverable) is counted in the sender's row
  // (its row's counters.mailbox_full): returns 0 when delivered, else that count,
  // so the caller can log one line per thousand refusals.
  std::uint64_t post(std::uint32_t from, std::uint32_t to, const Event& e) const;

  SlotTable<PlayerRow> players() const;
  SlotTable<TicketRow> tickets() const;
  SlotTable<MatchRow> matches() const;
  // The state ring of the match in `row` (a row of matches()):
  // kStateRing buffers of state_stride bytes, 64-byte aligned.
  std::uint8_t* match_ring(const MatchRow& row) const;
  std::uint64_t state_stride() const { return shm::state_stride(sizes_); }
  // The record ring of the match in `row`, nullptr when recording is off;
  // record_bytes() of ring follow the header.
  RecordRing* match_record(const MatchRow& row) const;
  std::uint32_t record_bytes() const { return sizes_.record_bytes; }

 private:
  Segment(std::string name, void* base, const Sizes& sizes,
          const Layout& layout);
  template <class T>
  T* at(std::uint64_t offset) const;
  template <class Row>
  SlotTable<Row> table(const TableLayout& t, const char* what) const;

  std::string name_;
  std::string stale_replaced_;
  void* base_ = nullptr;
  Sizes sizes_{};
  Layout layout_{};
};

// True when `pid` names a process that exists (kill(pid, 0) == 0 or EPERM).
bool pid_alive(pid_t pid);
// True when `pid` exists and is not dying: unlike pid_alive, a zombie (a
// child killed but not yet reaped by its parent), a process in exit and one
// with SIGKILL pending count as gone. Reads /proc/<pid>/stat and status:
// for rare paths, not hot ones.
bool process_running(pid_t pid);
// Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22),
// or 0 when unknown. Together with the pid it names one process for good.
std::uint64_t process_start_ticks(pid_t pid);
// Milliseconds since the Unix epoch (CLOCK_REALTIME).
std::int64_t unix_time_ms();

}  // namespace skirmish::shm
