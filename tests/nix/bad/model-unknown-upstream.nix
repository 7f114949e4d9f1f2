# expect: "claude-opus".upstream: "antropic" is not in services.orch.llm.upstreams
{ ... }: {
  services.orch = {
    enable = true;
    llm.upstreams.anthropic = { kind = "anthropic"; keyFile = "/run/secrets/anthropic"; };
    llm.models.claude-opus = { upstream = "antropic"; inputUsdPerMtok = 15; outputUsdPerMtok = 75; };
  };
}
