#include "shm/segment.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <utility>

#include "shm/atomic_field.h"

namespace skirmish::shm {
namespace {

std::string errno_text(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

std::string validate_name(const std::string& name) {
  if (name.empty()) return "shared memory name is empty";
  if (name.size() > 200) return "shared memory name is longer than 200 bytes";
  if (name.find('/') != std::string::npos) {
    return "shared memory name '" + name + "' contains '/'";
  }
  return {};
}

[[noreturn]] void die(const char* what, std::uint32_t index,
                      std::uint32_t count) {
  std::fprintf(stderr, "skirmish shm: %s index %u out of range (%u)\n", what,
               index, count);
  std::abort();
}

enum class Verdict { Missing, InUse, Stale, Error };

struct Inspection {
  Verdict verdict;
  std::string text;  // InUse/Error: the error; Stale: why
};

// Decides what to do with an existing segment at `path`.
Inspection inspect_existing(const std::string& path) {
  int fd = shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == ENOENT) return {Verdict::Missing, {}};
    return {Verdict::Error,
            errno_text("shm_open(" + path + ") of the existing segment", errno)};
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return {Verdict::Error, errno_text("fstat(" + path + ")", err)};
  }
  if (static_cast<std::uint64_t>(st.st_size) < sizeof(Header)) {
    close(fd);
    return {Verdict::Stale, "too small (" + std::to_string(st.st_size) +
                                " bytes) to be a Skirmish segment"};
  }
  void* p = mmap(nullptr, sizeof(Header), PROT_READ, MAP_SHARED, fd, 0);
  int map_err = errno;
  close(fd);
  if (p == MAP_FAILED) {
    return {Verdict::Error, errno_text("mmap(" + path + ") header", map_err)};
  }
  // Only the stable prefix is read, so any layout version is understood.
  std::uint64_t magic = 0;
  std::int32_t pid = 0;
  std::uint64_t start_ticks = 0;
  std::memcpy(&magic, static_cast<char*>(p) + offsetof(Header, magic),
              sizeof magic);
  std::memcpy(&pid, static_cast<char*>(p) + offsetof(Header, master_pid),
              sizeof pid);
  std::memcpy(&start_ticks,
              static_cast<char*>(p) + offsetof(Header, master_start_ticks),
              sizeof start_ticks);
  munmap(p, sizeof(Header));

  if (magic != kMagic) return {Verdict::Stale, "bad magic"};
  const std::string who = "master pid " + std::to_string(pid);
  if (pid <= 0) return {Verdict::Stale, "no master pid recorded"};
  if (pid == getpid()) return {Verdict::Stale, who + " is this process"};
  if (!pid_alive(pid)) return {Verdict::Stale, who + " is not running"};
  if (start_ticks != 0) {
    const std::uint64_t now = process_start_ticks(pid);
    if (now != 0 && now != start_ticks) {
      return {Verdict::Stale, who + " was reused by another process"};
    }
  }
  return {Verdict::InUse, "shared memory " + path +
                              " is in use by a running server (pid " +
                              std::to_string(pid) + ")"};
}

}  // namespace

bool pid_alive(pid_t pid) {
  if (pid <= 0) return false;
  return kill(pid, 0) == 0 || errno == EPERM;
}

namespace {

// Reads /proc/<pid>/<file> into buf; the length, or -1 (errno ENOENT: gone).
ssize_t read_proc(pid_t pid, const char* file, char* buf, size_t cap) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, cap - 1);
  const int err = errno;
  close(fd);
  if (n < 0) {
    errno = err == ESRCH ? ENOENT : err;
    return -1;
  }
  buf[n] = '\0';
  return n;
}

}  // namespace

bool process_running(pid_t pid) {
  if (pid <= 0) return false;
  // Dying counts as dead: a process killed a moment ago may not be a
  // zombie yet (still in exit, or not yet scheduled to act on SIGKILL),
  // while its sockets are already closing.
  char buf[2048];
  if (read_proc(pid, "stat", buf, sizeof buf) < 0) return errno != ENOENT;  // EACCES: something is there
  // "pid (comm) state ppid pgrp session tty tpgid flags ...": comm may hold
  // spaces and ')', so the fields are counted from its last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return true;
  if (p[2] == 'Z' || p[2] == 'X' || p[2] == 'x') return false;
  p += 4;  // ") S 123 ...": field 4 (ppid); the loop below walks to field 9
  for (int field = 4; field < 9 && p != nullptr; ++field) {
    p = std::strchr(p, ' ');
    if (p != nullptr) ++p;
  }
  constexpr unsigned long kPfExiting = 0x4;  // include/linux/sched.h
  if (p != nullptr && (std::strtoul(p, nullptr, 10) & kPfExiting) != 0) return false;
  if (read_proc(pid, "status", buf, sizeof buf) < 0) return errno != ENOENT;
  constexpr unsigned long long kSigKillBit = 1ull << (SIGKILL - 1);
  for (const char* key : {"\nSigPnd:", "\nShdPnd:"}) {
    const char* q = std::strstr(buf, key);
    if (q != nullptr && (std::strtoull(q + std::strlen(key), nullptr, 16) & kSigKillBit) != 0) return false;
  }
  return true;
}

