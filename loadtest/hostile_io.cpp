// hostile_io.cpp: skirmish-hostile's reads, writes, closes and verdicts
// (hostile_attacker.h).
//
// Writes (and the flood's back-to-back batches), reads through a frame
// decoder, each server frame checked against the connection's expectation,
// the server's close judged against it, our own close, and the one verdict
// every connection ends with (an unexpected one keeps its reason, up to
// kMaxSamples).
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "loadtest/hostile_attacker.h"

namespace skirmish::hostile::attacker {

using namespace skirmish::proto;

// ---- I/O ----

void Hostile::write(Conn* c, std::vector<uint8_t> bytes) {
  if (c->closing || bytes.empty()) return;
  auto* w = new WriteReq{{}, c, std::move(bytes)};
  w->req.data = w;
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->data.data()), unsigned(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, write_cb) != 0) {
    delete w;
    write_failed(c);
  }
}

void Hostile::write_cb(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Conn* c = w->c;
  delete w;
  if (status == UV_ECANCELED || c->closing) return;  // our close; the Conn lives until its close callback
  if (status < 0) return c->h->write_failed(c);
  if (c->flooding) c->h->flood_write(c);
}

// The peer is gone. For a reading connection the read side says so (with
// the frames that came before); a noread one only learns it here.
void Hostile::write_failed(Conn* c) {
  c->flooding = false;
  if (c->attack != Attack::NoRead || c->step < 2) return;
  ++k(c).server_closes;
  note_close_time(c);
  verdict(c, Verdict::Expected);
  close(c);
}

void Hostile::flood_write(Conn* c) {
  if (!c->flooding || c->closing || now_ns() >= c->next_ns || c->flood_bytes >= kFloodMaxBytes) {
    c->flooding = false;
    return;
  }
  c->flood_bytes += flood_batch_.size();
  write(c, flood_batch_);
}

void Hostile::alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) {
  // One thread, and on_read consumes the buffer before the next read.
  alignas(8) static char read_buf[64 * 1024];
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

void Hostile::read_cb(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(st->data);
  if (n > 0) c->h->on_bytes(c, reinterpret_cast<const uint8_t*>(buf->base), size_t(n));
  else if (n < 0) c->h->on_peer_closed(c);
}

void Hostile::on_bytes(Conn* c, const uint8_t* p, size_t n) {
  if (c->closing) return;
  DecodeError e = c->dec.feed(p, n, [&](const Frame& f) {
    on_frame(c, f);
    return !c->closing;
  });
  if (e != DecodeError::None && !c->closing)
    unexpected(c, std::string("the server sent an undecodable frame: ") + to_string(e));
}

void Hostile::on_frame(Conn* c, const Frame& f) {
  switch (f.type) {
    case Message::Error: {
      const auto* m = f.envelope->msg_as_Error();
      const size_t code = size_t(m->code());
      if (code < kErrorCodes) ++k(c).errors[code];
      if (c->done) return;
      // The master refuses at accept, before the connection says anything.
      const bool cap = m->code() == ErrorCode::TooManyConnections || m->code() == ErrorCode::ServerFull;
      if (cap && c->step <= 1 && !c->want.got) {
        // Refused by address while we hold far fewer than the cap from
        // it: the server's per-address count has leaked.
        const uint64_t held = held_[c->source];
        if (m->code() == ErrorCode::TooManyConnections && held < o_.per_address_cap / 4)
          return unexpected(c, "Error(TooManyConnections) while this tool held " + std::to_string(held) +
                                   " connection(s) from " + ip_text(o_.sources[c->source]) + " (cap " +
                                   std::to_string(o_.per_address_cap) + ")");
        verdict(c, Verdict::Capped);
        return close(c);
      }
      Expect& w = c->want;
      const std::string got = error_name(m->code(), m->fatal());
      if (!w.armed || w.got) return unexpected(c, got + " unasked");
      // Two QueueJoins back to back: the coordinator (another process)
      // may match the first ticket before the second is read, and then
      // the answer is "already in a match", as PROTOCOL.md allows.
      const bool matched_meanwhile = c->attack == Attack::WrongState && c->variant == 1 &&
                                     m->code() == ErrorCode::UnexpectedMessage && !m->fatal();
      if (matched_meanwhile) {
        verdict(c, Verdict::Expected);
        return close(c);
      }
      if (m->code() != w.code || m->fatal() != w.fatal)
        return unexpected(c, got + " where PROTOCOL.md says " + error_name(w.code, w.fatal));
      const uint64_t now = now_ns();
      if (now < w.not_before_ns)
        return unexpected(c, got + " " + std::to_string((w.not_before_ns + kEarlySlackMs * kMs - now) / kMs) +
                                 " ms before the handshake deadline");
      w.got = true;
      w.got_ns = now;
      return;
    }
    case Message::Welcome:
      if (!c->done) on_welcome(c);
      return;
    case Message::QueueStatus:
      if (c->attack == Attack::WrongState && c->variant == 1 && c->step == 2) c->step = 3;
      return;
    case Message::MatchFound:
      if (c->attack == Attack::BadInput && !c->done) on_match_found(c, *f.envelope->msg_as_MatchFound());
      return;  // else: the double QueueJoin may be matched before we close
    case Message::Pong:
    case Message::Snapshot:
    case Message::MatchEnd: return;
    default:
      if (!c->done) unexpected(c, std::string("unexpected ") + EnumNameMessage(f.type));
  }
}

void Hostile::on_peer_closed(Conn* c) {
  if (c->closing) return;
  ++k(c).server_closes;
  note_close_time(c);
  if (!c->done) {
    const Expect& w = c->want;
    if (w.armed && w.got && w.fatal) {
      if (now_ns() <= w.close_by_ns(o_.grace_ms * kMs)) verdict(c, Verdict::Expected);
      else unexpected(c, "closed late after the fatal " + error_name(w.code, true));
    } else if (w.armed && w.got) {
      unexpected(c, "closed by the server after the non-fatal " + error_name(w.code, false));
    } else if (w.armed) {
      unexpected(c, "closed by the server without " + error_name(w.code, w.fatal));
    } else {
      unexpected(c, "closed by the server unasked");
    }
  }
  close(c);
}

void Hostile::note_close_time(Conn* c) {
  Counters& x = k(c);
  const uint64_t ms = (now_ns() - c->started_ns) / kMs;
  x.close_ms_min = std::min(x.close_ms_min, ms);
  x.close_ms_max = std::max(x.close_ms_max, ms);
}

void Hostile::close(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  c->flooding = false;
  if (c->inited) uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed_cb);
  else forget(c);
}

