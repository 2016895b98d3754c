#include "protocol/codec.h"

namespace skirmish::proto {

const char* to_string(DecodeError e) {
  switch (e) {
    case DecodeError::None: return "ok";
    case DecodeError::ZeroLength: return "zero-length frame";
    case DecodeError::TooLarge: return "frame too large";
    case DecodeError::Unverifiable: return "unverifiable flatbuffer";
    case DecodeError::WrongIdentifier: return "wrong file identifier";
    case DecodeError::UnknownType: return "unknown message type";
  }
  return "?";
}

ErrorCode to_error_code(DecodeError e) {
  switch (e) {
    case DecodeError::None: return ErrorCode::None;
    case DecodeError::ZeroLength: return ErrorCode::BadFrame;
    case DecodeError::TooLarge: return ErrorCode::FrameTooLarge;
    case DecodeError::Unverifiable: return ErrorCode::Unverifiable;
    case DecodeError::WrongIdentifier: return ErrorCode::WrongIdentifier;
    case DecodeError::UnknownType: return ErrorCode::UnknownMessage;
  }
  return ErrorCode::Internal;
}

DecodeError verify_body(const uint8_t* body, size_t len, const DecodeLimits& limits,
                        const Envelope** out) {
  // A root offset plus the identifier is the smallest possible buffer.
  if (len < 8 || !flatbuffers::BufferHasIdentifier(body, kFileIdentifier))
    return DecodeError::WrongIdentifier;
  flatbuffers::Verifier::Options opts;
  opts.max_depth = limits.max_depth;
  opts.max_tables = limits.max_tables;
  opts.check_alignment = true;
  opts.check_nested_flatbuffers = false;  // the schema has none; never follow them
  flatbuffers::Verifier v(body, len, opts);
  if (!VerifyEnvelopeBuffer(v)) return DecodeError::Unverifiable;
  const Envelope* env = GetEnvelope(body);
  // The generated verifier accepts a union type it does not know (forward
  // compatibility); a server must not, since it cannot answer it.
  auto t = env->msg_type();
  if (t == Message::NONE || static_cast<uint8_t>(t) > static_cast<uint8_t>(Message::MAX) ||
      env->msg() == nullptr)
    return DecodeError::UnknownType;
  *out = env;
  return DecodeError::None;
}

DecodeError FrameDecoder::start_body(uint32_t len) {
  if (len == 0) return DecodeError::ZeroLength;
  if (len > limits_.max_frame_bytes) return DecodeError::TooLarge;
  want_ = len;
  have_header_ = true;
  body_ = {};
  return DecodeError::None;
}

DecodeError FrameDecoder::deliver(const uint8_t* body, size_t len, Frame& out) {
  const Envelope* env = nullptr;
  DecodeError e = verify_body(body, len, limits_, &env);
  if (e != DecodeError::None) return e;
  out.envelope = env;
  out.type = env->msg_type();
  out.body = std::span<const uint8_t>(body, len);
  return DecodeError::None;
}

std::span<const uint8_t> FrameEncoder::finish_union(Message type, flatbuffers::Offset<void> msg) {
  auto env = CreateEnvelope(fbb_, type, msg);
  // The size prefix is exactly our frame header: a little-endian u32 body
  // length. The schema holds no scalar wider than 32 bits, so the body is
  // 4-aligned from its own start as well as from the prefix.
  fbb_.FinishSizePrefixed(env, kFileIdentifier);
  return {fbb_.GetBufferPointer(), fbb_.GetSize()};
}

std::span<const uint8_t> encode_error(FrameEncoder& enc, ErrorCode code, bool fatal,
                                      std::string_view text) {
  auto& b = enc.builder();
  auto t = b.CreateString(text.data(), text.size());
  return enc.finish(CreateError(b, code, fatal, t));
}

}  // namespace skirmish::proto
