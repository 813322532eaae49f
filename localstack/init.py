"""Creates xlport's AWS resources on LocalStack, idempotently.

The same shape as infra/ (Terraform) builds on AWS: a private bucket with CORS
for the browser, `imports` and `exports` queues each with a dead-letter queue
and a redrive policy, and an S3 ObjectCreated notification for `imports/` to
the imports queue. Running it again converges to the same state.
"""

import argparse
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--bucket", default="xlport")
    p.add_argument("--queue-prefix", default="xlport-")
    p.add_argument("--visibility-timeout", type=int, default=900,
                   help="seconds; >= 6 x the workers' timeout on AWS")
    p.add_argument("--max-receive-count", type=int, default=3)
    p.add_argument("--cors-origin", action="append", default=None)
    a = p.parse_args()

    kw = dict(endpoint_url=a.endpoint, region_name=a.region,
              aws_access_key_id="test", aws_secret_access_key="test",
              config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}))
    s3 = boto3.client("s3", **kw)
    sqs = boto3.client("sqs", **kw)

    try:
        s3.create_bucket(Bucket=a.bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_public_access_block(Bucket=a.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_cors(Bucket=a.bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": a.cors_origin or ["*"],
        "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag", "Content-Length", "Content-Disposition"],
        "MaxAgeSeconds": 3600,
    }]})

    queue_arns = {}
    for name in ("imports", "exports"):
        base = f"{a.queue_prefix}{name}"
        dlq_url = ensure_queue(sqs, f"{base}-dlq", {"MessageRetentionPeriod": "1209600"})
        dlq_arn = arn_of(sqs, dlq_url)
        url = ensure_queue(sqs, base, {
            "VisibilityTimeout": str(a.visibility_timeout),
            "MessageRetentionPeriod": "345600",
            "ReceiveMessageWaitTimeSeconds": "10",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": a.max_receive_count}),
        })
        queue_arns[name] = arn_of(sqs, url)
        if name == "imports":
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arns[name],
                    "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{a.bucket}"}},
                }],
            })})
        print(f"queue {base}: {url} (dlq {base}-dlq, maxReceiveCount {a.max_receive_count}, "
              f"visibility {a.visibility_timeout}s)")

    wanted = [{
        "Id": "xlport-imports",
        "QueueArn": queue_arns["imports"],
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "imports/"}]}},
    }]
    current = s3.get_bucket_notification_configuration(Bucket=a.bucket).get("QueueConfigurations", [])
    if not same_notifications(current, wanted):
        # S3 sends an s3:TestEvent to the queue now; the import worker ignores it.
        s3.put_bucket_notification_configuration(
            Bucket=a.bucket, NotificationConfiguration={"QueueConfigurations": wanted})
    print(f"bucket {a.bucket}: CORS set, imports/ -> {a.queue_prefix}imports")
    return 0


def ensure_queue(sqs, name, attributes):
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return url
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue",
                                               "QueueDoesNotExist"):
            raise
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def arn_of(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def same_notifications(current, wanted):
    def key(c):
        rules = sorted((r["Name"].lower(), r["Value"])
                       for r in c.get("Filter", {}).get("Key", {}).get("FilterRules", []))
        return (c.get("QueueArn"), tuple(sorted(c.get("Events", []))), tuple(rules))
    return sorted(map(key, current)) == sorted(map(key, wanted))


if __name__ == "__main__":
    sys.exit(main())
