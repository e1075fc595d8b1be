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


@pytest.mark.parametrize("junk", [
    "", "v1", "v2|http://a:1|bucket|AAAAAAAA|BBBBBBBB", "v1|http://a:1|bucket|AAAAAAAA",
    "v1|http://a:1|bucket|AAAAAAAA|BBBBBBBB|extra", "v1|ftp://a|bucket|AAAAAAAA|BBBBBBBB",
    "v1|http://user@a|bucket|AAAAAAAA|BBBBBBBB", "v1|http://a/path|bucket|AAAAAAAA|BBBBBBBB",
    "v1|http://a:99999|bucket|AAAAAAAA|BBBBBBBB", "v1|http://a:1?q=1|bucket|AAAAAAAA|BBBBBBBB",
    "v1|http://a..b|bucket|AAAAAAAA|BBBBBBBB", "v1|http://a|Bucket|AAAAAAAA|BBBBBBBB",
    "v1|http://a|b|AAAAAAAA|BBBBBBBB", "v1|http://a|bucket-|AAAAAAAA|BBBBBBBB",
    "v1|http://a|bucket|AAAA|BBBBBBBB", "v1|http://a|bucket|AAAAAAA!|BBBBBBBB",
    "v1|http://a|bucket|AAAAAAAA|BBB BBBBB", "v1|http://a|bucket|AAAAAAAA|BBBBBBBB\n",
    "v1|http://é|bucket|AAAAAAAA|BBBBBBBB", "v1|http://a|bucket|AAAAAAAA|" + "B" * 600,
    None, 42, b"\xff\xfe",
])
def test_junk_is_rejected(junk):
    with pytest.raises(CommitmentError):
        parse_commitment(junk)


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
