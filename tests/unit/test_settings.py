"""Settings: names, precedence (OS environment > .env > ini > default), checks."""

import re
import secrets
import shutil

import pytest

from cinema_api import main
from cinema_api.settings import SettingsError, load_settings, parse_database_url, published_secrets
from tests.conftest import HERE

SECRET = secrets.token_urlsafe(48)


def ini(**values):
    base = {"cinema.jwt_secret": SECRET}
    base.update({"cinema." + key: value for key, value in values.items()})
    return base


def test_built_in_defaults(tmp_path):
    settings = load_settings(ini(), str(tmp_path), environ={})
    assert settings.environment == "production"
    assert settings.jwt_expires_in_sec == 900
    assert settings.refresh_token_ttl_sec == 7 * 86400
    assert settings.bcrypt_rounds == 12
    assert settings.bcrypt_concurrency >= 1
    assert settings.allow_manager_signup is False
    assert settings.login_limit_per_address == settings.login_limit_per_username == 10
    assert settings.cache_url == ""
    assert settings.cache_key_prefix == "cinema"  # the keys production always wrote
    assert settings.log_format == "text" and settings.log_level == "INFO"
    # The default database is a SQLite file of the mode's own next to the ini file.
    assert settings.database_url.bind_kwargs["filename"] == str(tmp_path / "production.sqlite")


def test_each_mode_has_a_database_file_of_its_own_by_default(tmp_path):
    files = {
        environment: load_settings(ini(environment=environment), str(tmp_path), environ={}).database_url.bind_kwargs["filename"]
        for environment in ("development", "testing", "production")
    }
    assert files == {name: str(tmp_path / (name + ".sqlite")) for name in files}


def test_production_ini_and_development_ini_never_share_a_database():
    """After the Quick start and cinema-seed, production.ini must not serve the demo accounts."""
    files = {name: ini_file_settings(name).database_url.bind_kwargs["filename"] for name in ("development.ini", "production.ini")}
    assert files["development.ini"] != files["production.ini"]


def test_precedence_environment_over_dotenv_over_ini(tmp_path):
    (tmp_path / ".env").write_text("BCRYPT_ROUNDS=11\nJWT_EXPIRES_IN_SEC=60\n# a comment\nLOG_LEVEL=warning\n")
    values = ini(bcrypt_rounds="10", jwt_expires_in_sec="30", refresh_token_ttl_sec="3600")
    settings = load_settings(values, str(tmp_path), environ={"BCRYPT_ROUNDS": "13"})
    assert settings.bcrypt_rounds == 13  # OS environment wins
    assert settings.jwt_expires_in_sec == 60  # .env beats the ini file
    assert settings.refresh_token_ttl_sec == 3600  # ini beats the default
    assert settings.log_level == "WARNING"


def test_environment_variable_names_are_upper_case_with_underscores(tmp_path):
    environ = {"ALLOW_MANAGER_SIGNUP": "yes", "TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16", "CORS_ORIGINS": "https://a.example https://b.example"}
    settings = load_settings(ini(), str(tmp_path), environ=environ)
    assert settings.allow_manager_signup is True
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.1/32", "192.168.0.0/16"]
    assert settings.cors_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    "value, origins",
    [
        ("*", ("*",)),
        ("https://Admin.Example.com", ("https://admin.example.com",)),  # as a browser sends it
        ("https://a.example:443, http://b.example:80", ("https://a.example", "http://b.example")),
        ("http://localhost:3000 http://127.0.0.1:8080", ("http://localhost:3000", "http://127.0.0.1:8080")),
        ("http://[::1]:3000", ("http://[::1]:3000",)),
    ],
)
def test_cors_origins_are_kept_as_browsers_send_them(tmp_path, value, origins):
    assert load_settings(ini(), str(tmp_path), environ={"CORS_ORIGINS": value}).cors_origins == origins


@pytest.mark.parametrize(
    "value",
    ["notaurl", "admin.example.com", "https://admin.example.com/", "https://admin.example.com/app",
     "https://admin.example.com:99999", "https://user@admin.example.com", "https://", "https://a.example?x=1"],
)
def test_a_cors_origin_that_cannot_match_stops_start_up(tmp_path, value):
    with pytest.raises(SettingsError) as info:
        load_settings(ini(), str(tmp_path), environ={"CORS_ORIGINS": "https://ok.example " + value})
    assert str(info.value) == "CORS_ORIGINS %r is not an origin: scheme://host[:port] or *" % value


