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
static inline int stacklab_ssh2_userauth_publickey_frommemory(LIBSSH2_SESSION *session, const char *user,
                                                             const char *privateKey, size_t privateKeyLength,
                                                             const char *passphrase) {
    return libssh2_userauth_publickey_frommemory(session, user, strlen(user), NULL, 0, privateKey, privateKeyLength, passphrase);
}
static inline int stacklab_ssh2_channel_eof(LIBSSH2_CHANNEL *channel) {
    return libssh2_channel_eof(channel);
}
#include <libssh2_sftp.h>
#include <string.h>
static inline LIBSSH2_SFTP_HANDLE *stacklab_sftp_open_write(LIBSSH2_SFTP *sftp, const char *path, long mode) {
    return libssh2_sftp_open_ex(sftp, path, (unsigned int)strlen(path),
                                LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, mode, LIBSSH2_SFTP_OPENFILE);
}
static inline int stacklab_sftp_rename_replacing(LIBSSH2_SFTP *sftp, const char *from, const char *to) {
    return libssh2_sftp_rename_ex(sftp, from, (unsigned int)strlen(from), to, (unsigned int)strlen(to),
                                  LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);
}
static inline int stacklab_sftp_unlink(LIBSSH2_SFTP *sftp, const char *path) {
    return libssh2_sftp_unlink_ex(sftp, path, (unsigned int)strlen(path));
}
#endif
