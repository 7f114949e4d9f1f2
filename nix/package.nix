# orch: orchd, the orch CLI, orch-supervisor and orch-jail-exec, built with the
# project's own meson build (the same one scripts/test and CI use).
{ lib
, stdenv
, meson
, ninja
, pkg-config
, jansson
, libbsd
, check
, libvirt
, libnl
, libseccomp
, curl
, sqlite
, libmicrohttpd
, bubblewrap
, doCheck ? false
}:

let
  fs = lib.fileset;
  root = ./..;
in
stdenv.mkDerivation {
  pname = "orch";
  version = "0.1.0";

  # Only what the meson build reads; build directories, node_modules and image
  # outputs of a working tree stay out.
  src = fs.toSource {
    inherit root;
    fileset = fs.difference
      (fs.unions (map fs.maybeMissing [
        ../meson.build
        ../meson_options.txt
        ../proto
        ../guest
        ../host
        ../tests
        ../bench
        ../docs
        ../scripts
      ]))
      (fs.unions (map fs.maybeMissing [
        ../tests/llm/node_modules
      ]));
  };

  nativeBuildInputs = [ meson ninja pkg-config ];
  buildInputs = [
    jansson
    libbsd
    libvirt
    libnl
    libseccomp
    curl
    sqlite
    libmicrohttpd
  ] ++ lib.optional doCheck check;

  mesonBuildType = "release";
  mesonFlags = [
    (lib.mesonEnable "tests" doCheck)
  ];

  # Unit tests only: the integration suites need root, bwrap, libvirt and QEMU, which
  # the build sandbox does not have (they run in checks.vm-test and in CI).
  inherit doCheck;
  nativeCheckInputs = [ bubblewrap ];
  mesonCheckFlags = [ "--suite" "unit" ];

  postInstall = ''
    # orch-supervisor is expected in bin/ (the NixOS guest runs it from there); link it
    # when meson installed it to libexec/. bwrap is not wrapped in: the host module puts
    # it in orchd's PATH, the guest passes --bwrap.
    if [ ! -e "$out/bin/orch-supervisor" ] && [ -e "$out/libexec/orch-supervisor" ]; then
      mkdir -p "$out/bin"
      ln -s ../libexec/orch-supervisor "$out/bin/orch-supervisor"
    fi
  '';

  meta = {
    description = "Runs LLM coding agents in QEMU microVMs with bubblewrap jails";
    license = lib.licenses.asl20;
    platforms = lib.platforms.linux;
    mainProgram = "orch";
  };
}
