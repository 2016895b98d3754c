// The master: acceptor and supervisor.
//
// Start-up, in this order, so every failure is reported before anything is
// forked: create the shared segment (refusing if another live server owns
// the name), the eventfds, bind the game and admin ports, then fork the
// coordinator and N workers (prefork).
//
// Accept path: the master accepts itself (accept4 in a batch on a uv_poll of
// the listen socket, so a refusal costs no allocation and no libuv handle)
// and checks, in order: descriptors (EMFILE/ENFILE: the reserve-fd trick,
// as libuv's and nginx's: close the spare, accept, refuse, reopen; with no
// spare, accepting pauses 100 ms), the global cap (max_connections, all
// workers' open counts plus handoffs in flight), the per-address cap
// (max_connections_per_ip, counted here: +1 per handoff, -1 per close each
// worker reports back on its IPC pipe by handoff number, and a dead
// worker's share dropped at once), and a worker with room (each publishes the connections its fd
// limit allows). A refusal is Error(ServerFull or TooManyConnections) and
// a close, counted by reason and logged once per thousand. Then pick the
// worker with the
// fewest connections (its open count in shared memory plus the handoffs
// still in flight to it; round robin among equals; down or draining
// workers skipped), send the socket over that worker's IPC pipe with
// uv_write2 (SCM_RIGHTS), close the master's copy once the write completes.
// The master never reads a client byte. Past max_connections it writes
// Error(ServerFull) itself and closes.
//
// Supervision: SIGCHLD reaps; a dead child is respawned with exponential
// back-off (a quick death doubles the delay, up to respawn_backoff_max_ms;
// a crash loop is logged loudly; exit code 2 = bad config = not respawned).
// A child whose heartbeat is older than heartbeat_timeout_ms is killed and
// so replaced. SIGTERM/SIGINT drain (Shutdown to every mailbox, wait up to
// drain_timeout_ms, kill stragglers, unlink the segment, exit 0); SIGHUP
// reloads the live keys and passes them to every child through its
// mailbox; a bad new config is logged and the old one kept.
//
// Binary upgrade (SIGUSR2, as nginx's): the master forks and executes its
// own executable path again (the file a new build was installed over) with
// the same arguments. The new master inherits, by fd number across exec,
// the listening game and admin sockets, every process's eventfd, and a
// pipe back to the old master ($SKIRMISH_UPGRADE names them). It attaches
// the live segment (same layout version and sizes, else it refuses and
// exits) and starts its workers in the other bank of worker slots (see
// shm/layout.h), accepting on the shared listen socket at once. When they
// are all Up it names itself the segment's owner and writes "R" on the
// pipe: the old master then stops accepting (closes its copies of the
// sockets: the kernel's accept queue stays with the new master, so no
// connection is refused), stops its coordinator (the new master starts its
// own once the old one is down) and tells its workers to hand over: each
// sends idle sessions on to resume at the new generation, keeps seated
// players until their MatchEnd, finishes the matches it ticks and exits.
// The old master exits once its children are gone, leaving the segment.
// If the new master fails (exits, or is not ready within
// upgrade_timeout_ms: it is killed), the old one keeps serving and marks
// the other bank Down.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "admin.h"
#include "codec.h"
#include "config/config.h"
#include "master/agones.h"
#include "shm/segment.h"

namespace skirmish::master {

struct MasterStats {
  uint64_t accepted = 0;
  uint64_t handed_off = 0;
  uint64_t handoff_failed = 0;
  uint64_t refused_full = 0;
  uint64_t refused_no_worker = 0;  // no live worker, or none with descriptors to spare
  uint64_t refused_per_address = 0;
  uint64_t refused_fd_limit = 0;   // the master itself out of descriptors (EMFILE/ENFILE)
  uint64_t accept_pauses = 0;
  uint64_t respawns = 0;
  uint64_t heartbeat_kills = 0;
  uint64_t mailbox_full = 0;
};

class Master {
 public:
  explicit Master(const config::Config& cfg);
  ~Master();
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Runs until drained. Returns the process exit code.
  int run();

 private:
  struct Child {
    pid_t pid = 0;
    uv_pipe_t* pipe = nullptr;  // master end of the IPC socketpair
    uint64_t handed = 0;        // sockets sent since this child started
    uint32_t quick_deaths = 0;  // consecutive deaths soon after start
    int64_t started_ms = 0;
    bool respawn_pending = false;
    bool fatal = false;  // exited 2: not respawned
    uv_timer_t* respawn_timer = nullptr;
    std::array<uint8_t, 8> carry{};  // a close report split across reads
    uint8_t carry_len = 0;
    // Per-address accounting: the nth socket sent to this worker is seq n
    // (the worker counts the same way); it reports closes by seq, so an
    // address is known here even for a peer gone before the worker looks.
    uint64_t next_seq = 0;
    std::unordered_map<uint64_t, uint64_t> open_by_seq;  // seq -> address key
  };
  struct Handoff;