std::uint64_t process_start_ticks(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // "pid (comm) state f4 ... f22": comm may hold spaces and ')', so the
  // fields are counted from its last ')'.
  char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 0;
  ++p;
  for (int field = 2; field < 22; ++field) {
    while (*p == ' ') ++p;
    if (field == 21) break;  // p now at field 22
    while (*p != ' ' && *p != '\0') ++p;
    if (*p == '\0') return 0;
  }
  char* end = nullptr;
  unsigned long long v = std::strtoull(p, &end, 10);
  if (end == p) return 0;
  return static_cast<std::uint64_t>(v);
}

std::int64_t unix_time_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Segment::Segment(std::string name, void* base, const Sizes& sizes,
                 const Layout& layout)
    : name_(std::move(name)), base_(base), sizes_(sizes), layout_(layout) {}

Segment::Segment(Segment&& other) noexcept
    : name_(std::move(other.name_)),
      stale_replaced_(std::move(other.stale_replaced_)),
      base_(std::exchange(other.base_, nullptr)),
      sizes_(other.sizes_),
      layout_(other.layout_) {}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, layout_.total_bytes);
    name_ = std::move(other.name_);
    stale_replaced_ = std::move(other.stale_replaced_);
    base_ = std::exchange(other.base_, nullptr);
    sizes_ = other.sizes_;
    layout_ = other.layout_;
  }
  return *this;
}

Segment::~Segment() {
  if (base_ != nullptr) munmap(base_, layout_.total_bytes);
}

