// skirmish::auth base64url: the URL-safe base64 of RFC 4648 section 5,
// without padding, as JWTs (RFC 7515 section 2) and join tokens use it.
//
// Contract
//   - The alphabet is A-Z a-z 0-9 '-' '_'. Encoding never writes '='.
//   - Decoding is strict, so that one byte string has exactly one encoding
//     (a token cannot be altered without changing the bytes it decodes to,
//     which is what makes a signature over the decoded bytes, or over the
//     encoded text, mean the same thing). Refused: any byte outside the
//     alphabet (so '=', '+', '/', whitespace and NUL), a length of 4k+1,
//     and non-canonical trailing bits (the unused low bits of the last
//     character must be zero).
//   - No allocation beyond the output string (reserved once to its exact
//     size); no exceptions other than std::bad_alloc from that string.
#pragma once

#include <string>
#include <string_view>

namespace skirmish::auth {

// The encoding of `bytes`; its length is ceil(4 * n / 3).
std::string base64url_encode(std::string_view bytes);

// Decodes `text` into *out (replaced). False, and *out emptied, when `text`
// is not a strict encoding (see above). The empty string decodes to empty.
bool base64url_decode(std::string_view text, std::string* out);

}  // namespace skirmish::auth
