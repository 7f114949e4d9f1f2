# expect: keyFile is inside the Nix store
{ ... }: {
  services.orch = {
    enable = true;
    llm.upstreams.anthropic = {
      kind = "anthropic";
      # What "${./key}" would give: the key copied into the store.
      keyFile = "/nix/store/00000000000000000000000000000000-anthropic-key";
    };
  };
}
