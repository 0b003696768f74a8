/*
 * pam_keyfleet.so: asks for keyfleet's second factor in a PAM conversation.
 *
 * This file is only the bridge between PAM and keyfleet-pam-helper (Go,
 * package pam), which does the work: it talks to keyfleetd over HTTPS,
 * applies the policy and decides. The module starts the helper for each
 * authentication, tells it who signs in, relays its prompts and messages
 * through the application's conversation function, and returns its answer.
 *
 * Why a helper process rather than a Go shared library: sshd loads PAM
 * modules, then forks for the keyboard-interactive conversation. A Go
 * runtime loaded into sshd would be forked with only one of its threads
 * and can hang; a short-lived process of its own has no such problem, and
 * keeps sshd's address space free of the HTTP and TLS stacks.
 *
 * The wire between the two, on the helper's stdin and stdout, is frames:
 * one letter, a space, the payload's length in decimal, a newline, the
 * payload, a newline. Module to helper: U user, S service, R rhost, T tty,
 * E end of those, A an answer, X no answer. Helper to module: P a prompt
 * with echo off, Q a prompt with echo on, I information, M an error
 * message, D done (payload: the result's name, see results[] below).
 *
 * Arguments: helper=PATH (default below); every other argument is handed
 * to the helper (see docs/pam.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_AUTH
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#ifndef KEYFLEET_PAM_HELPER
#define KEYFLEET_PAM_HELPER "/usr/libexec/keyfleet/keyfleet-pam-helper"
#endif

/* The longest frame either side sends: messages are short. */
#define MAX_FRAME 65536
/* The most arguments handed to the helper. */
#define MAX_ARGS 32

static const struct {
	const char *name;
	int code;
} results[] = {
	{"success", PAM_SUCCESS},
	{"auth_err", PAM_AUTH_ERR},
	{"authinfo_unavail", PAM_AUTHINFO_UNAVAIL},
	{"user_unknown", PAM_USER_UNKNOWN},
	{"maxtries", PAM_MAXTRIES},
	{"ignore", PAM_IGNORE},
};

