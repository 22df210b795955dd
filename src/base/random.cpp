#include "base/random.h"

#include <cstdlib>
#include <vector>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

namespace wspush {

std::string randomHex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    if (bytes > 0 && RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        spdlog::critical("the system's random number generator failed ({}); stopping", reason);
        std::abort();
    }
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text;
    text.reserve(2 * bytes);
    for (unsigned char byte : raw) {
        text += kDigits[byte >> 4];
        text += kDigits[byte & 0x0f];
    }
    return text;
}

}  // namespace wspush
