#!/usr/bin/env bash
# Evaluates nix/module.nix with nixpkgs' lib and the NixOS option stubs of
# tests/nix/stubs.nix:
#  - the example renders the settings orchd's own example has for the same things;
#  - every configuration in tests/nix/bad/ fails the assertion named in its
#    "# expect:" line;
#  - the orchd unit gets the keys through LoadCredential and never through its
#    environment; the system parts (group, libvirtd, vhost_vsock, tmpfiles) are set.
. "$(dirname "$0")/lib.sh"
need_nix
need_lib
command -v jq >/dev/null || skip "jq is not installed (scripts/install-deps)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
example=$src/nix/tests/example.nix

# 1. The example renders (orchd --check-config judges the rendering: check-config.sh).
eval_module "$example" settings >"$tmp/rendered.json" || fail "cannot evaluate the example"
jq -e '.vms.dev.slots >= 1 and (.llm.upstreams | length) >= 1' "$tmp/rendered.json" >/dev/null ||
	fail "the example's rendering lacks its VM or its upstream: $(cat "$tmp/rendered.json")"
# Each VM's uids, rendered explicitly: 256 apart in the order of the VMs' names.
jq -e '.vms.dev.uid_base == 100000 and .vms.scratch.uid_base == 100256' "$tmp/rendered.json" >/dev/null ||
	fail "the VMs' uid_base: $(jq -c '.vms | map_values(.uid_base)' "$tmp/rendered.json")"
echo "ok: the example renders"

