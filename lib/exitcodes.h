/* The exit codes every metald program uses; the same table is in metald(7). */
#ifndef METALD_EXITCODES_H
#define METALD_EXITCODES_H

enum md_exit {
	MD_EXIT_OK = 0,         /* done */
	MD_EXIT_FAIL = 1,       /* the operation failed (system call, VMM error, remote error) */
	MD_EXIT_USAGE = 2,      /* usage or invalid input */
	MD_EXIT_NOTFOUND = 3,   /* VM, network, jail not found */
	MD_EXIT_CONFLICT = 4,   /* already exists, wrong state, locked */
	MD_EXIT_MISSING = 5,    /* the host lacks something required */
	MD_EXIT_TIMEOUT = 124,  /* timed out */
	MD_EXIT_CHAIN = 125,    /* a chain-loader failed before exec */
	MD_EXIT_NOEXEC = 126,   /* the program could not be run */
	MD_EXIT_NOENT = 127,    /* the program was not found */
};

#endif
