#include "support/client_frames.h"

#include <zlib.h>

namespace wspush::testing {

std::string deflatedMessage(std::string_view message, int level, int windowBits) {
    z_stream zs{};
    if (deflateInit2(&zs, level, Z_DEFLATED, -windowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
    std::string out(deflateBound(&zs, static_cast<uLong>(message.size())) + 64, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
    zs.avail_in = static_cast<uInt>(message.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&zs, Z_SYNC_FLUSH);
    out.resize(out.size() - zs.avail_out);
    deflateEnd(&zs);
    if (rc != Z_OK || zs.avail_in != 0 || !out.ends_with(std::string_view("\x00\x00\xff\xff", 4))) return {};
    out.resize(out.size() - 4);
    return out;
}

}  // namespace wspush::testing
