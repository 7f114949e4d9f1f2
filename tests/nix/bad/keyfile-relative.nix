# expect: keyFile must be an absolute path
{ ... }: {
  services.orch = {
    enable = true;
    llm.upstreams.openai = { kind = "openai"; keyFile = "secrets/openai"; };
  };
}