/* write_all writes all of buf, retrying after signals. */
static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read_all reads exactly n bytes. */
static int read_all(int fd, char *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_frame(int fd, char type, const char *payload)
{
	char head[32];
	size_t n = payload ? strlen(payload) : 0;
	int h = snprintf(head, sizeof head, "%c %zu\n", type, n);
	if (write_all(fd, head, (size_t)h) < 0 || write_all(fd, payload ? payload : "", n) < 0)
		return -1;
	return write_all(fd, "\n", 1);
}

/*
 * read_frame reads one frame; *payload is a NUL-terminated copy the caller
 * frees. Returns the type, or -1 at the end of the stream or on nonsense.
 */
static int read_frame(int fd, char **payload)
{
	char head[32];
	size_t i = 0;
	for (;;) {
		if (i == sizeof head - 1 || read_all(fd, &head[i], 1) < 0)
			return -1;
		if (head[i] == '\n')
			break;
		i++;
	}
	head[i] = '\0';
	char *end;
	if (i < 3 || head[1] != ' ')
		return -1;
	unsigned long n = strtoul(head + 2, &end, 10);
	if (*end != '\0' || n > MAX_FRAME)
		return -1;
	char *p = malloc(n + 2);
	if (p == NULL)
		return -1;
	if (read_all(fd, p, n + 1) < 0 || p[n] != '\n') {
		free(p);
		return -1;
	}
	p[n] = '\0';
	*payload = p;
	return (unsigned char)head[0];
}

/* ask runs one prompt or message through the application's conversation. */
static int ask(pam_handle_t *pamh, int style, const char *text, char **answer)
{
	char *resp = NULL;
	int rc = pam_prompt(pamh, style, answer ? &resp : NULL, "%s", text);
	if (answer)
		*answer = resp;
	else
		free(resp);
	return rc;
}

/* wipe clears and frees a string that held a code. */
static void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* helper_ok refuses a helper anyone but root could have replaced. */
static int helper_ok(pam_handle_t *pamh, const char *path)
{
	struct stat st;
	if (path[0] != '/' || stat(path, &st) != 0) {
		pam_syslog(pamh, LOG_ERR, "keyfleet helper %s: %s", path, path[0] != '/' ? "not an absolute path" : strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		pam_syslog(pamh, LOG_ERR, "keyfleet helper %s must be a regular file owned by root and writable by root only", path);
		return 0;
	}
	return 1;
}

/* start forks and executes the helper with a clean environment; it returns
 * the child's pid and the two pipe ends the module keeps. */
static pid_t start(pam_handle_t *pamh, const char *path, char *const argv[], int *to, int *from)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", NULL};
		int devnull = open("/dev/null", O_WRONLY);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || devnull < 0 || dup2(devnull, 2) < 0)
			_exit(127);
		closefrom(3);
		signal(SIGPIPE, SIG_DFL);
		execve(path, argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (pid < 0) {
		pam_syslog(pamh, LOG_ERR, "keyfleet: fork: %s", strerror(errno));
		close(in[1]);
		close(out[0]);
		return -1;
	}
	*to = in[1];
	*from = out[0];
	return pid;
}

/* tell sends the helper who is signing in, and where from. */
static int tell(pam_handle_t *pamh, int to, const char *user)
{
	const void *service = NULL, *rhost = NULL, *tty = NULL;
	pam_get_item(pamh, PAM_SERVICE, &service);
	pam_get_item(pamh, PAM_RHOST, &rhost);
	pam_get_item(pamh, PAM_TTY, &tty);
	if (send_frame(to, 'U', user) < 0 || send_frame(to, 'S', service) < 0 ||
	    send_frame(to, 'R', rhost) < 0 || send_frame(to, 'T', tty) < 0)
		return -1;
	return send_frame(to, 'E', NULL);
}

/* relay answers the helper's frames until it says it is done. */
static int relay(pam_handle_t *pamh, int to, int from)
{
	for (;;) {
		char *payload = NULL, *answer = NULL;
		int type = read_frame(from, &payload);
		int rc = 0, style = 0;
		switch (type) {
		case 'P':
		case 'Q':
			style = type == 'P' ? PAM_PROMPT_ECHO_OFF : PAM_PROMPT_ECHO_ON;
			if (ask(pamh, style, payload, &answer) == PAM_SUCCESS && answer != NULL)
				rc = send_frame(to, 'A', answer);
			else
				rc = send_frame(to, 'X', NULL);
			wipe(answer);
			break;
		case 'I':
		case 'M':
			ask(pamh, type == 'I' ? PAM_TEXT_INFO : PAM_ERROR_MSG, payload, NULL);
			break;
		case 'D':
			for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
				if (strcmp(payload, results[i].name) == 0) {
					free(payload);
					return results[i].code;
				}
			}
			pam_syslog(pamh, LOG_ERR, "keyfleet helper gave an unknown result");
			free(payload);
			return PAM_AUTHINFO_UNAVAIL;
		default:
			pam_syslog(pamh, LOG_ERR, "keyfleet helper stopped without a result");
			free(payload);
			return PAM_AUTHINFO_UNAVAIL;
		}
		free(payload);
		if (rc < 0)
			return PAM_AUTHINFO_UNAVAIL;
	}
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	const char *helper = KEYFLEET_PAM_HELPER;
	char *args[MAX_ARGS + 2];
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "helper=", 7) == 0)
			helper = argv[i] + 7;
		else if (n < MAX_ARGS)
			args[1 + n++] = (char *)argv[i];
	}
	args[0] = (char *)helper;
	args[1 + n] = NULL;

	const char *user = NULL;
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL || *user == '\0')
		return PAM_USER_UNKNOWN;
	if (!helper_ok(pamh, helper))
		return PAM_AUTHINFO_UNAVAIL;

	/* A helper that exits early must not kill the application. */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &old);
	int to = -1, from = -1, rc = PAM_AUTHINFO_UNAVAIL;
	pid_t pid = start(pamh, helper, args, &to, &from);
	if (pid > 0) {
		rc = tell(pamh, to, user) < 0 ? PAM_AUTHINFO_UNAVAIL : relay(pamh, to, from);
		close(to);
		close(from);
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	sigaction(SIGPIPE, &old, NULL);
	return rc;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}