def test_dotenv_cannot_choose_the_mode(tmp_path):
    (tmp_path / ".env").write_text("ENVIRONMENT=development\n")
    with pytest.raises(SettingsError) as info:
        load_settings(ini(environment="production"), str(tmp_path), environ={})
    assert str(info.value) == (
        "ENVIRONMENT cannot be set in %s: the ini file chooses the mode "
        "(pserve development.ini or production.ini)" % (tmp_path / ".env")
    )


def test_the_os_environment_cannot_change_the_mode_of_the_ini_file(tmp_path):
    """issue 26: ENVIRONMENT=development left exported in a shell turned production.ini into a
    development server (migrations at start, on production's database)."""
    with pytest.raises(SettingsError) as info:
        load_settings(ini(environment="production"), str(tmp_path), environ={"ENVIRONMENT": "development"}, dotenv={})
    assert str(info.value) == (
        "ENVIRONMENT=development in the environment contradicts the ini file (cinema.environment = production): "
        "the ini file chooses the mode; unset ENVIRONMENT or start the ini file of that mode"
    )
    # nor the built-in default (production) of an ini file that names no mode
    with pytest.raises(SettingsError, match="contradicts the ini file"):
        load_settings(ini(), str(tmp_path), environ={"ENVIRONMENT": "testing"}, dotenv={})
    with pytest.raises(SettingsError, match="contradicts the ini file"):
        load_settings(ini(environment="development"), str(tmp_path), environ={"ENVIRONMENT": "production"}, dotenv={})
    # repeating it is fine, in any case and spacing the ini file would accept
    for value in ("production", " Production "):
        assert load_settings(ini(environment="production"), str(tmp_path), environ={"ENVIRONMENT": value}, dotenv={}).is_production


def test_settings_can_be_built_without_the_dotenv_file(tmp_path):
    (tmp_path / ".env").write_text("ALLOW_MANAGER_SIGNUP=false\n")
    assert load_settings(ini(allow_manager_signup="true"), str(tmp_path), environ={}).allow_manager_signup is False
    assert load_settings(ini(allow_manager_signup="true"), str(tmp_path), environ={}, dotenv={}).allow_manager_signup is True


def test_scripts_load_settings_without_a_jwt_secret(tmp_path):
    settings = load_settings({"cinema.environment": "production"}, str(tmp_path), environ={}, require_secret=False)
    assert settings.jwt_secret == ""
    with pytest.raises(SettingsError, match="JWT_SECRET is not set"):
        load_settings({"cinema.environment": "production"}, str(tmp_path), environ={})


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("BCRYPT_ROUNDS", "many", "BCRYPT_ROUNDS must be an integer"),
        ("BCRYPT_ROUNDS", "3", "BCRYPT_ROUNDS must be between 4 and 31"),
        ("JWT_EXPIRES_IN_SEC", "0", "JWT_EXPIRES_IN_SEC must be between"),
        ("ALLOW_MANAGER_SIGNUP", "maybe", "ALLOW_MANAGER_SIGNUP must be true or false"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of text, json"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must start with sqlite:/// or postgresql://"),
        ("DATABASE_URL", "sqlite://", "DATABASE_URL needs a file"),
        ("DATABASE_URL", "postgresql://127.0.0.1:5432/", "DATABASE_URL names no database"),
        ("CACHE_URL", "memcached://x", "CACHE_URL must be memory://, null:// or redis://"),
        # a glob character in the prefix would make SCAN MATCH <prefix>:* find other keys
        ("CACHE_KEY_PREFIX", "cinema*", "CACHE_KEY_PREFIX must be 1 to 64 letters"),
        ("CACHE_KEY_PREFIX", "a[b]", "CACHE_KEY_PREFIX must be 1 to 64 letters"),
        ("CACHE_KEY_PREFIX", "", "CACHE_KEY_PREFIX must be 1 to 64 letters"),
        ("CACHE_KEY_PREFIX", "two words", "CACHE_KEY_PREFIX must be 1 to 64 letters"),
        ("TRUSTED_PROXIES", "not-an-ip", "TRUSTED_PROXIES 'not-an-ip' is not an IP address"),
        ("ENVIRONMENT", "staging", "ENVIRONMENT must be one of development, testing, production"),
        ("JWT_SECRET", "short", "JWT_SECRET must be at least 32 bytes"),
        ("JWT_SECRET", "", "JWT_SECRET is not set"),
    ],
)
def test_a_wrong_value_names_the_setting(tmp_path, name, value, fragment):
    with pytest.raises(SettingsError) as info:
        load_settings(ini(), str(tmp_path), environ={name: value})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def repository_secrets():
    """Every JWT secret written in the repository's ini and example files."""
    found = set()
    for name in ("development.ini", "testing.ini", "production.ini", ".env.example"):
        with open("%s/%s" % (HERE, name), encoding="utf-8") as source:
            for line in source:
                key, _, value = line.lstrip("# ").partition("=")  # a commented example counts too
                if key.strip() in ("cinema.jwt_secret", "JWT_SECRET") and value.strip():
                    found.add(value.strip())
    return sorted(found)


