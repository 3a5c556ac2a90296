/* Shared command-line handling: common options, --help/--version, verb dispatch. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct md_cli md_cli;

void md_cli_init(const char *progname)
{
	md_err *err = NULL;
	const char *slash = strrchr(progname, '/');
	int fd;

	/* fds 0-2 are always open (a closed one would be reused by the next open and written to as
	 * stdout), and SIGCHLD is not ignored (an inherited SIG_IGN makes waitpid lose statuses) */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
	signal(SIGCHLD, SIG_DFL);

	if (md_log_init(slash ? slash + 1 : progname, &err) < 0)
		md_die(err);
}

bool md_cli_common(int opt, const char *arg)
{
	md_err *err = NULL;
	enum md_log_format fmt;

	switch (opt) {
	case MD_OPT_VERBOSE:
		md_cli.verbose++;
		md_log_set_level(md_cli.verbose > 1 ? MD_LOG_DEBUG : MD_LOG_INFO);
		return true;
	case MD_OPT_QUIET:
		md_cli.quiet = true;
		md_log_set_level(MD_LOG_ERROR);
		return true;
	case MD_OPT_HELP:
		fputs(md_cli.usage ? md_cli.usage : "", stdout);
		exit(0);
	case MD_OPT_VERSION:
		printf("%s %s\n", md_progname, METALD_VERSION);
		exit(0);
	case MD_OPT_LOG_FORMAT:
		if (md_log_parse_format(arg, &fmt, &err) < 0)
			md_die(err);
		md_log_set_format(fmt);
		return true;
	case MD_OPT_JSON:
		md_cli.json = true;
		return true;
	case MD_OPT_ROOT:
		if (arg[0] != '/')
			md_die_msg(MD_EXIT_USAGE, "--root `%s`: must be an absolute path", arg);
		md_cli.root = arg;
		return true;
	}
	return false;
}

void md_cli_bad_option(void)
{
	/* getopt already printed "prog: unrecognized option ..." */
	fprintf(stderr, "Try '%s --help' for more information.\n", md_progname);
	exit(MD_EXIT_USAGE);
}

enum md_out_mode md_cli_out_mode(void)
{
	return md_cli.json ? MD_OUT_JSON : MD_OUT_TEXT;
}

void md_cli_reset_getopt(void)
{
	optind = 0; /* 0, not 1: glibc then re-initialises its internal state */
}

int md_cli_dispatch(const struct md_verb *verbs, int argc, char **argv)
{
	int i = 1;

	/* common options may come before the verb */
	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			md_cli_common(MD_OPT_HELP, NULL);
		else if (!strcmp(a, "--version"))
			md_cli_common(MD_OPT_VERSION, NULL);
		else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
			md_cli_common(MD_OPT_VERBOSE, NULL);
		else if (!strcmp(a, "-vv")) {
			md_cli_common(MD_OPT_VERBOSE, NULL);
			md_cli_common(MD_OPT_VERBOSE, NULL);
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
			md_cli_common(MD_OPT_QUIET, NULL);
		else if (!strcmp(a, "--json"))
			md_cli_common(MD_OPT_JSON, NULL);
		else if ((!strcmp(a, "--root") || !strcmp(a, "--log-format")) && i + 1 < argc) {
			md_cli_common(!strcmp(a, "--root") ? MD_OPT_ROOT : MD_OPT_LOG_FORMAT, argv[i + 1]);
			i++;
		} else if (!strncmp(a, "--root=", 7))
			md_cli_common(MD_OPT_ROOT, a + 7);
		else if (!strncmp(a, "--log-format=", 13))
			md_cli_common(MD_OPT_LOG_FORMAT, a + 13);
		else
			break;
		i++;
	}
	if (i >= argc) {
		fputs(md_cli.usage ? md_cli.usage : "", stderr);
		return MD_EXIT_USAGE;
	}
	for (const struct md_verb *v = verbs; v->name; v++) {
		if (strcmp(v->name, argv[i]) == 0) {
			md_cli_reset_getopt();
			return v->run(argc - i, argv + i);
		}
	}
	if (argv[i][0] == '-')
		md_die_msg(MD_EXIT_USAGE, "unknown option `%s` (try '%s --help')", argv[i], md_progname);
	md_die_msg(MD_EXIT_USAGE, "unknown command `%s` (try '%s --help')", argv[i], md_progname);
}