std::optional<Segment> Segment::create(const std::string& name,
                                       const Sizes& sizes, std::string& error) {
  error.clear();
  if (std::string e = validate_name(name); !e.empty()) {
    error = e;
    return std::nullopt;
  }
  const std::string path = "/" + name;
  if (std::string e = validate_sizes(sizes); !e.empty()) {
    error = "shared memory " + path + ": " + e;
    return std::nullopt;
  }
  const Layout layout = compute_layout(sizes);
  std::string stale;

  int fd = -1;
  for (int attempt = 0; attempt < 5 && fd < 0; ++attempt) {
    fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) break;
    if (errno != EEXIST) {
      error = errno_text("shm_open(" + path + ")", errno);
      return std::nullopt;
    }
    Inspection seen = inspect_existing(path);
    switch (seen.verdict) {
      case Verdict::InUse:
      case Verdict::Error:
        error = seen.text;
        return std::nullopt;
      case Verdict::Missing:
        break;  // unlinked meanwhile: try again
      case Verdict::Stale:
        if (shm_unlink(path.c_str()) != 0 && errno != ENOENT) {
          error = errno_text("shm_unlink(" + path + ") of a stale segment",
                             errno);
          return std::nullopt;
        }
        stale = seen.text;
        break;
    }
  }
  if (fd < 0) {
    error = "shm_open(" + path + "): kept racing with another process";
    return std::nullopt;
  }

  auto fail = [&](std::string text, void* base) -> std::optional<Segment> {
    if (base != nullptr) munmap(base, layout.total_bytes);
    if (fd >= 0) close(fd);
    shm_unlink(path.c_str());
    error = std::move(text);
    return std::nullopt;
  };
  if (ftruncate(fd, static_cast<off_t>(layout.total_bytes)) != 0) {
    return fail(errno_text("ftruncate(" + path + ", " +
                               std::to_string(layout.total_bytes) + ")",
                           errno),
                nullptr);
  }
  if (int rc = posix_fallocate(fd, 0, static_cast<off_t>(layout.total_bytes));
      rc != 0) {
    return fail(errno_text("posix_fallocate(" + path + ", " +
                               std::to_string(layout.total_bytes) +
                               " bytes; is /dev/shm big enough?)",
                           rc),
                nullptr);
  }
  void* base = mmap(nullptr, layout.total_bytes, PROT_READ | PROT_WRITE,
                    MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    return fail(errno_text("mmap(" + path + ")", errno), nullptr);
  }
  close(fd);
  fd = -1;

  Segment seg(name, base, sizes, layout);
  seg.stale_replaced_ = stale;

  // The memory is fresh (zero-filled); start object lifetimes and fill in
  // what is not zero. Identity first, so an inspector sees who owns it.
  Header* h = new (base) Header;
  h->magic = kMagic;
  h->layout_version = kLayoutVersion;
  h->header_bytes = sizeof(Header);
  h->master_pid = static_cast<std::int32_t>(getpid());
  h->master_start_ticks = process_start_ticks(getpid());
  shared_store(h->state, SegmentState::Initializing);
  h->total_bytes = layout.total_bytes;
  h->start_time_unix_ms = unix_time_ms();
  h->next_player_id = 1;
  h->corrupt = 0;
  h->sizes = sizes;
  h->layout = layout;

  const std::uint32_t procs = shm::process_count(sizes);
  for (std::uint32_t i = 0; i < procs; ++i) {
    ProcessRow* row = new (seg.at<ProcessRow>(layout.processes.offset) + i)
        ProcessRow{};
    row->role = i < shm::worker_slots(sizes) ? ProcessRole::Worker
                : i == shm::coordinator_index(sizes) ? ProcessRole::Coordinator
                                                : ProcessRole::Master;
    row->index = i;
    row->state = ProcessState::Down;
    row->event_fd = -1;
    auto* ctl = new (seg.at<MailboxControl>(layout.mailbox_controls.offset) +
                     i) MailboxControl;
    if (int rc = Mailbox::format(*ctl, sizes.mailbox_depth); rc != 0) {
      return fail(errno_text("init mailbox mutex", rc), nullptr);
    }
  }

  auto format_table = [&](const TableLayout& t, auto* rows_tag,
                          std::uint32_t capacity) -> int {
    using Row = std::remove_pointer_t<decltype(rows_tag)>;
    auto* ctl = new (seg.at<SlotTableControl>(t.control.offset))
        SlotTableControl;
    Row* rows = seg.at<Row>(t.rows.offset);
    for (std::uint32_t i = 0; i < capacity; ++i) new (rows + i) Row;
    return SlotTable<Row>::format(*ctl, seg.at<std::uint32_t>(t.free_ring.offset),
                                  rows, capacity);
  };
  if (int rc = format_table(layout.players, static_cast<PlayerRow*>(nullptr),
                            sizes.max_players);
      rc != 0) {
    return fail(errno_text("init players table mutex", rc), nullptr);
  }
  if (int rc = format_table(layout.tickets, static_cast<TicketRow*>(nullptr),
                            sizes.max_tickets);
      rc != 0) {
    return fail(errno_text("init tickets table mutex", rc), nullptr);
  }
  if (int rc = format_table(layout.matches, static_cast<MatchRow*>(nullptr),
                            sizes.max_matches);
      rc != 0) {
    return fail(errno_text("init matches table mutex", rc), nullptr);
  }
  MatchRow* matches = seg.at<MatchRow>(layout.matches.rows.offset);
  for (std::uint32_t i = 0; i < sizes.max_matches; ++i) {
    if (int rc = init_robust_mutex(matches[i].lock); rc != 0) {
      return fail(errno_text("init match mutex", rc), nullptr);
    }
  }

  shared_store(h->state, SegmentState::Ready);
  return std::optional<Segment>(std::move(seg));
}

std::optional<Segment> Segment::open_existing(const std::string& name,
                                              std::string& error) {
  error.clear();
  if (std::string e = validate_name(name); !e.empty()) {
    error = e;
    return std::nullopt;
  }
  const std::string path = "/" + name;
  int fd = shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("shm_open(" + path + ")", errno);
    return std::nullopt;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    error = errno_text("fstat(" + path + ")", errno);
    close(fd);
    return std::nullopt;
  }
  const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
  Header h{};
  if (file_bytes < sizeof(Header) ||
      pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
    error = "shared memory " + path + " is too small to be a Skirmish segment";
    close(fd);
    return std::nullopt;
  }
  auto reject = [&](const std::string& why) -> std::optional<Segment> {
    error = "shared memory " + path + ": " + why;
    close(fd);
    return std::nullopt;
  };
  if (h.magic != kMagic) return reject("bad magic");
  if (h.layout_version != kLayoutVersion || h.header_bytes != sizeof(Header)) {
    return reject("layout version " + std::to_string(h.layout_version) +
                  ", this build reads " + std::to_string(kLayoutVersion));
  }
  if (std::string e = validate_sizes(h.sizes); !e.empty()) return reject(e);
  const Layout layout = compute_layout(h.sizes);
  if (!(layout == h.layout) || h.total_bytes != layout.total_bytes) {
    return reject("header layout does not match its sizes");
  }
  if (file_bytes < layout.total_bytes) {
    return reject("file is " + std::to_string(file_bytes) + " bytes, expected " +
                  std::to_string(layout.total_bytes));
  }
  void* base = mmap(nullptr, layout.total_bytes, PROT_READ | PROT_WRITE,
                    MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return reject(errno_text("mmap", errno));
  close(fd);
  return std::optional<Segment>(Segment(name, base, h.sizes, layout));
}

