// The frame codec: bytes in, verified messages out; messages in, frames out.
//
// A frame is a little-endian u32 body length followed by one flatbuffer
// whose root is Envelope (file identifier "SKRM"). This module does no I/O,
// reads no clock and never allocates per message once warm:
//
//   FrameDecoder  takes bytes as they arrive, split anywhere. The length is
//                 checked against the limit before a single body byte is
//                 buffered. A body that lies whole and 4-byte aligned inside
//                 the caller's chunk is verified and handed out in place;
//                 only a body split across reads (or misaligned by a hostile
//                 sender) is copied into the decoder's own buffer, which
//                 never grows past the frame limit.
//   FrameEncoder  builds frames with one reused FlatBufferBuilder.
//
// Every body passes flatbuffers::Verifier with explicit depth and table
// limits before any field is read. After the first error the decoder is
// dead: the caller sends Error(code) and closes; nothing more is parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "protocol/skirmish_generated.h"

namespace skirmish::proto {

inline constexpr size_t kFrameHeaderBytes = 4;
inline constexpr char kFileIdentifier[] = "SKRM";
inline constexpr uint16_t kProtocolVersion = static_cast<uint16_t>(ProtocolVersion::Current);

enum class DecodeError : uint8_t {
  None = 0,
  ZeroLength,       // length header of 0
  TooLarge,         // length header above max_frame_bytes
  Unverifiable,     // the verifier refused the body (or its limits bit)
  WrongIdentifier,  // body shorter than a header or not "SKRM"
  UnknownType,      // union type NONE or newer than this build knows
};

const char* to_string(DecodeError e);
// The Error.code a server sends for a decode failure.
ErrorCode to_error_code(DecodeError e);

struct DecodeLimits {
  uint32_t max_frame_bytes = 4096;  // body bytes, header excluded
  uint32_t max_depth = 16;          // nesting of tables and vectors
  uint32_t max_tables = 512;        // tables visited per body
};

// A verified message. Valid only inside the callback that receives it: it
// may point into the caller's read buffer.
struct Frame {
  const Envelope* envelope;
  Message type;
  std::span<const uint8_t> body;
};

// Verify one complete body (no length header). Pure; used by the decoder and
// by tests and tools that hold whole bodies.
DecodeError verify_body(const uint8_t* body, size_t len, const DecodeLimits& limits,
                        const Envelope** out);

class FrameDecoder {
 public:
  explicit FrameDecoder(const DecodeLimits& limits = {}) : limits_(limits) {}

  // Raising or lowering the frame limit applies from the next header on
  // (the handshake limit is smaller than the one after it).
  void set_max_frame_bytes(uint32_t n) { limits_.max_frame_bytes = n; }
  const DecodeLimits& limits() const { return limits_; }

  // Feed bytes; call on_frame(const Frame&) for each verified message, in
  // order. on_frame returns false to stop (the session closed): the rest of
  // the chunk is dropped and feed returns None. Returns the first error;
  // after an error every later feed returns it again at once.
  template <class OnFrame>
  DecodeError feed(const uint8_t* data, size_t len, OnFrame&& on_frame);

  DecodeError error() const { return error_; }
  // Bytes held between calls (a partial header or body): bounded by
  // kFrameHeaderBytes + max_frame_bytes.
  size_t buffered() const { return have_header_ ? kFrameHeaderBytes + body_.size() : hdr_len_; }
  // Frames copied because they were split or misaligned (for metrics).
  uint64_t copied_frames() const { return copied_frames_; }

 private:
  DecodeError start_body(uint32_t len);
  DecodeError deliver(const uint8_t* body, size_t len, Frame& out);

  DecodeLimits limits_;
  DecodeError error_ = DecodeError::None;
  uint8_t hdr_[kFrameHeaderBytes] = {};
  size_t hdr_len_ = 0;         // header bytes held while !have_header_
  bool have_header_ = false;
  uint32_t want_ = 0;          // body length of the frame in progress
  std::vector<uint32_t> store_;  // 4-aligned backing for partial bodies
  std::span<uint8_t> body_;      // the partial body held in store_
  uint64_t copied_frames_ = 0;
};

// Builds frames. Usage:
//   auto& b = enc.builder();                 // cleared, ready
//   auto ping = CreatePong(b, ...);
//   std::span<const uint8_t> frame = enc.finish(ping);
// The span stays valid until the next builder() call.
class FrameEncoder {
 public:
  explicit FrameEncoder(size_t initial_bytes = 1024) : fbb_(initial_bytes) {}

  flatbuffers::FlatBufferBuilder& builder() {
    fbb_.Clear();
    return fbb_;
  }

  template <class T>
  std::span<const uint8_t> finish(flatbuffers::Offset<T> msg) {
    return finish_union(MessageTraits<T>::enum_value, msg.Union());
  }
  std::span<const uint8_t> finish_union(Message type, flatbuffers::Offset<void> msg);

 private:
  flatbuffers::FlatBufferBuilder fbb_;
};

// Convenience for the common one-liners (Error, Pong, ...).
std::span<const uint8_t> encode_error(FrameEncoder& enc, ErrorCode code, bool fatal,
                                      std::string_view text);

// ---- implementation of the template ----

inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

template <class OnFrame>
DecodeError FrameDecoder::feed(const uint8_t* data, size_t len, OnFrame&& on_frame) {
  if (error_ != DecodeError::None) return error_;
  Frame frame;
  while (len > 0) {
    if (!have_header_) {
      // Fast path: a whole frame in place, header read straight from data.
      if (hdr_len_ == 0 && len >= kFrameHeaderBytes) {
        uint32_t n = load_le32(data);
        if ((error_ = start_body(n)) != DecodeError::None) return error_;
        data += kFrameHeaderBytes;
        len -= kFrameHeaderBytes;
        const bool aligned = (reinterpret_cast<uintptr_t>(data) & 3) == 0;
        if (len >= n && aligned) {
          if ((error_ = deliver(data, n, frame)) != DecodeError::None) return error_;
          data += n;
          len -= n;
          have_header_ = false;
          if (!on_frame(static_cast<const Frame&>(frame))) return DecodeError::None;
          continue;
        }
        continue;  // buffer the body below
      }
      size_t take = std::min(len, kFrameHeaderBytes - hdr_len_);
      std::memcpy(hdr_ + hdr_len_, data, take);
      hdr_len_ += take;
      data += take;
      len -= take;
      if (hdr_len_ < kFrameHeaderBytes) return DecodeError::None;
      hdr_len_ = 0;
      if ((error_ = start_body(load_le32(hdr_))) != DecodeError::None) return error_;
      continue;
    }
    // Accumulate the body of the frame in progress.
    size_t have = body_.size();
    if (have == 0 && store_.size() * 4 < want_) store_.resize((want_ + 3) / 4);
    size_t take = std::min<size_t>(len, want_ - have);
    std::memcpy(reinterpret_cast<uint8_t*>(store_.data()) + have, data, take);
    body_ = std::span<uint8_t>(reinterpret_cast<uint8_t*>(store_.data()), have + take);
    data += take;
    len -= take;
    if (body_.size() < want_) return DecodeError::None;
    have_header_ = false;
    ++copied_frames_;
    if ((error_ = deliver(body_.data(), body_.size(), frame)) != DecodeError::None) return error_;
    body_ = {};
    if (!on_frame(static_cast<const Frame&>(frame))) return DecodeError::None;
  }
  return DecodeError::None;
}

}  // namespace skirmish::proto
