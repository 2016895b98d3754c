// fuzz_frame_decoder: proto::FrameDecoder fed any byte stream, cut into
// chunks chosen by the input, with the caps a server session uses (the
// handshake cap, raised after the first frames as on_hello does).
//
// Input: [stream ...][chunk sizes, read backwards][p2][p1] (FuzzedDataProvider
// takes integers from the end, bytes from the front), so a raw stream of
// frames with a 3-byte trailer {0, p2, p1} is a seed that is fed whole.
//   p1  bits 0-1 handshake cap (256, 64, 1024, 4096); bits 2-3 full cap
//       (4096, 256, 65536, 1 MiB); bits 4-5 misalignment of every chunk
//       (0..3 bytes); bit 6 stop (on_frame returns false) at frame p2 >> 2
//   p2  bits 0-1: the cap is raised after that many frames (+1)
//   chunk size u8: 0 = the rest, 1..127 = that many bytes,
//       128..255 = (c - 127) * 64 bytes
//
// Checked against a reference that decodes the whole stream at once with
// verify_body: the decoder delivers exactly the same frames (bytes and
// types) and stops with the same error at the same place whatever the
// chunking; no frame above the cap in force; every body 4-byte aligned and
// verifiable; buffered() equals the bytes of the unfinished frame and stays
// within header + cap; after an error every feed returns it at once and
// delivers nothing.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "protocol/codec.h"

