#!/usr/bin/env bats
# The harness itself and the shared pieces every program relies on.

load helpers/common

@test "netns helper makes host and upstream namespaces that reach each other, and removes them" {
	require_root
	leak_snapshot
	netns_up
	in_host ping -c1 -W2 "$MD_UP4"
	in_host ping -6 -c1 -W2 "$MD_UP6"
	netns_down
	leak_check
}

@test "leak check notices a leaked namespace" {
	require_root
	leak_snapshot
	ip netns add "$(md_prefix)leak"
	run leak_check
	ip netns del "$(md_prefix)leak"
	[ "$status" -ne 0 ]
	[[ "$output" == *"netns $(md_prefix)leak"* ]]
	leak_check
}

@test "every program answers --help and --version, and man pages and completions exist" {
	local p n=0
	for p in "$MD_BIN"/metald-*; do
		[ -x "$p" ] || continue
		n=$((n + 1))
		run "$p" --help
		[ "$status" -eq 0 ]
		[[ "$output" == *Usage* ]]
		run "$p" --version
		[ "$status" -eq 0 ]
		[[ "$output" == *"$(basename "$p") "* ]]
		[ -f "$METALD_TOP/man/man1/$(basename "$p").1" ]
		[ -f "$METALD_TOP/completions/bash/$(basename "$p")" ]
		[ -f "$METALD_TOP/completions/zsh/_$(basename "$p")" ]
	done
	[ "$n" -ge 5 ]
}

@test "bash completions offer every long option of --help" {
	local p opt
	for p in "$MD_BIN"/metald-*; do
		[ -x "$p" ] || continue
		for opt in $("$p" --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
			grep -q -- "$opt" "$METALD_TOP/completions/bash/$(basename "$p")" ||
				{ echo "$(basename "$p"): bash completion lacks $opt" >&2; return 1; }
			grep -q -- "$opt" "$METALD_TOP/completions/zsh/_$(basename "$p")" ||
				{ echo "$(basename "$p"): zsh completion lacks $opt" >&2; return 1; }
		done
	done
}
