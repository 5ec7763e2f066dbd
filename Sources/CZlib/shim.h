#ifndef STACKLAB_CZLIB_SHIM_H
#define STACKLAB_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit2 and inflateInit2 are macros (they pass the library version and stream size). */
static inline int stacklab_deflate_init(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
}
static inline int stacklab_deflate_init_zlib(z_streamp stream, int level) {
    return deflateInit(stream, level);
}
static inline int stacklab_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 16 + MAX_WBITS);
}
static inline int stacklab_inflate_init_zlib(z_streamp stream) {
    return inflateInit(stream);
}
#endif