# 2. Assertions fire with their messages; a good configuration passes them.
[ "$(eval_module "$example" assertions)" = "[]" ] || fail "the example fails assertions: $(eval_module "$example" assertions)"
for f in "$src"/tests/nix/bad/*.nix; do
	want=$(sed -n 's/^# expect: //p' "$f" | head -1)
	[ -n "$want" ] || fail "$f has no '# expect:' line"
	got=$(eval_module "$f" assertions) || fail "cannot evaluate $f"
	if ! jq -e --arg w "$want" 'any(.[]; contains($w))' <<<"$got" >/dev/null; then
		fail "$(basename "$f"): expected an assertion containing '$want', got $got"
	fi
	echo "ok: $(basename "$f") fails with: $(jq -r '.[0]' <<<"$got")"
done

# 2b. Other good configurations pass their assertions, render what orchd accepts (when
# it is built) and set what their "# expect-system:" line says.
orchd=$build/host/orchd
for f in "$src"/tests/nix/good/*.nix; do
	name=$(basename "$f")
	[ "$(eval_module "$f" assertions)" = "[]" ] || fail "$name fails assertions: $(eval_module "$f" assertions)"
	eval_module "$f" settings >"$tmp/$name.json" || fail "cannot render $name"
	if [ -x "$orchd" ]; then
		out=$("$orchd" --check-config "$tmp/$name.json" --offline 2>&1) || fail "orchd --check-config rejects $name: $out"
	fi
	want=$(sed -n 's/^# expect-settings: //p' "$f" | head -1)
	if [ -n "$want" ]; then
		jq -e "$want" "$tmp/$name.json" >/dev/null ||
			fail "$name: expected $want, got $(jq -c . "$tmp/$name.json")"
	fi
	want=$(sed -n 's/^# expect-system: //p' "$f" | head -1)
	if [ -n "$want" ]; then
		eval_module "$f" system | jq -e "$want" >/dev/null ||
			fail "$name: expected $want, got $(eval_module "$f" system)"
	fi
	echo "ok: $name renders$([ -x "$orchd" ] && echo " what orchd accepts")"
done

# 2c. The egress options render what docs/EGRESS.md says, the key as a credential.
eval_module "$src/tests/nix/good/egress.nix" settings >"$tmp/egress.json" || fail "cannot render egress.nix"
jq -e '.vms.dev.egress == ["npm", "github"] and .egress.sets.npm == ["registry.npmjs.org:443"]
	and .egress.inject[0].key_file == "/run/credentials/orchd.service/egress-0"
	and .egress.limits.connections == 16 and .egress.limits.connect_timeout_ms == 5000
	and .egress.upstream_ca_file == "/etc/ssl/certs/ca-certificates.crt" and .egress.log_keep == 5000' "$tmp/egress.json" >/dev/null ||
	fail "egress rendering: $(jq -c '{vms, egress}' "$tmp/egress.json")"
eval_module "$src/tests/nix/good/egress.nix" unit | jq -e '.serviceConfig.LoadCredential == ["egress-0:/run/secrets/github-token"]' >/dev/null ||
	fail "egress key credential: $(eval_module "$src/tests/nix/good/egress.nix" unit | jq -c .serviceConfig.LoadCredential)"
echo "ok: the egress options render, the key as a credential"

# 2d. A PostgreSQL store on another host: its password as a credential only.
eval_module "$src/tests/nix/good/fleet-remote.nix" unit >"$tmp/fleet-remote.unit.json" || fail "cannot evaluate fleet-remote.nix's unit"
jq -e '.serviceConfig.LoadCredential == ["pg-password:/run/secrets/orch-pg"]
	and (.after | index("postgresql.service") | not)' "$tmp/fleet-remote.unit.json" >/dev/null ||
	fail "the database password's credential: $(jq -c '[.serviceConfig.LoadCredential, .after]' "$tmp/fleet-remote.unit.json")"
eval_module "$src/tests/nix/good/fleet.nix" unit | jq -e '(.after | index("postgresql.service")) and
	(.serviceConfig.LoadCredential == [])' >/dev/null ||
	fail "a local server: orchd after postgresql.service, no password: $(eval_module "$src/tests/nix/good/fleet.nix" unit | jq -c '[.after, .serviceConfig.LoadCredential]')"
echo "ok: the PostgreSQL store's password reaches orchd as a credential only"

# 3. The unit: keys as credentials, nothing secret in the environment or the command.
eval_module "$example" unit >"$tmp/unit.json" || fail "cannot evaluate the unit"
jq -e '.serviceConfig.LoadCredential == ["llm-anthropic:/run/secrets/anthropic-api-key", "llm-openai:/run/secrets/openai-api-key"]' "$tmp/unit.json" >/dev/null ||
	fail "LoadCredential is not the two key files: $(jq -c .serviceConfig.LoadCredential "$tmp/unit.json")"
if jq -e '[.environment, .serviceConfig.Environment, .serviceConfig.EnvironmentFile] | tostring | test("secrets|KEY|key")' "$tmp/unit.json" >/dev/null; then
	fail "the unit's environment mentions a key: $(jq -c '[.environment, .serviceConfig.Environment]' "$tmp/unit.json")"
fi
jq -e '.serviceConfig.ExecStart | test("secrets") | not' "$tmp/unit.json" >/dev/null || fail "ExecStart mentions the key file"
jq -e '.serviceConfig.Restart == "on-failure" and .serviceConfig.ProtectSystem == "strict" and .serviceConfig.NoNewPrivileges and (.after | index("libvirtd.service"))' "$tmp/unit.json" >/dev/null ||
	fail "restart policy, hardening or ordering after libvirtd missing: $(jq -c . "$tmp/unit.json")"
jq -e '[.llm.upstreams[].key_file] | all(startswith("/run/credentials/orchd.service/"))' "$tmp/rendered.json" >/dev/null ||
	fail "key_file does not point at the credentials directory"
echo "ok: keys reach orchd as credentials only"

eval_module "$example" system >"$tmp/system.json" || fail "cannot evaluate the system parts"
jq -e '.libvirtd and (.groups | index("orch")) and (.kernelModules | index("vhost_vsock"))
	and (.tmpfiles | index("d /var/lib/orch/workspaces/dev/agent-3 0700 100003 100003 - -"))
	and (.tmpfiles | index("d /var/lib/orch 0750 root orch - -"))
	and (.tmpfiles | index("d /var/lib/orch/workspaces 0700 root root - -"))
	and (.tmpfiles | index("d /var/lib/orch/workspaces/dev 0711 root root - -"))
	and (.tmpfiles | index("d /var/lib/orch/local/scratch 0755 root root - -"))' "$tmp/system.json" >/dev/null ||
	fail "group, libvirtd, vhost_vsock or tmpfiles rules missing: $(jq -c . "$tmp/system.json")"
echo "ok: group, libvirtd, vhost_vsock, tmpfiles (workspace_root private to root, as orchd keeps it)"
