# The guest's programs alone (orch-supervisor and its jail helpers), for the guest
# image: the same meson build as `orch`, but the output keeps only libexec/ so the
# guest's closure does not pull in libvirt, libcurl or SQLite.
{ orch, libvirt, curl, sqlite }:

orch.overrideAttrs (old: {
  pname = "orch-supervisor";

  # meson installs the guest's programs (orch-supervisor and the helpers it runs in
  # the jails: orch-jail-exec, orch-shell-init) to libexec/; orchd and orch go to bin/.
  postInstall = (old.postInstall or "") + ''
    [ -x "$out/libexec/orch-supervisor" ] || { echo "orch-supervisor was not installed to libexec/" >&2; exit 1; }
    find "$out" -mindepth 1 -maxdepth 1 ! -name libexec -exec rm -rf {} +
    mkdir -p "$out/bin"
    ln -s ../libexec/orch-supervisor "$out/bin/orch-supervisor"
  '';

  # The point of this package: none of the host's libraries in the guest.
  disallowedReferences = [ libvirt curl sqlite ];

  meta = old.meta // {
    description = "orch's guest side: the supervisor that runs agents in bubblewrap jails";
    mainProgram = "orch-supervisor";
  };
})
