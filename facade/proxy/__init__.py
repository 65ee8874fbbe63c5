"""The local facade proxy: the same routing decisions as the ALB, on a laptop or in CI."""
