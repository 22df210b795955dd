// Randomness a client sees (connection ids, session ids, resume tokens) or that names this process
// (the engine's instance id). All of it comes from OpenSSL's CSPRNG: from a generator like
// std::mt19937_64, whose state can be rebuilt from a few hundred observed outputs, the next
// session's id and resume token would be predictable, and the session could be taken over.
#pragma once

#include <cstddef>
#include <string>

namespace wspush {

// `bytes` random bytes as 2 × `bytes` lowercase hex digits. When OpenSSL cannot supply them it
// logs a critical line and aborts the process: predictable ids are worse than no service.
std::string randomHex(std::size_t bytes);

}  // namespace wspush
