"""The entropy estimate production requires of JWT_SECRET (docs/API.md section 7)."""

import base64
import math
import os
import secrets

import pytest

from cinema_api.settings import MIN_SECRET_ENTROPY_BITS, SECRET_WORDS, SettingsError, load_settings, secret_entropy_bits

GENERATORS = {
    "secrets.token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
    "secrets.token_hex(32)": lambda: secrets.token_hex(32),
    "openssl rand -base64 32": lambda: base64.b64encode(os.urandom(32)).decode("ascii"),
}


def production(secret, here):
    return load_settings({"cinema.environment": "production", "cinema.jwt_secret": secret}, here, environ={}, dotenv={})


@pytest.mark.parametrize("generator", GENERATORS)
def test_generated_secrets_always_pass(generator, tmp_path):
    generated = [GENERATORS[generator]() for _ in range(1000)]
    lowest = min(generated, key=secret_entropy_bits)
    assert secret_entropy_bits(lowest) >= MIN_SECRET_ENTROPY_BITS + 64, lowest  # a wide margin
    assert production(lowest, str(tmp_path)).jwt_secret == lowest


@pytest.mark.parametrize(
    "secret, ceiling",
    [
        ("0123456789abcdef0123456789abcdef", 40),  # a run of digits, one of letters, the whole repeated
        ("abcdefghijklmnopqrstuvwxyz012345", 40),  # the alphabet, then digits
        ("passwordpassword1234567890abcdef", 40),  # a word repeated, the digit row, a run
    ],
)
def test_the_secrets_the_distinct_bytes_rule_let_through_estimate_far_below_the_threshold(secret, ceiling):
    assert len(set(secret)) >= 16  # what the rule this estimate replaced asked for
    assert secret_entropy_bits(secret) < ceiling < MIN_SECRET_ENTROPY_BITS


@pytest.mark.parametrize(
    "secret",
    [
        "z" * 48,  # one character repeated
        "Ab1!" * 12,  # a pattern repeated
        "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA",  # the alphabet backwards
        "98765432109876543210987654321098",  # digits backwards, repeated
        "qwertyuiopasdfghjklzxcvbnmQWERTYUIOP",  # keyboard rows
        "SecretSecretSecretSecretSecretSecret",  # a word repeated, with a capital
        "cinema-jwt-secret-key-changeme-admin-test",  # words of the list, joined
        "changeme" * 4 + "12345678",
    ],
)
def test_low_entropy_secrets_of_every_kind_are_refused(secret, tmp_path):
    assert secret_entropy_bits(secret) < MIN_SECRET_ENTROPY_BITS
    with pytest.raises(SettingsError, match=r"^JWT_SECRET has low entropy \(estimate \d+ bits, need 128\)"):
        production(secret, str(tmp_path))


def test_each_pattern_costs_what_the_docstring_says():
    letter = math.log2(26)
    assert secret_entropy_bits("q") == pytest.approx(letter)
    assert secret_entropy_bits("qq") == pytest.approx(2 * letter)  # a repeat needs 3 characters
    assert secret_entropy_bits("qqqq") == pytest.approx(letter + math.log2(1) + math.log2(3))
    assert secret_entropy_bits("abcd") == pytest.approx(math.log2(2 * 134) + math.log2(4))
    assert secret_entropy_bits("secret") == pytest.approx(math.log2(len(SECRET_WORDS)))
    assert secret_entropy_bits("Secret") == pytest.approx(math.log2(len(SECRET_WORDS)) + 1)
    # the classes the secret uses make the cost of each character on its own
    assert secret_entropy_bits("q7") == pytest.approx(2 * math.log2(36))
    assert secret_entropy_bits("q7Q") == pytest.approx(3 * math.log2(62))
    assert secret_entropy_bits("q7Q-") == pytest.approx(4 * math.log2(95))


def test_patterns_in_a_random_key_do_not_make_it_weak(tmp_path):
    secret = secrets.token_urlsafe(32) + "password"
    assert production(secret, str(tmp_path)).jwt_secret == secret


def test_the_estimate_is_not_fooled_by_length_alone(tmp_path):
    """A long secret made of patterns is as weak as its patterns, whatever its length."""
    secret = "password" * 1000 + "abcdefghijklmnopqrstuvwxyz" * 100
    assert secret_entropy_bits(secret) < MIN_SECRET_ENTROPY_BITS