  bool start(std::string& error);
  bool start_inherited(const std::string& env, std::string& error);
  bool start_common(std::string& error);
  void start_agones(uint16_t port);  // agones.h; port 0 = not under Agones
  bool spawn(uint32_t index);
  // Binary upgrade, old side.
  void begin_upgrade();
  void on_upgrade_message(ssize_t nread, const char* data);
  void upgrade_failed(const std::string& why);
  void hand_over();
  void close_upgrade_pipe();
  void start_drain_timer();
  // A child slot this master runs: its workers, and the coordinator once
  // started (an upgrade's new master starts it after the old one exits).
  bool own(uint32_t index) const {
    return own_worker(index) || (index == seg_->coordinator_index() && coordinator_started_);
  }
  // Binary upgrade, new side: polled until this master owns the segment
  // and runs the coordinator.
  void take_over_step();
  // A worker row of the other bank whose process is gone: mark it Down,
  // free its players for resume, tell the coordinator.
  void reap_foreign_rows();
  void mark_worker_down(uint32_t index, bool tell_coordinator);
  bool own_worker(uint32_t index) const { return index >= base_ && index < base_ + cfg_.workers; }
  void on_listen_readable();
  void admit(int fd, const sockaddr_storage& peer);
  void shed_without_descriptors();
  void refuse_fd(int fd, int code, const char* text, uint64_t& counter, const char* reason);
  bool start_listening(int fd);
  void stop_listening();
  void count_address(uint64_t key, int delta);
  void forget_addresses(uint32_t worker);
  void on_worker_report(uint32_t index, ssize_t nread, const char* data);
  int pick_worker();
  void reap();
  void on_child_exit(uint32_t index, int status);
  void schedule_respawn(uint32_t index);
  void check_heartbeats();
  void begin_drain(const char* why);
  void finish_if_drained();
  void reload();
  void post(uint32_t index, const shm::Event& e);
  bool is_worker(uint32_t index) const { return seg_->is_worker(index); }
  std::string role_name(uint32_t index) const;
  admin::Response admin_request(const std::string& target);

  config::Config cfg_;
  std::unique_ptr<shm::Segment> seg_;
  uv_loop_t* loop_ = nullptr;
  int listen_fd_ = -1;
  uv_poll_t listen_poll_;
  uv_timer_t accept_pause_timer_;
  int reserve_fd_ = -1;  // a spare descriptor for shedding at EMFILE
  bool listening_ = false;
  proto::FrameEncoder refuse_enc_{256};
  // Open connections per address key (core/address_key.h); each worker's
  // share is in its Child::open_by_seq.
  std::unordered_map<uint64_t, uint32_t> per_address_;
  char report_buf_[4096];
  std::unique_ptr<admin::AdminServer> admin_;
  uv_signal_t sigterm_, sigint_, sighup_, sigchld_, sigusr2_;
  uv_timer_t heartbeat_timer_, drain_timer_, upgrade_timer_, takeover_timer_;
  std::vector<int> event_fds_;
  std::vector<Child> children_;  // by process index; this master's bank and the coordinator
  uint32_t bank_ = 0;            // worker bank (0 or 1) of this generation
  uint32_t base_ = 0;            // its first worker slot
  uint32_t rr_ = 0;
  // Upgrade, old side.
  pid_t upgrade_pid_ = 0;              // the new master, until it took over or failed
  uv_pipe_t* upgrade_pipe_ = nullptr;  // its "ready" pipe
  bool handed_over_ = false;
  bool upgrade_failing_ = false;  // failed; waiting to reap the new master
  // Upgrade, new side.
  pid_t predecessor_ = 0;
  int ready_fd_ = -1;
  bool owner_ = true;             // this master owns the segment (header pid)
  bool coordinator_started_ = false;
  int64_t upgrade_started_ms_ = 0;
  int64_t start_ms_ = 0;
  pid_t pid_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
  int64_t drain_started_ms_ = 0;
  MasterStats stats_;
  std::unique_ptr<AgonesSdk> agones_;  // set only under Agones
};

}  // namespace skirmish::master