#define FUZZ_CHECK(cond)                                                                            \
  do {                                                                                              \
    if (!(cond)) {                                                                                  \
      std::fprintf(stderr, "fuzz_frame_decoder: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                                 \
    }                                                                                               \
  } while (0)

namespace {

using namespace skirmish::proto;

struct Delivered {
  Message type;
  size_t offset;  // of the body in the whole stream (SIZE_MAX: not known)
  std::vector<uint8_t> body;
};

struct Params {
  uint32_t cap_handshake;
  uint32_t cap_full;
  size_t raise_after;  // frames delivered before the full cap applies
  size_t stop_at;      // on_frame returns false on this frame (1-based); 0 never
  size_t misalign;
};

// The reference: the same rules over the whole stream, no chunking.
// Returns the error (None when the stream ends in an unfinished frame or
// the stop frame), the frames, and the bytes of the unfinished frame.
DecodeError reference(const std::vector<uint8_t>& s, const Params& p, std::vector<Delivered>& out,
                      size_t& unfinished) {
  DecodeLimits limits;
  size_t pos = 0;
  std::vector<uint32_t> aligned;
  unfinished = 0;
  while (pos < s.size()) {
    if (s.size() - pos < kFrameHeaderBytes) {
      unfinished = s.size() - pos;
      return DecodeError::None;
    }
    limits.max_frame_bytes = out.size() >= p.raise_after ? p.cap_full : p.cap_handshake;
    const uint32_t n = load_le32(&s[pos]);
    if (n == 0) return DecodeError::ZeroLength;
    if (n > limits.max_frame_bytes) return DecodeError::TooLarge;
    if (s.size() - pos - kFrameHeaderBytes < n) {
      unfinished = s.size() - pos;
      return DecodeError::None;
    }
    aligned.assign((n + 3) / 4, 0);
    std::memcpy(aligned.data(), &s[pos + kFrameHeaderBytes], n);
    const Envelope* env = nullptr;
    const DecodeError e = verify_body(reinterpret_cast<const uint8_t*>(aligned.data()), n, limits, &env);
    if (e != DecodeError::None) return e;
    out.push_back({env->msg_type(), pos + kFrameHeaderBytes, {}});
    pos += kFrameHeaderBytes + n;
    if (out.size() == p.stop_at) return DecodeError::None;
  }
  return DecodeError::None;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint8_t p1 = in.ConsumeIntegral<uint8_t>();
  const uint8_t p2 = in.ConsumeIntegral<uint8_t>();
  Params p;
  p.cap_handshake = std::array<uint32_t, 4>{256, 64, 1024, 4096}[p1 & 3];
  p.cap_full = std::array<uint32_t, 4>{4096, 256, 65536, 1u << 20}[(p1 >> 2) & 3];
  p.misalign = (p1 >> 4) & 3;
  p.stop_at = (p1 & 64) ? (p2 >> 2) : 0;
  p.raise_after = 1 + (p2 & 3);

  FrameDecoder dec(DecodeLimits{.max_frame_bytes = p.cap_handshake});
  std::vector<uint8_t> stream;  // everything fed, for the reference
  std::vector<Delivered> got;
  std::vector<uint32_t> chunk_store;
  DecodeError err = DecodeError::None;
  bool stopped = false;

  while (in.remaining_bytes() > 0 && !stopped) {
    const uint8_t c = in.ConsumeIntegral<uint8_t>();
    size_t want = c == 0 ? in.remaining_bytes() : c < 128 ? c : size_t(c - 127) * 64;
    const std::vector<uint8_t> chunk = in.ConsumeBytes<uint8_t>(want);
    // Place the chunk at the chosen misalignment from a 4-aligned base, as a
    // read into a buffer at an odd offset would.
    chunk_store.assign((chunk.size() + p.misalign + 3) / 4 + 1, 0);
    uint8_t* at = reinterpret_cast<uint8_t*>(chunk_store.data()) + p.misalign;
    if (!chunk.empty()) std::memcpy(at, chunk.data(), chunk.size());
    const size_t base = stream.size();
    stream.insert(stream.end(), chunk.begin(), chunk.end());

    const DecodeError e = dec.feed(at, chunk.size(), [&](const Frame& f) {
      FUZZ_CHECK(err == DecodeError::None);
      // The cap in force when its header was read.
      const uint32_t cap = got.size() >= p.raise_after ? p.cap_full : p.cap_handshake;
      FUZZ_CHECK(f.body.size() >= 8 && f.body.size() <= cap);
      FUZZ_CHECK((reinterpret_cast<uintptr_t>(f.body.data()) & 3) == 0);
      FUZZ_CHECK(f.envelope == GetEnvelope(f.body.data()));
      FUZZ_CHECK(f.type == f.envelope->msg_type() && f.type != Message::NONE);
      FUZZ_CHECK(uint8_t(f.type) <= uint8_t(Message::MAX));
      const Envelope* again = nullptr;
      FUZZ_CHECK(verify_body(f.body.data(), f.body.size(), dec.limits(), &again) == DecodeError::None);
      // Where the body lies in the stream: in this chunk (in place) or copied.
      size_t offset = SIZE_MAX;
      if (f.body.data() >= at && f.body.data() + f.body.size() <= at + chunk.size())
        offset = base + size_t(f.body.data() - at);
      got.push_back({f.type, offset, {f.body.begin(), f.body.end()}});
      if (got.size() == p.raise_after) dec.set_max_frame_bytes(p.cap_full);  // as on_hello
      if (got.size() == p.stop_at) {
        stopped = true;
        return false;
      }
      return true;
    });
    if (e != DecodeError::None) {
      FUZZ_CHECK(err == DecodeError::None || err == e);
      err = e;
      FUZZ_CHECK(dec.error() == e);
      // Dead from now on: the same error at once, nothing delivered.
      const size_t before = got.size();
      const uint8_t more[8] = {8, 0, 0, 0, 1, 2, 3, 4};
      FUZZ_CHECK(dec.feed(more, sizeof more, [&](const Frame&) { return true; }) == e);
      FUZZ_CHECK(got.size() == before);
      break;
    }
    FUZZ_CHECK(dec.error() == DecodeError::None);
    FUZZ_CHECK(dec.buffered() <= kFrameHeaderBytes + std::max(p.cap_handshake, p.cap_full));
  }
  // A copied frame that then fails to verify is counted but not delivered.
  FUZZ_CHECK(dec.copied_frames() <= got.size() + (err != DecodeError::None));

  // The same stream decoded at once must give the same frames and ending.
  // A stop drops the rest of its chunk, so the reference sees the stream
  // only up to there (it stops at the same frame).
  std::vector<Delivered> want;
  size_t unfinished = 0;
  const DecodeError ref = reference(stream, p, want, unfinished);
  if (ref != err) std::fprintf(stderr, "decoder: %s, reference: %s\n", to_string(err), to_string(ref));
  FUZZ_CHECK(ref == err);
  FUZZ_CHECK(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    FUZZ_CHECK(got[i].type == want[i].type);
    FUZZ_CHECK(got[i].offset == SIZE_MAX || got[i].offset == want[i].offset);
    const size_t at = want[i].offset;
    FUZZ_CHECK(at + got[i].body.size() <= stream.size());
    FUZZ_CHECK(at >= kFrameHeaderBytes && load_le32(&stream[at - kFrameHeaderBytes]) == got[i].body.size());
    FUZZ_CHECK(std::equal(got[i].body.begin(), got[i].body.end(), stream.begin() + ptrdiff_t(at)));
  }
  if (err == DecodeError::None && !stopped) FUZZ_CHECK(dec.buffered() == unfinished);
  return 0;
}
