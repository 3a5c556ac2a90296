/* md-probe: a static program for jail tests; runs its argument words as commands, in order.
 *   args            print argv, one per line
 *   id              print "uid=U gid=G groups=N"
 *   env             print the environment, one per line, then "env-end"
 *   fds             print the open file descriptors ("fds 0 1 2")
 *   cwd             print the working directory
 *   exists PATH     print "yes PATH" or "no PATH"
 *   ls DIR          print the names in DIR
 *   open PATH       open PATH read-write and print "open ok" or "open <errno text>"
 *   write PATH N    write N bytes to PATH, print "write ok" or the error
 *   syscall NR [A0 [A1 [A2]]]  make a raw system call; print "syscall <ret> <errno text>"
 *   comm NAME       set the process name (prctl PR_SET_NAME)
 *   sleep SECS      sleep (fractions allowed)
 *   spin SECS       busy-loop
 *   exit N          exit with status N
 * Run under the name firecracker*, it prints its arguments and exits (a stand-in for Firecracker). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

	if (strncmp(base, "firecracker", 11) == 0) {
		for (int i = 0; i < argc; i++)
			printf("%s\n", argv[i]);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *c = argv[i];
		const char *a1 = i + 1 < argc ? argv[i + 1] : "";
		const char *a2 = i + 2 < argc ? argv[i + 2] : "";

		if (!strcmp(c, "args")) {
			for (int k = 0; k < argc; k++)
				printf("%s\n", argv[k]);
		} else if (!strcmp(c, "id")) {
			printf("uid=%d gid=%d groups=%d\n", (int)getuid(), (int)getgid(), getgroups(0, NULL));
		} else if (!strcmp(c, "env")) {
			for (char **e = environ; e && *e; e++)
				printf("%s\n", *e);
			printf("env-end\n");
		} else if (!strcmp(c, "fds")) {
			printf("fds");
			for (int fd = 0; fd < 4096; fd++)
				if (fcntl(fd, F_GETFD) >= 0)
					printf(" %d", fd);
			printf("\n");
		} else if (!strcmp(c, "cwd")) {
			char buf[4096];
			printf("cwd %s\n", getcwd(buf, sizeof(buf)) ? buf : strerror(errno));
		} else if (!strcmp(c, "exists")) {
			printf("%s %s\n", access(a1, F_OK) == 0 ? "yes" : "no", a1);
			i++;
		} else if (!strcmp(c, "ls")) {
			DIR *d = opendir(a1);
			struct dirent *de;
			while (d && (de = readdir(d)))
				if (de->d_name[0] != '.')
					printf("%s\n", de->d_name);
			if (d)
				closedir(d);
			i++;
		} else if (!strcmp(c, "open")) {
			int fd = open(a1, O_RDWR);
			printf("open %s\n", fd >= 0 ? "ok" : strerror(errno));
			if (fd >= 0)
				close(fd);
			i++;
		} else if (!strcmp(c, "write")) {
			long n = atol(a2), done = 0;
			char buf[4096];
			int fd = open(a1, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			memset(buf, 'x', sizeof(buf));
			while (fd >= 0 && done < n) {
				ssize_t w = write(fd, buf, (size_t)(n - done < 4096 ? n - done : 4096));
				if (w <= 0)
					break;
				done += w;
			}
			printf("write %s\n", fd >= 0 && done == n ? "ok" : strerror(errno));
			if (fd >= 0)
				close(fd);
			i += 2;
		} else if (!strcmp(c, "syscall")) {
			long nr = atol(a1), a[3] = { 0, 0, 0 };
			int k = 0;
			i++;
			while (k < 3 && i + 1 < argc && (argv[i + 1][0] == '-' || (argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')))
				a[k++] = strtol(argv[++i], NULL, 0);
			fflush(stdout);
			errno = 0;
			long r = syscall(nr, a[0], a[1], a[2]);
			printf("syscall %ld %s\n", r, r < 0 ? strerror(errno) : "ok");
		} else if (!strcmp(c, "comm")) {
			prctl(PR_SET_NAME, a1, 0, 0, 0);
			i++;
		} else if (!strcmp(c, "sleep")) {
			double s = atof(a1);
			struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
			fflush(stdout);
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			i++;
		} else if (!strcmp(c, "spin")) {
			double end = now() + atof(a1);
			fflush(stdout);
			while (now() < end)
				;
			i++;
		} else if (!strcmp(c, "exit")) {
			fflush(stdout);
			return atoi(a1);
		} else {
			fprintf(stderr, "md-probe: unknown command `%s`\n", c);
			return 2;
		}
		fflush(stdout);
	}
	return 0;
}
