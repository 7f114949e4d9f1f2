# The smallest configuration: one libvirt VM named "default" booting the guest image.
{ ... }: { services.orch.enable = true; }
