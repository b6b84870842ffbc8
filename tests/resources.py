"""Hedgehog documents for tests."""

from __future__ import annotations

VPC = b"""apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: %s
spec:
  subnets:
    default:
      subnet: 10.0.%d.0/24
      gateway: 10.0.%d.1
      vlan: %d
"""


def vpc(name: str, n: int) -> bytes:
    """A valid VPC named ``name`` whose subnet is 10.0.<n>.0/24 on VLAN 1000+n."""
    return VPC % (name.encode(), n, n, 1000 + n)
