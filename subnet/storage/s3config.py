"""Where an S3 service is and which key opens it; a plain dataclass, so modules that only describe
storage (commitments, settings files) do not import boto3."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class S3Config:
    endpoint_url: str | None   # None: AWS
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    addressing_style: str = "path"  # SeaweedFS and MinIO on localhost need path-style
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
