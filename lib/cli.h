/* Command-line plumbing shared by every program: common options and verb dispatch. */
#ifndef METALD_CLI_H
#define METALD_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include "err.h"
#include "log.h"
#include "out.h"

/* Options every program and verb accepts. Values above 0x100 never clash with short options. */
enum {
	MD_OPT_VERBOSE = 'v',
	MD_OPT_QUIET = 'q',
	MD_OPT_HELP = 'h',
	MD_OPT_VERSION = 0x100,
	MD_OPT_LOG_FORMAT,
	MD_OPT_JSON,
	MD_OPT_ROOT,
	MD_OPT_FIRST_PRIVATE = 0x200, /* programs number their own long-only options from here */
};

#define MD_CLI_COMMON_LONGOPTS                                                                      \
	{ "verbose", no_argument, NULL, MD_OPT_VERBOSE }, { "quiet", no_argument, NULL, MD_OPT_QUIET }, \
	{ "help", no_argument, NULL, MD_OPT_HELP }, { "version", no_argument, NULL, MD_OPT_VERSION },  \
	{ "log-format", required_argument, NULL, MD_OPT_LOG_FORMAT },                                  \
	{ "json", no_argument, NULL, MD_OPT_JSON }, { "root", required_argument, NULL, MD_OPT_ROOT }
#define MD_CLI_COMMON_SHORTOPTS "vqh"

struct md_cli {
	int verbose;
	bool quiet;
	bool json;
	const char *root;
	const char *usage; /* printed by --help */
};
extern struct md_cli md_cli;

/* Set up logging for the program (name from argv[0]'s basename); exits 2 on a bad environment. */
void md_cli_init(const char *progname);

/* Handle a common option (returns true), or return false for the caller to handle. --help and
 * --version print and exit 0; a bad --log-format exits 2. */
bool md_cli_common(int opt, const char *arg);

/* "unknown option" / "missing argument" from getopt: print a one-line hint and exit 2. */
void md_cli_bad_option(void) __attribute__((noreturn));

enum md_out_mode md_cli_out_mode(void);

/* A verb table entry; the handler gets argv with argv[0] the verb. */
struct md_verb {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Dispatch argv[1] through verbs (argv[1] may be preceded by common options). Prints the usage
 * with the verb list on no verb or --help; unknown verb exits 2. Returns the handler's status. */
int md_cli_dispatch(const struct md_verb *verbs, int argc, char **argv);

/* Reset getopt for a second parse (verbs parse their own argv). */
void md_cli_reset_getopt(void);

#endif
