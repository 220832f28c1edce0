/*
 * The pod infrastructure ("pause") process of docker-cri.
 *
 * It holds the pod's namespaces open: it does nothing but wait. As PID 1 of a
 * pod with a shared PID namespace it also reaps orphaned children, and it
 * exits cleanly on SIGINT or SIGTERM so that `docker stop` is immediate.
 * Built statically by build.rs so the image needs no libc.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void exit_on_signal(int signo)
{
	(void)signo;
	_exit(0);
}

static void reap_children(int signo)
{
	(void)signo;
	int saved = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
	errno = saved;
}

static int install(int signo, void (*handler)(int))
{
	struct sigaction action;
	memset(&action, 0, sizeof(action));
	action.sa_handler = handler;
	/* Restart interrupted calls; do not get notified for stopped children. */
	action.sa_flags = SA_RESTART | (signo == SIGCHLD ? SA_NOCLDSTOP : 0);
	sigemptyset(&action.sa_mask);
	return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("docker-cri pause");
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: not running as PID 1; orphans will not be reaped here\n");
	if (install(SIGINT, exit_on_signal) || install(SIGTERM, exit_on_signal) ||
	    install(SIGCHLD, reap_children)) {
		perror("pause: sigaction");
		return 1;
	}
	for (;;)
		pause();
}
