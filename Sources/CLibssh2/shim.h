#ifndef STACKLAB_CLIBSSH2_SHIM_H
#define STACKLAB_CLIBSSH2_SHIM_H
#include <libssh2.h>

/* libssh2's convenience API is function-like macros, which Swift cannot call. */
static inline LIBSSH2_SESSION *stacklab_ssh2_session_init(void) {
    return libssh2_session_init();
}
static inline int stacklab_ssh2_session_disconnect(LIBSSH2_SESSION *session, const char *description) {
    return libssh2_session_disconnect(session, description);
}
static inline LIBSSH2_CHANNEL *stacklab_ssh2_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_session(session);
}
static inline int stacklab_ssh2_channel_exec(LIBSSH2_CHANNEL *channel, const char *command) {
    return libssh2_channel_exec(channel, command);
}
static inline ssize_t stacklab_ssh2_channel_read(LIBSSH2_CHANNEL *channel, char *buffer, size_t size) {
    return libssh2_channel_read(channel, buffer, size);
}
static inline ssize_t stacklab_ssh2_channel_read_stderr(LIBSSH2_CHANNEL *channel, char *buffer, size_t size) {
    return libssh2_channel_read_stderr(channel, buffer, size);
}
static inline int stacklab_ssh2_userauth_publickey_fromfile(LIBSSH2_SESSION *session, const char *user,
                                                           const char *publicKey, const char *privateKey,
                                                           const char *passphrase) {
    return libssh2_userauth_publickey_fromfile(session, user, publicKey, privateKey, passphrase);
}
#endif
