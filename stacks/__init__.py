"""Stack composition and typed configuration (pulumi-free except where noted)."""