def test_the_repository_publishes_secrets_that_production_knows():
    assert len(repository_secrets()) >= 3
    assert set(repository_secrets()) <= published_secrets(HERE)


@pytest.mark.parametrize("secret", repository_secrets())
def test_production_refuses_every_secret_published_in_the_repository(secret, tmp_path):
    # the repository's ini and example files, without a .env of the checkout
    for name in ("development.ini", "testing.ini", "production.ini", ".env.example"):
        shutil.copyfile("%s/%s" % (HERE, name), tmp_path / name)
    with pytest.raises(SystemExit) as info:
        main({"here": str(tmp_path)}, **ini(jwt_secret=secret, environment="production"))
    assert str(info.value) == (
        "cinema_api: configuration error: JWT_SECRET is a value published in this repository: "
        "production needs a random secret of its own"
    )
    # development accepts its own documented value
    load_settings(ini(jwt_secret=secret, environment="development"), HERE, environ={}, dotenv={})


def test_a_secret_published_in_an_ini_file_beside_the_one_in_use_is_refused(tmp_path):
    published = secrets.token_urlsafe(40)
    (tmp_path / "development.ini").write_text("[app:main]\ncinema.jwt_secret = %s\n" % published)
    with pytest.raises(SettingsError, match="published in this repository"):
        load_settings(ini(jwt_secret=published), str(tmp_path), environ={})


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 40,
        "ab" * 20,
        "0123456789abcde" * 3,
        # 16 distinct bytes and more: the rule this estimate replaced let these through
        "0123456789abcdef0123456789abcdef",
        "abcdefghijklmnopqrstuvwxyz012345",
        "passwordpassword1234567890abcdef",
    ],
)
def test_production_refuses_low_entropy_secrets(tmp_path, secret):
    with pytest.raises(SettingsError) as info:
        load_settings(ini(jwt_secret=secret), str(tmp_path), environ={})
    assert re.fullmatch(
        r"JWT_SECRET has low entropy \(estimate \d+ bits, need 128\): production needs a random secret, "
        r"e\.g\. python3 -c 'import secrets; print\(secrets\.token_urlsafe\(48\)\)'",
        str(info.value),
    )
    # development and testing accept what they accepted before
    for environment in ("development", "testing"):
        assert load_settings(ini(jwt_secret=secret, environment=environment), str(tmp_path), environ={}).jwt_secret == secret


def test_main_stops_with_one_line_naming_the_setting(tmp_path):
    with pytest.raises(SystemExit) as info:
        main({"here": str(tmp_path)}, **ini(jwt_expires_in_sec="soon"))
    assert str(info.value) == "cinema_api: configuration error: JWT_EXPIRES_IN_SEC must be an integer"