void Segment::take_ownership() const {
  Header& h = header();
  shared_store(h.master_pid, static_cast<std::int32_t>(getpid()));
  shared_store(h.master_start_ticks, process_start_ticks(getpid()));
}

bool Segment::owned_by_this_process() const {
  return shared_load(header().master_pid) == static_cast<std::int32_t>(getpid());
}

bool Segment::unlink_name(const std::string& name, std::string* error) {
  const std::string path = "/" + name;
  if (shm_unlink(path.c_str()) == 0 || errno == ENOENT) return true;
  if (error != nullptr) *error = errno_text("shm_unlink(" + path + ")", errno);
  return false;
}

bool Segment::unlink(std::string* error) const {
  return unlink_name(name_, error);
}

template <class T>
T* Segment::at(std::uint64_t offset) const {
  return reinterpret_cast<T*>(static_cast<char*>(base_) + offset);
}

Header& Segment::header() const { return *at<Header>(0); }

SegmentState Segment::state() const { return shared_load(header().state); }

void Segment::set_state(SegmentState state) const {
  shared_store(header().state, state);
}

bool Segment::corrupt() const { return shared_load(header().corrupt) != 0; }

std::uint32_t Segment::next_player_id() const {
  for (;;) {
    std::uint32_t id = shared_add(header().next_player_id, std::uint32_t{1});
    if (id != 0) return id;
  }
}

ProcessRow& Segment::process(std::uint32_t index) const {
  if (index >= process_count()) die("process", index, process_count());
  return at<ProcessRow>(layout_.processes.offset)[index];
}

Mailbox Segment::mailbox(std::uint32_t index) const {
  if (index >= process_count()) die("mailbox", index, process_count());
  return Mailbox(at<MailboxControl>(layout_.mailbox_controls.offset) + index,
                 at<Event>(layout_.mailbox_rings.offset +
                           index * layout_.mailbox_ring_stride),
                 &header().corrupt);
}

std::uint64_t Segment::post(std::uint32_t from, std::uint32_t to, const Event& e) const {
  const PostResult r = shm::post(mailbox(to), shared_load(process(to).event_fd), e);
  if (r.push != PushResult::Full && r.push != PushResult::LockFailed) return 0;
  return shared_add(process(from).counters.mailbox_full, std::uint64_t{1}) + 1;
}

template <class Row>
SlotTable<Row> Segment::table(const TableLayout& t, const char* what) const {
  return SlotTable<Row>(at<SlotTableControl>(t.control.offset),
                        at<std::uint32_t>(t.free_ring.offset),
                        at<Row>(t.rows.offset), &header().corrupt, what);
}

SlotTable<PlayerRow> Segment::players() const {
  return table<PlayerRow>(layout_.players, "players table");
}
SlotTable<TicketRow> Segment::tickets() const {
  return table<TicketRow>(layout_.tickets, "tickets table");
}
SlotTable<MatchRow> Segment::matches() const {
  return table<MatchRow>(layout_.matches, "matches table");
}

std::uint8_t* Segment::match_ring(const MatchRow& row) const {
  const auto* rows = at<MatchRow>(layout_.matches.rows.offset);
  const std::uint64_t slot = std::uint64_t(&row - rows);
  return at<std::uint8_t>(layout_.match_states.offset + slot * kStateRing * state_stride());
}

RecordRing* Segment::match_record(const MatchRow& row) const {
  if (sizes_.record_bytes == 0) return nullptr;
  const auto* rows = at<MatchRow>(layout_.matches.rows.offset);
  const std::uint64_t slot = std::uint64_t(&row - rows);
  return at<RecordRing>(layout_.match_records.offset + slot * record_stride(sizes_));
}

}  // namespace skirmish::shm
