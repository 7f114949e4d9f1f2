# NixOS VM test (checks.x86_64-linux.vm-test): a host running orchd from
# services.orch boots the NixOS guest of nixosModules.guest through libvirt (TCG
# inside the test VM, virtio-serial channel) and dispatches tasks into it, plus one
# task on the local backend. Run: nix build .#checks.x86_64-linux.vm-test -L
{ pkgs, self }:

pkgs.testers.runNixOSTest {
  name = "orch";

  nodes.host = { ... }: {
    imports = [ self.nixosModules.default ];

    virtualisation.memorySize = 6144;
    virtualisation.cores = 2;
    virtualisation.diskSize = 4096;

    users.users.alice = { isNormalUser = true; extraGroups = [ "orch" ]; };

    services.orch = {
      enable = true;
      settings.log_level = "debug";
      vms = {
        dev = {
          slots = 2;
          vcpus = 1;
          memoryMiB = 1536;
          accel = "tcg"; # nested: no usable KVM inside the test VM
          transport = "virtio-serial";
          bootTimeoutMs = 900000;
        };
        local = {
          backend = "local";
          slots = 1;
        };
      };
    };
  };

  testScript = ''
    import json

    host.wait_for_unit("libvirtd.service")
    host.wait_for_unit("orchd.service")
    host.wait_until_succeeds("orch status", timeout=60)

    with subtest("the control socket is for root and the orch group only"):
        host.succeed("su alice -c 'orch status'")
        host.fail("su nobody -s /bin/sh -c 'orch status'")

    with subtest("a task on the local backend"):
        out = host.succeed("orch dispatch --vm local --follow -- /bin/sh -c 'echo local-ok'")
        assert "local-ok" in out, out

    with subtest("the NixOS guest boots, says hello and runs a task"):
        # Queued until the VM's supervisor said hello; TCG inside a VM is slow.
        host.succeed("timeout 900 orch dispatch --vm dev --wait -- /bin/true")

    with subtest("the guest has no network interface"):
        host.succeed(
            "for d in $(virsh -c qemu:///system list --name); do "
            "  virsh -c qemu:///system dumpxml $d | grep -q '<interface' && exit 1; "
            "done; true"
        )

    with subtest("tasks run in the guest, in jails, and write the shared workspace"):
        out = host.succeed(
            "orch dispatch --vm dev --agent 0 --follow -- "
            "/bin/sh -c 'id -u; hostname; echo hello > /workspace/proof; ls /workspace'"
        )
        assert "100000" in out, out
        assert "proof" in out, out
        host.succeed("test \"$(stat -c %u /var/lib/orch/workspaces/dev/agent-0/proof)\" = 100000")

        out = host.succeed("orch dispatch --vm dev --agent 1 --follow -- /bin/sh -c 'ls -a /workspace'")
        assert "proof" not in out, "agent 1 sees agent 0's workspace: " + out

    with subtest("the exit status comes back"):
        host.fail("orch dispatch --vm dev --wait -- /bin/sh -c 'exit 3'")
        tasks = json.loads(host.succeed("orch tasks --json"))
        print(tasks)
  '';
}