def test_production_ini_refuses_to_start_without_a_jwt_secret(monkeypatch, tmp_path):
    from pyramid.paster import get_app

    from cinema_api.testing import copy_ini

    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(SystemExit, match="JWT_SECRET is not set"):
        get_app(copy_ini("production.ini", tmp_path))


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///data/x.sqlite", {"provider": "sqlite", "filename": "/srv/app/data/x.sqlite", "create_db": True}),
        ("sqlite:////var/lib/x.sqlite", {"provider": "sqlite", "filename": "/var/lib/x.sqlite", "create_db": True}),
        (
            "postgresql://cinema:p%40ss@db.internal:6432/cinema?sslmode=require",
            {"provider": "postgres", "host": "db.internal", "port": 6432, "database": "cinema", "user": "cinema", "password": "p@ss", "sslmode": "require"},
        ),
        ("postgres://127.0.0.1/test", {"provider": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "user": "postgres"}),
    ],
)
def test_database_urls(url, expected):
    assert parse_database_url(url, "/srv/app").bind_kwargs == expected


def test_summary_leaves_secrets_and_passwords_out(tmp_path):
    environ = {"DATABASE_URL": "postgresql://cinema:hunter2@127.0.0.1/db", "CACHE_URL": "redis://:pw@127.0.0.1:6379/0"}
    summary = load_settings(ini(), str(tmp_path), environ=environ).summary()
    assert SECRET not in summary and "hunter2" not in summary and ":pw@" not in summary
    assert "DATABASE_URL=postgresql://cinema:***@127.0.0.1/db" in summary


# ---------------------------------------------------------------- .env.example


def test_the_example_dotenv_lists_every_setting_but_the_mode():
    from cinema_api.settings import SCHEMA, env_name

    with open("%s/.env.example" % HERE, encoding="utf-8") as source:
        text = source.read()
    for name in SCHEMA:
        assert ("# %s=" % env_name(name) in text) == (name != "environment"), name
    for name in ("HOST", "PORT", "SHUTDOWN_TIMEOUT", "CPU_AFFINITY"):
        assert "# %s=" % name in text


def test_the_example_dotenv_sets_nothing():
    """Copied to .env as the README says, it changes no setting: nothing is active in it."""
    from dotenv import dotenv_values

    assert dotenv_values("%s/.env.example" % HERE) == {}


@pytest.mark.parametrize("ini_file", ["development.ini", "production.ini"])
def test_a_dotenv_copied_from_the_example_changes_nothing(tmp_path, ini_file):
    from pyramid.paster import get_appsettings

    from cinema_api.testing import copy_ini

    ini_settings = get_appsettings(copy_ini(ini_file, tmp_path))
    alone = load_settings(ini_settings, str(tmp_path), environ={}, require_secret=False)
    shutil.copyfile("%s/.env.example" % HERE, tmp_path / ".env")
    assert load_settings(ini_settings, str(tmp_path), environ={}, require_secret=False) == alone


def test_production_refuses_to_start_with_a_dotenv_copied_from_the_example(tmp_path, monkeypatch):
    from pyramid.paster import get_app

    from cinema_api.testing import copy_ini

    for name in ("JWT_SECRET", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    ini = copy_ini("production.ini", tmp_path)
    shutil.copyfile("%s/.env.example" % HERE, tmp_path / ".env")
    with pytest.raises(SystemExit) as info:
        get_app(ini, options={})
    assert str(info.value) == "cinema_api: configuration error: JWT_SECRET is not set: give it a random value of at least 32 bytes"
    # and with its placeholder secret uncommented, production still refuses
    with open(tmp_path / ".env", "a", encoding="utf-8") as dotenv:
        dotenv.write("JWT_SECRET=change-me-to-a-random-string-of-at-least-32-bytes\n")
    with pytest.raises(SystemExit, match="JWT_SECRET is a value published in this repository"):
        get_app(ini, options={})


def ini_file_settings(name):
    from pyramid.paster import get_appsettings

    return load_settings(get_appsettings("%s/%s" % (HERE, name)), HERE, environ={}, dotenv={}, require_secret=False)


def test_development_does_not_lock_a_developer_out_and_production_keeps_its_limits():
    development, production = ini_file_settings("development.ini"), ini_file_settings("production.ini")
    assert production.login_limit_per_address == production.login_limit_per_username == 10
    assert production.jwt_expires_in_sec == 900
    # far more failed logins than anyone types by hand, and tokens that last a working day
    assert development.login_limit_per_address >= 100 and development.login_limit_per_username >= 100
    assert development.jwt_expires_in_sec >= 8 * 3600
