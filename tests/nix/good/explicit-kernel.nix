# A VM booting its own kernel; another one on the flake's image with every VM key set.
{ ... }: {
  services.orch = {
    enable = true;
    guestImage = null;
    vms.custom = {
      kernel = "/srv/images/vmlinuz";
      initrd = "/srv/images/initrd.img";
      cmdline = "console=ttyS0 root=/dev/vda";
      vcpus = 8;
      memoryMiB = 16384;
      slots = 64;
      transport = "vsock";
      accel = "kvm";
      bootTimeoutMs = 30000;
    };
    llm.upstreams.local = { kind = "openai"; baseUrl = "http://127.0.0.1:8080"; keyFile = "/etc/orch/local.key"; };
    llm.models.qwen = { upstream = "local"; inputUsdPerMtok = 0; outputUsdPerMtok = 0.5; };
    llm.budgets = { agentTokens = 1000000; taskTokens = 100000; };
  };
}
