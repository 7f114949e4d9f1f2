# orch-supervisor and orch-jail-exec alone, for the guest image: the same meson
# build as `orch`, but its output holds only the guest's binaries so the guest's
# closure does not pull in libvirt, libcurl or SQLite.
{ orch, libvirt, curl, sqlite }:

orch.overrideAttrs (old: {
  pname = "orch-supervisor";

  postInstall = (old.postInstall or "") + ''
    keep=$(mktemp -d)
    sup=$(readlink -f "$out/bin/orch-supervisor")
    [ -x "$sup" ] || { echo "orch-supervisor was not installed" >&2; exit 1; }
    helper=$(find "$out" -name orch-jail-exec -type f | head -n1)
    [ -n "$helper" ] || { echo "orch-jail-exec was not installed" >&2; exit 1; }
    cp -a "$sup" "$keep/orch-supervisor"
    cp -a "$helper" "$keep/orch-jail-exec"
    rm -rf "$out"
    mkdir -p "$out/bin" "$out/libexec"
    cp -a "$keep/orch-supervisor" "$out/bin/"
    # The supervisor looks for orch-jail-exec beside itself, then in libexec/.
    cp -a "$keep/orch-jail-exec" "$out/libexec/"
    ln -s ../libexec/orch-jail-exec "$out/bin/orch-jail-exec"
  '';

  # The point of this package: none of the host's libraries in the guest.
  disallowedReferences = [ libvirt curl sqlite ];

  meta = old.meta // {
    description = "orch's guest side: the supervisor that runs agents in bubblewrap jails";
    mainProgram = "orch-supervisor";
  };
})
