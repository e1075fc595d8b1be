"""S3 storage: the embedded SeaweedFS server, the boto3 client, chain commitments of bucket access."""