void Hostile::on_closed_cb(uv_handle_t* hd) {
  auto* c = static_cast<Conn*>(hd->data);
  c->h->forget(c);
}

void Hostile::forget(Conn* c) {
  --open_[size_t(c->attack)];
  --held_[c->source];
  unlink(c);
  delete c;
}

void Hostile::fail_connect(Conn* c, const std::string& why) {
  if (c->done) return close(c);
  c->done = true;
  ++k(c).connect_failed;
  paused_until_[size_t(c->attack)] = now_ns() + kRefusedPauseMs * kMs;
  if (r_.first_connect_error.empty()) r_.first_connect_error = why;
  close(c);
}

// ---- verdicts ----

void Hostile::verdict(Conn* c, Verdict v) {
  if (c->done) return;
  c->done = true;
  Counters& x = k(c);
  switch (v) {
    case Verdict::Expected:
      ++x.expected;
      if (c->attack == Attack::WrongState || c->attack == Attack::BadInput) ++x.variant_expected[c->variant];
      break;
    case Verdict::Unexpected: ++x.unexpected; break;
    case Verdict::Capped:
      ++x.capped;
      paused_until_[size_t(c->attack)] = now_ns() + kRefusedPauseMs * kMs;  // no reconnect storm
      break;
    case Verdict::Unfinished: ++x.unfinished; break;
    case Verdict::StillOpen: ++x.still_open; break;
  }
}

void Hostile::unexpected(Conn* c, const std::string& why) {
  if (c->done) return close(c);
  verdict(c, Verdict::Unexpected);
  if (r_.samples.size() < kMaxSamples) {
    std::string r = why;
    if (c->attack == Attack::WrongState) r = std::string(kWrongStateNames[c->variant]) + ": " + r;
    if (c->attack == Attack::BadInput) r = std::string(kBadInputNames[c->variant]) + ": " + r;
    r_.samples.push_back({double(now_ns() - start_ns_) / 1e9, c->attack, r});
  }
  close(c);
}

}  // namespace skirmish::hostile::attacker
