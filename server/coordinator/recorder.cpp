#include "coordinator/recorder.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/process.h"
#include "shm/atomic_field.h"

namespace skirmish::coordinator {

namespace {

// A ring is drained at least this often while its match runs.
constexpr std::int64_t kDrainEveryMs = 1000;
// Room kept under record_max_bytes for the records that close a file:
// CAPPED, LOST and an END of 16 seats.
constexpr std::uint64_t kCloseReserve = 8 + 8 + record::kRecordHead + 12 + 8 * shm::kMaxMatchPlayers;

bool write_all(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t at) {
  while (n > 0) {
    const ssize_t w = pwrite(fd, p, n, off_t(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= std::size_t(w);
    at += std::uint64_t(w);
  }
  return true;
}

}  // namespace

Recorder::Recorder(const config::Config& cfg, shm::Segment* seg, const module::Game* game, shm::Counters* stats)
    : cfg_(cfg), seg_(seg), game_(game), stats_(stats) {}

void Recorder::start_locked(shm::MatchRow& row) {
  if (!on()) return;
  const match::Ring ring = match::ring_of(*seg_, row, game_->table());
  record::start_locked(ring.rec, cfg_.record_hash_every, shm::unix_time_ms(), ring.buffer(0),
                       game_->table()->state_bytes);
}

std::string Recorder::path_of(const shm::RecordRing& h, std::uint32_t wire) const {
  char name[96];
  std::snprintf(name, sizeof name, "/%lld-%s-m%08x.skr", static_cast<long long>(h.created_unix_ms),
                game_->table()->name, wire);
  return cfg_.record_dir + name;
}

void Recorder::failed(const std::string& what, std::uint32_t wire) {
  ++stats_->records_failed;
  if (const std::int64_t t = core::monotonic_ms(); t - failed_logged_ms_ >= 10000) {
    failed_logged_ms_ = t;
    spdlog::error("match {:#x}: cannot write its record ({}); the rest of it is not recorded ({} so far)", wire, what,
                  stats_->records_failed);
  }
}

void Recorder::pass(std::int64_t now_ms) {
  if (!on()) return;
  auto matches = seg_->matches();
  const std::uint64_t half = seg_->record_bytes() / 2;
  matches.for_each_used([&](shm::Handle h, shm::MatchRow& row) {
    const shm::RecordRing* rec = seg_->match_record(row);
    const shm::MatchState st = shm::shared_load(row.state);
    if (st == shm::MatchState::Forming || shm::shared_load(rec->state) == shm::RecordState::Off) return;
    const shm::RecordFile file = shm::shared_load(rec->file);
    if (file == shm::RecordFile::Done || (file == shm::RecordFile::Failed && st == shm::MatchState::Ended)) return;
    const std::uint64_t pending = shm::shared_load(rec->write_pos) - shm::shared_load(rec->read_pos);
    if (st == shm::MatchState::Ended || pending >= half ||
        (pending > 0 && now_ms - shm::shared_load(rec->drained_at_ms) >= kDrainEveryMs))
      drain(row, shm::to_wire(h), now_ms);
  });
}

void Recorder::finish(shm::MatchRow& row, std::uint32_t wire, std::int64_t now_ms) {
  if (!on()) return;
  const shm::RecordRing* rec = seg_->match_record(row);
  if (shm::shared_load(rec->state) == shm::RecordState::Off || shm::shared_load(rec->file) == shm::RecordFile::Done)
    return;
  drain(row, wire, now_ms);
}

void Recorder::drain(shm::MatchRow& row, std::uint32_t wire, std::int64_t now_ms) {
  auto matches = seg_->matches();
  const match::Ring ring = match::ring_of(*seg_, row, game_->table());
  shm::RecordRing& h = *ring.rec.head;
  buf_.clear();
  bool ended = false, lost = false, cut = false;
  std::uint32_t lost_tick = 0, final_tick = 0, reason = 0, detail = 0, seats = 0, seed = 0;
  shm::SeatResult results[shm::kMaxMatchPlayers];
  std::uint64_t end_pos = 0;
  shm::RecordFile file = h.file;  // only this process writes it
  const bool fresh = file == shm::RecordFile::None;
  {
    auto g = shm::lock_match(row);
    if (matches.get_wire(wire) != &row || h.state == shm::RecordState::Off) return;
    seats = std::min(row.seat_count, shm::kMaxMatchPlayers);
    seed = row.seed;
    const std::uint64_t w = shm::shared_load(h.write_pos);
    if (file == shm::RecordFile::Capped || file == shm::RecordFile::Failed) {
      end_pos = w;  // not written: only making room
    } else {
      // The header's room on a fresh file: its params are a few hundred bytes.
      const std::uint64_t used = h.file_bytes + kCloseReserve + (fresh ? 4096 : 0);
      end_pos = record::copy_locked(ring.rec, cfg_.record_max_bytes > used ? cfg_.record_max_bytes - used : 0, buf_);
      cut = end_pos != w;
    }
    ended = row.state == shm::MatchState::Ended && (end_pos == w || cut);
    if (cut) end_pos = w;  // past the cap: the rest is not kept
    lost = h.state == shm::RecordState::Lost;
    lost_tick = h.lost_tick;
    if (ended) {
      final_tick = std::uint32_t(row.tick);
      reason = row.end_reason;
      detail = row.end_detail;
      std::memcpy(results, row.results, sizeof results);
    }
  }
  const std::uint32_t last = record::last_tick(buf_.data(), buf_.size(), h.last_tick);
  if (cut) {
    record::put_capped(buf_, last);
    file = shm::RecordFile::Capped;
    ++stats_->records_capped;
  }
  if (ended && file != shm::RecordFile::Failed) {
    if (lost) record::put_lost(buf_, lost_tick);
    record::put_end(buf_, final_tick, reason, detail, results, seats);
  }
  std::uint64_t file_bytes = h.file_bytes;
  const std::string path = path_of(h, wire);
  const std::string part = path + ".part";
  if (file != shm::RecordFile::Failed && (!buf_.empty() || fresh)) {
    std::vector<std::uint8_t> header;
    const int fd = open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    // A predecessor killed mid-write may have left bytes past file_bytes.
    if (ok && (fresh || h.writer_pid != getpid())) ok = ftruncate(fd, off_t(fresh ? 0 : file_bytes)) == 0;
    if (ok && fresh) {
      record::FileHeader fh;
      fh.game_name = game_->table()->name;
      fh.game_version = game_->table()->version;
      fh.module = game_->module.path;
      fh.state_bytes = game_->table()->state_bytes;
      fh.players = seats;
      fh.seed = seed;
      fh.tick_rate_hz = cfg_.tick_rate_hz;
      fh.hash_every = h.hash_every;
      fh.match = wire;
      fh.created_unix_ms = h.created_unix_ms;
      fh.params = game_->params.items();
      header = record::encode_header(fh);
      ok = write_all(fd, header.data(), header.size(), 0);
      file_bytes = header.size();
    }
    if (ok) ok = write_all(fd, buf_.data(), buf_.size(), file_bytes);
    const int err = errno;
    if (fd >= 0 && close(fd) != 0 && ok) ok = false;
    if (!ok) {
      failed(part + ": " + std::strerror(err), wire);
      file = shm::RecordFile::Failed;
    } else {
      file_bytes += buf_.size();
      stats_->record_bytes_written += buf_.size() + header.size();
      if (file == shm::RecordFile::None) file = shm::RecordFile::Writing;
    }
  }
  // The file holds it now: the ring may be written over.
  shm::shared_store(h.file_bytes, file_bytes);
  h.writer_pid = getpid();
  h.last_tick = last;
  shm::shared_store(h.file, file);
  shm::shared_store(h.drained_at_ms, now_ms);
  shm::shared_store(h.read_pos, end_pos);
  if (!ended || file == shm::RecordFile::Failed) return;
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    failed("rename " + part + ": " + std::strerror(errno), wire);
    shm::shared_store(h.file, shm::RecordFile::Failed);
    return;
  }
  if (file == shm::RecordFile::Capped) {
    // counted when it was cut
  } else if (lost) {
    ++stats_->records_incomplete;
  } else {
    ++stats_->records_finished;
  }
  shm::shared_store(h.file, shm::RecordFile::Done);
}

}  // namespace skirmish::coordinator
