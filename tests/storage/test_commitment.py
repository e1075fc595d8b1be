"""Chain commitment of a bucket's endpoint and read key: round trip and junk rejection."""
from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subnet.storage.commitment import (MAX_COMMITMENT_CHARS, BucketCommitment, CommitmentError,
                                       format_commitment, parse_commitment)

GOOD = BucketCommitment("http://127.0.0.1:8333", "tessera-miner-0", "TSR0123456789ABCDEF0", "abc_DEF-123/+=xyz")


def test_round_trip():
    text = format_commitment(GOOD)
    assert text == "v1|http://127.0.0.1:8333|tessera-miner-0|TSR0123456789ABCDEF0|abc_DEF-123/+=xyz"
    assert parse_commitment(text) == GOOD
    assert parse_commitment(text.encode()) == GOOD
    aws = BucketCommitment("https://s3.us-east-1.amazonaws.com", "my.bucket-1", "AKIAIOSFODNN7EXAMPLE",
                           "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert parse_commitment(format_commitment(aws)) == aws
    assert parse_commitment(format_commitment(aws)).s3_config().endpoint_url == aws.endpoint


NOT_HTTP = r"endpoint .* is not http\(s\)://host\[:port\]"
BAD_BUCKET = r"bucket .* is not a valid S3 bucket name"
ACCESS = "access key must be 8..128 letters and digits"
SECRET = r"secret key must be 8..128 of letters, digits and / \+ = _ -"


@pytest.mark.parametrize("junk, names", [
    ("", r"unknown commitment version '', expected 'v1'"),
    ("v1", "commitment has 1 fields, expected 5"),
    ("v2|http://a:1|bucket|AAAAAAAA|BBBBBBBB", r"unknown commitment version 'v2', expected 'v1'"),
    ("v1|http://a:1|bucket|AAAAAAAA", "commitment has 4 fields, expected 5"),
    ("v1|http://a:1|bucket|AAAAAAAA|BBBBBBBB|extra", "commitment has 6 fields, expected 5"),
    ("v1|ftp://a|bucket|AAAAAAAA|BBBBBBBB", NOT_HTTP),
    ("v1|http://user@a|bucket|AAAAAAAA|BBBBBBBB", NOT_HTTP),
    ("v1|http://a/path|bucket|AAAAAAAA|BBBBBBBB", NOT_HTTP),
    ("v1|http://a:99999|bucket|AAAAAAAA|BBBBBBBB", "endpoint port 99999 is out of range"),
    ("v1|http://a:0|bucket|AAAAAAAA|BBBBBBBB", "endpoint port 0 is out of range"),
    ("v1|http://a:65536|bucket|AAAAAAAA|BBBBBBBB", "endpoint port 65536 is out of range"),
    ("v1|http://a:1?q=1|bucket|AAAAAAAA|BBBBBBBB", NOT_HTTP),
    ("v1|http://a..b|bucket|AAAAAAAA|BBBBBBBB", NOT_HTTP),
    ("v1|http://a|Bucket|AAAAAAAA|BBBBBBBB", BAD_BUCKET),
    ("v1|http://a|b|AAAAAAAA|BBBBBBBB", BAD_BUCKET),
    ("v1|http://a|bucket-|AAAAAAAA|BBBBBBBB", BAD_BUCKET),
    ("v1|http://a|my..bucket|AAAAAAAA|BBBBBBBB", r"bucket 'my..bucket' is not a valid S3 bucket name"),
    ("v1|http://a|bucket|AAAA|BBBBBBBB", ACCESS),
    ("v1|http://a|bucket|AAAAAAA!|BBBBBBBB", ACCESS),
    ("v1|http://a|bucket|AAAAAAAA|BBB BBBBB", SECRET),
    ("v1|http://a|bucket|AAAAAAAA|BBBBBBBB\n", SECRET),
    ("v1|http://é|bucket|AAAAAAAA|BBBBBBBB", "commitment is not ASCII"),
    ("v1|http://a|bucket|AAAAAAAA|" + "B" * 600, "commitment is 628 characters, more than 512"),
    (None, "commitment must be a string, got NoneType"),
    (42, "commitment must be a string, got int"),
    (b"\xff\xfe", "commitment is not ASCII"),
])
def test_junk_is_rejected_with_a_message_naming_the_part(junk, names):
    with pytest.raises(CommitmentError, match=names) as err:
        parse_commitment(junk)
    assert err.value.reason == "bad_commitment"


def test_the_edges_of_each_range_are_inside_it():
    """Port 1 and 65535, a commitment of exactly 512 characters: accepted; one past: refused."""
    for port in (1, 65535):
        edge = BucketCommitment(f"http://a:{port}", "bucket", "AAAAAAAA", "BBBBBBBB")
        assert parse_commitment(format_commitment(edge)) == edge
    bucket, access, secret = "b" * 63, "A" * 128, "S" * 128      # each at its own maximum
    host = "h" * (MAX_COMMITMENT_CHARS - len("v1|http://|||") - 63 - 128 - 128)
    longest = BucketCommitment("http://" + host, bucket, access, secret)
    text = format_commitment(longest)
    assert len(text) == MAX_COMMITMENT_CHARS and parse_commitment(text) == longest
    too_long = BucketCommitment(longest.endpoint + "h", bucket, access, secret)
    with pytest.raises(CommitmentError, match="commitment is 513 characters, more than 512"):
        format_commitment(too_long)
    with pytest.raises(CommitmentError, match="commitment is 513 characters, more than 512"):
        parse_commitment(text[:7] + "h" + text[7:])
    with pytest.raises(CommitmentError, match="endpoint port 0 is out of range"):
        format_commitment(BucketCommitment("http://a:0", "bucket", "AAAAAAAA", "BBBBBBBB"))


def test_s3_config_carries_the_read_key_and_region():
    config = GOOD.s3_config()
    assert (config.endpoint_url, config.access_key, config.secret_key, config.region) == (
        GOOD.endpoint, GOOD.access_key, GOOD.secret_key, "us-east-1")
    assert GOOD.s3_config(region="eu-west-2").region == "eu-west-2"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600),
                 st.lists(st.text(max_size=40), min_size=5, max_size=5).map(lambda f: "v1|" + "|".join(f[1:]))))
def test_parser_only_raises_commitment_error_and_round_trips_what_it_accepts(text):
    try:
        parsed = parse_commitment(text)
    except CommitmentError:
        return
    formatted = format_commitment(parsed)
    assert len(formatted) <= MAX_COMMITMENT_CHARS
    assert parse_commitment(formatted) == parsed


def test_commitment_and_settings_modules_do_not_load_boto3():
    # Parsing chain commitments and settings files must not pull in the S3 client stack.
    code = ("import sys, subnet.storage.commitment, subnet.storage.config, subnet.storage.retention; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
