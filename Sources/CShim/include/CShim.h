#ifndef PROVISION_CSHIM_H
#define PROVISION_CSHIM_H

/* Thin wrappers for what Swift cannot import: variadic functions, function-like macros,
 * SQLITE_TRANSIENT, and a process spawn with a working directory and its own process group. */

#include <sys/types.h>
#include <sqlite3.h>
#include <curl/curl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>

/* sqlite3 */
int shim_sqlite3_bind_text(sqlite3_stmt *stmt, int index, const char *text);

/* libcurl: curl_easy_setopt / curl_easy_getinfo are variadic */
CURLcode shim_curl_setopt_long(CURL *curl, CURLoption option, long value);
CURLcode shim_curl_setopt_string(CURL *curl, CURLoption option, const char *value);
CURLcode shim_curl_setopt_pointer(CURL *curl, CURLoption option, void *value);
CURLcode shim_curl_getinfo_long(CURL *curl, CURLINFO info, long *value);

/* libssh2: these are macros in libssh2.h */
LIBSSH2_SESSION *shim_libssh2_session_init(void);
LIBSSH2_CHANNEL *shim_libssh2_channel_open_session(LIBSSH2_SESSION *session);
int shim_libssh2_channel_exec(LIBSSH2_CHANNEL *channel, const char *command);
ssize_t shim_libssh2_channel_read(LIBSSH2_CHANNEL *channel, char *buffer, size_t length);
ssize_t shim_libssh2_channel_read_stderr(LIBSSH2_CHANNEL *channel, char *buffer, size_t length);

/* pipe2(fds, O_CLOEXEC): glibc hides pipe2 from Swift's Glibc module. */
int shim_pipe_cloexec(int fds[2]);

/* Process spawn: posix_spawn with chdir, a new process group and default signal dispositions.
 * Returns 0 and stores the pid, or an errno value. */
int shim_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *cwd,
               int stdin_fd, int stdout_fd, int stderr_fd);

#endif
