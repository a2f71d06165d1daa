"""Settings: built-in defaults, ini, ``.env`` and the OS environment merged in one place.

Every setting has an ini key ``cinema.<name>`` and an environment variable ``<NAME>``
(upper case, dots become ``_``). Precedence: OS environment > ``.env`` (next to the ini
file) > ini > built-in default. Values are parsed and checked here, once, at start-up:
a wrong value stops the application with a one-line message naming the setting.

``.env`` holds a machine's values (secrets, addresses); it cannot choose the mode: the ini file
does. ``ENVIRONMENT`` in ``.env`` is refused, and ``ENVIRONMENT`` in the OS environment may only
repeat the ini file's own, so neither a ``.env`` written for development nor a variable left
exported in a shell can turn ``production.ini`` into a development server.
"""

import ipaddress
import math
import os
import re
from dataclasses import dataclass, fields
from urllib.parse import parse_qsl, unquote, urlsplit

from dotenv import dotenv_values

#: Secrets published in this repository (its ini and example files, its documents, its tests);
#: never acceptable in production. The ini and example files next to the ini file in use are read
#: too, so a value published there is refused as well. ``tests/unit/test_published_secrets.py``
#: scans every tracked file and fails when a secret written there is accepted by production:
#: a new one that the entropy estimate does not refuse belongs here.
PUBLISHED_SECRETS = frozenset(
    {
        "change-me-to-a-random-string-of-at-least-32-bytes",
        "development-only-secret-do-not-use-in-production",
        "testing-only-secret-that-is-long-enough-0123456789",
        "a-real-production-secret-0123456789abcdef",
        "another-secret-that-is-long-enough-987654321",
    }
)
SECRET_SOURCES = ("development.ini", "testing.ini", "production.ini", ".env.example")
SECRET_LINE_RE = re.compile(r"^\s*(?:cinema\.jwt_secret\s*=|JWT_SECRET\s*=)\s*(\S+)\s*$", re.MULTILINE)

#: The entropy estimate (:func:`secret_entropy_bits`) production requires of ``JWT_SECRET``.
#: 128 bits is the strength NIST SP 800-57 asks of a key today: guessing the secret must cost
#: at least as much as guessing a random 128-bit key, even for an attacker who knows how people
#: build secrets. Random 32-byte values as generated clear it with a wide margin (written as
#: ``secrets.token_urlsafe(32)``, ``secrets.token_hex(32)`` or ``openssl rand -base64 32``, the
#: lowest of 20,000 of each estimated 235, 284 and 258 bits); 32 random lower-case letters
#: estimate about 150, and a 16-byte key in hex about 165 (the lowest of 5,000: 135).
MIN_SECRET_ENTROPY_BITS = 128

#: Runs are steps along one of these, either way: the alphabet, the digits, the keyboard's rows.
SECRET_RUN_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "QWERTYUIOP",
    "ASDFGHJKL",
    "ZXCVBNM",
    "!@#$%^&*()",
)
#: Words people put in secrets (matched in any case), from the examples of this and other projects.
SECRET_WORDS = frozenset(
    """
    password passwd pass secret secrets changeme change admin administrator root super user users
    cinema movie movies ticket tickets jwt key keys token tokens sign signing hmac access refresh
    session cookie auth test testing tests example sample demo default dummy fake development dev
    production prod staging local only real long enough another insecure unsafe random string
    value letmein welcome qwerty login master hello private public server django flask pyramid
    api app application this that the and your our not use please replace here foo bar baz
    least byte bytes must should some correct horse battery staple
    """.split()
)
#: A run, a word or a repeat needs at least this many characters.
SECRET_MIN_PATTERN = 3
#: Repeats are looked for among the latest earlier places of their first three characters, each
#: compared up to this length; one that reaches it is followed to its end once and carried along
#: the positions it covers, so the work stays linear in the secret's length, repeats included.
SECRET_REPEAT_CANDIDATES = 8
SECRET_MAX_REPEAT = 64

ENVIRONMENTS = ("development", "testing", "production")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting has a wrong value; the message names the setting."""


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed ``DATABASE_URL``: the Pony binding and the yoyo URL of one database."""

    url: str
    provider: str  # "sqlite" | "postgres"
    bind_kwargs: dict

    @property
    def is_sqlite(self):
        return self.provider == "sqlite"

    @property
    def display(self):
        return redact_url(self.url)


def redact_url(url):
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def parse_database_url(value, here):
    """Parse a SQLAlchemy-style URL; relative SQLite paths resolve against ``here``."""
    parts = urlsplit(value)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        rest = value.split("://", 1)[1] if "://" in value else ""
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise ValueError("needs a file: sqlite:///relative.sqlite or sqlite:////absolute.sqlite")
        path = rest[1:].split("?", 1)[0]
        if not os.path.isabs(path):
            path = os.path.join(here, path)
        path = os.path.normpath(path)
        return DatabaseURL("sqlite:///" + path, "sqlite", {"provider": "sqlite", "filename": path, "create_db": True})
    if scheme in ("postgresql", "postgres"):
        database = parts.path.lstrip("/")
        if not database:
            raise ValueError("names no database: postgresql://user:password@host:port/db")
        try:
            port = parts.port or 5432
        except ValueError:
            raise ValueError("has an invalid port") from None
        kwargs = {
            "provider": "postgres",
            "host": parts.hostname or "127.0.0.1",
            "port": port,
            "database": unquote(database),
            "user": unquote(parts.username or "postgres"),
        }
        if parts.password:
            kwargs["password"] = unquote(parts.password)
        kwargs.update(parse_qsl(parts.query))
        url = parts._replace(scheme="postgresql").geturl()
        return DatabaseURL(url, "postgres", kwargs)
    raise ValueError("must start with sqlite:/// or postgresql://")


def parse_cache_url(value, here=None):
    """Check a ``CACHE_URL``: ``memory://``, ``null://`` or ``redis://host:port/db``; empty: unset."""
    value = value.strip()
    if not value:
        return ""
    scheme = urlsplit(value).scheme
    if scheme not in ("memory", "null", "redis", "rediss"):
        raise ValueError("must be memory://, null:// or redis://host:port/db")
    if scheme.startswith("redis"):
        try:
            urlsplit(value).port  # noqa: B018 (reading it raises ValueError for a bad port)
        except ValueError:
            raise ValueError("has an invalid port") from None
    return value


def _bool(value, here=None):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _int_between(low, high):
    def parse(value, here=None):
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError("must be an integer") from None
        if not low <= number <= high:
            raise ValueError("must be between %d and %d" % (low, high))
        return number

    return parse


def _choice(options, transform=str.lower):
    def parse(value, here=None):
        text = transform(str(value).strip())
        if text not in options:
            raise ValueError("must be one of " + ", ".join(options))
        return text

    return parse


def _list(value, here=None):
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return tuple(item for item in str(value).replace(",", " ").split() if item)


def _networks(value, here=None):
    networks = []
    for item in _list(value):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError("%r is not an IP address or network" % item) from None
    return tuple(networks)


def _str(value, here=None):
    return str(value).strip()


KEY_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def parse_key_prefix(value, here=None):
    """``CACHE_KEY_PREFIX``: what every key the application writes to Redis starts with (then a
    ``:``). Letters, digits and ``_.:-`` only: the keys of a prefix are found with ``SCAN MATCH
    <prefix>:*``, where a glob character would match other keys."""
    value = str(value).strip()
    if not KEY_PREFIX_RE.match(value):
        raise ValueError("must be 1 to 64 letters, digits or _ . : - (no space, no * ? [ ])")
    return value


ORIGIN_RE = re.compile(r"^([a-z][a-z0-9+.-]*)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?$")
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(value):
    """``scheme://host[:port]`` as a browser sends it in ``Origin`` (scheme and host in lower
    case, no default port), or ``*``; anything else (a path, a trailing slash, a bare host)
    could never match and is a mistake."""
    if value == "*":
        return value
    match = ORIGIN_RE.match(value.lower())
    port = int(match.group(3)) if match and match.group(3) else None
    if not match or (port is not None and not 1 <= port <= 65535):
        raise ValueError("%r is not an origin: scheme://host[:port] or *" % value)
    scheme, host = match.group(1), match.group(2)
    if port is None or DEFAULT_PORTS.get(scheme) == port:
        return "%s://%s" % (scheme, host)
    return "%s://%s:%d" % (scheme, host, port)


def _origins(value, here=None):
    return tuple(parse_origin(item) for item in _list(value))


def _cpu_count(values):
    return os.cpu_count() or 1


def _database_of_the_environment(values):
    """Each mode has its own SQLite file, so production never serves development's demo data."""
    return "sqlite:///%s.sqlite" % values["environment"]


# name: (parser, built-in default). A callable default is computed at load time from the values
# read before it (in this order).
SCHEMA = {
    "environment": (_choice(ENVIRONMENTS), "production"),
    "database_url": (parse_database_url, _database_of_the_environment),
    "cache_url": (parse_cache_url, ""),
    "cache_key_prefix": (parse_key_prefix, "cinema"),
    "database_timeout_sec": (_int_between(1, 300), 5),
    "jwt_secret": (_str, ""),
    "jwt_expires_in_sec": (_int_between(1, 86400 * 30), 900),
    "refresh_token_ttl_sec": (_int_between(60, 86400 * 365), 7 * 86400),
    "bcrypt_rounds": (_int_between(4, 31), 12),
    "bcrypt_concurrency": (_int_between(1, 1024), _cpu_count),
    "allow_manager_signup": (_bool, False),
    "rooms_required": (_bool, False),
    "login_limit_per_address": (_int_between(1, 1_000_000), 10),
    "login_limit_per_username": (_int_between(1, 1_000_000), 10),
    "trusted_proxies": (_networks, ""),
    "cors_origins": (_origins, ""),
    "enable_trace_logs": (_bool, False),
    "enable_cache_trace_logs": (_bool, False),
    "log_format": (_choice(LOG_FORMATS), "text"),
    "log_level": (_choice(LOG_LEVELS, str.upper), "INFO"),
    "metrics_enabled": (_bool, True),
    "metrics_allow": (_networks, "127.0.0.1/8 ::1"),
}

#: Settings never printed in logs.
SECRETS = frozenset({"jwt_secret"})

CACHE_BACKENDS = ("memory", "redis", "null")
DEFAULT_CACHE_REGIONS = "movies sessions"
DEFAULT_CACHE_EXPIRATION = 300
DEFAULT_CACHE_MAX_ENTRIES = 10_000
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class RegionConfig:
    """One cache region: ``cinema.cache.<name>.backend``, ``.expiration_time``, ``.arguments.*``."""

    name: str
    backend: str
    expiration_time: int
    max_entries: int
    url: str = None

    def describe(self):
        return "%s:%s" % (self.name, redact_url(self.url) if self.url else self.backend)


def cache_regions(ini_settings, cache_url):
    """The regions named by ``cinema.cache.regions``; ``CACHE_URL`` replaces every backend."""
    names = _list(ini_settings.get("cinema.cache.regions", DEFAULT_CACHE_REGIONS))
    if not names:
        raise SettingsError("cinema.cache.regions names no region")
    return tuple(_region(name, ini_settings, cache_url) for name in names)


def _region(name, ini, cache_url):
    prefix = "cinema.cache.%s." % name
    backend = ini.get(prefix + "backend", "memory").strip()
    url = ini.get(prefix + "arguments.url", "").strip() or None
    if cache_url:
        scheme = urlsplit(cache_url).scheme
        backend = "redis" if scheme.startswith("redis") else scheme
        url = cache_url if backend == "redis" else None
    if backend not in CACHE_BACKENDS:
        raise SettingsError("%sbackend must be one of %s" % (prefix, ", ".join(CACHE_BACKENDS)))
    numbers = {}
    for key, default in (("expiration_time", DEFAULT_CACHE_EXPIRATION), ("arguments.max_entries", DEFAULT_CACHE_MAX_ENTRIES)):
        try:
            numbers[key] = _int_between(1, 10**9)(ini.get(prefix + key, default))
        except ValueError as exc:
            raise SettingsError("%s%s %s" % (prefix, key, exc)) from None
    if backend == "redis":
        url = parse_cache_url(url or DEFAULT_REDIS_URL)
    return RegionConfig(name, backend, numbers["expiration_time"], numbers["arguments.max_entries"], url if backend == "redis" else None)


@dataclass(frozen=True)
class Settings:
    """The typed, checked settings of one application."""

    environment: str
    database_url: DatabaseURL
    cache_url: str
    cache_key_prefix: str
    database_timeout_sec: int
    jwt_secret: str
    jwt_expires_in_sec: int
    refresh_token_ttl_sec: int
    bcrypt_rounds: int
    bcrypt_concurrency: int
    allow_manager_signup: bool
    rooms_required: bool
    login_limit_per_address: int
    login_limit_per_username: int
    trusted_proxies: tuple
    cors_origins: tuple
    enable_trace_logs: bool
    enable_cache_trace_logs: bool
    log_format: str
    log_level: str
    metrics_enabled: bool
    metrics_allow: tuple
    here: str
    cache_regions: tuple = ()

    @property
    def is_production(self):
        return self.environment == "production"

    def summary(self):
        """A one-line description of the settings, secrets left out."""
        items = []
        for field in fields(self):
            name = field.name
            if name in SECRETS or name == "here":
                continue
            value = getattr(self, name)
            if name == "cache_regions":
                value = ",".join(region.describe() for region in value)
            elif isinstance(value, DatabaseURL):
                value = value.display
            elif name == "cache_url":
                value = redact_url(value)
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            items.append("%s=%s" % (name.upper(), value))
        return " ".join(items)


def env_name(name):
    """``jwt_secret`` -> ``JWT_SECRET``; dots become underscores."""
    return name.replace(".", "_").upper()


def read_dotenv(here):
    """The variables of the ``.env`` file next to the ini file, if there is one."""
    path = os.path.join(here, ".env")
    if not os.path.isfile(path):
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


#: Settings that ``.env`` may not hold, and that the OS environment may repeat but not change:
#: the mode is chosen by the ini file.
CHOSEN_BY_THE_INI_FILE = frozenset({"environment"})


def load_settings(ini_settings, here, environ=None, dotenv=None, require_secret=True):
    """Merge and check every setting; raise :class:`SettingsError` naming the first bad one.

    ``dotenv``: the variables of ``.env`` (default: read from ``here``; ``{}`` ignores the file).
    ``require_secret=False`` is for the console scripts, which sign no token: ``JWT_SECRET``
    is then neither required nor checked."""
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(here) if dotenv is None else dotenv
    for name in CHOSEN_BY_THE_INI_FILE:
        if env_name(name) in dotenv:
            raise SettingsError(
                "%s cannot be set in %s: the ini file chooses the mode (pserve development.ini or production.ini)"
                % (env_name(name), os.path.join(here, ".env"))
            )
    values = {}
    for name, (parse, default) in SCHEMA.items():
        key = env_name(name)
        if key in environ and name not in CHOSEN_BY_THE_INI_FILE:
            raw = environ[key]
        elif key in dotenv:
            raw = dotenv[key]
        elif "cinema." + name in ini_settings:
            raw = ini_settings["cinema." + name]
        else:
            raw = default(values) if callable(default) else default
        try:
            values[name] = parse(raw, here)
            given = parse(environ[key], here) if key in environ and name in CHOSEN_BY_THE_INI_FILE else values[name]
        except ValueError as exc:
            raise SettingsError("%s %s" % (key, exc)) from None
        if given != values[name]:
            raise SettingsError(
                "%s=%s in the environment contradicts the ini file (cinema.%s = %s): the ini file chooses "
                "the mode; unset %s or start the ini file of that mode" % (key, given, name, values[name], key)
            )
    settings = Settings(here=here, cache_regions=cache_regions(ini_settings, values["cache_url"]), **values)
    if require_secret:
        _check_secret(settings)
    return settings


def _check_secret(settings):
    secret = settings.jwt_secret
    if not secret:
        raise SettingsError("JWT_SECRET is not set: give it a random value of at least 32 bytes")
    if len(secret.encode("utf-8")) < 32:
        raise SettingsError("JWT_SECRET must be at least 32 bytes long")
    if not settings.is_production:
        return
    if secret in published_secrets(settings.here):
        raise SettingsError("JWT_SECRET is a value published in this repository: production needs a random secret of its own")
    bits = secret_entropy_bits(secret)
    if bits < MIN_SECRET_ENTROPY_BITS:
        raise SettingsError(
            "JWT_SECRET has low entropy (estimate %d bits, need %d): production needs a random secret, "
            "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))'" % (int(bits), MIN_SECRET_ENTROPY_BITS)
        )


def _character_class_size(secret):
    """How many characters a random one of the secret's kinds could have been: the sum of the
    sizes of the classes it uses (lower case 26, upper case 26, digits 10, other ASCII 33,
    anything else 100)."""
    classes = {}
    for char in secret:
        if "a" <= char <= "z":
            classes["lower"] = 26
        elif "A" <= char <= "Z":
            classes["upper"] = 26
        elif "0" <= char <= "9":
            classes["digit"] = 10
        elif char < "\x7f":
            classes["ascii"] = 33
        else:
            classes["other"] = 100
    return sum(classes.values())


_RUN_PLACES = {}
for _sequence in SECRET_RUN_SEQUENCES:
    for _index, _char in enumerate(_sequence):
        _RUN_PLACES.setdefault(_char, []).append((_sequence, _index))
del _sequence, _index, _char
_WORD_LENGTHS = sorted({len(word) for word in SECRET_WORDS})


def secret_entropy_bits(secret):
    """An estimate of the bits of a secret: what guessing it costs someone who knows how people
    build secrets. In the spirit of zxcvbn (Wheeler, USENIX Security 2016), small and our own.

    The secret is split into the cheapest sequence of patterns, whose costs in bits add up
    (dynamic programming over the positions):

    - a character on its own: log2 of the size of the classes the secret uses
      (lower case 26, upper case 26, digits 10, other ASCII 33, anything else 100, summed);
    - a run of 3 or more steps along the alphabet, the digits or a keyboard row, either way
      (``abcdef``, ``987654``, ``qwerty``): log2(where it starts and which way, 2 x 134
      places) + log2(its length);
    - a word of :data:`SECRET_WORDS` (``password``, ``secret``, ``changeme``, ...), in any case:
      log2(the number of words), plus 1 bit when it has a capital;
    - a repeat of 3 or more characters of what came before, overlapping included (``aaaa``,
      ``abab``, ``passwordpassword``): log2(the number of places it could copy from) +
      log2(its length).

    Every pattern is looked for at every position within a bounded distance (runs within their
    sequence, words within their length, repeats among the latest places their first three
    characters appeared, compared up to :data:`SECRET_MAX_REPEAT` characters and a longer one
    carried along the positions it covers), so the cost is linear in the secret's length (about
    20 microseconds a character at worst); no regular expression is involved.

    It is an estimate: it knows a few words, not a dictionary, so a passphrase of words it does
    not know estimates high. Its figures: the published ``passwordpassword1234567890abcdef`` and
    ``0123456789abcdef0123456789abcdef`` estimate 34.6 and 30 bits, random 32-byte keys as generated
    above 230 (see :data:`MIN_SECRET_ENTROPY_BITS`).
    """
    size = len(secret)
    char_bits = math.log2(max(_character_class_size(secret), 2))
    word_bits = math.log2(len(SECRET_WORDS))
    run_bits = math.log2(2 * sum(len(sequence) for sequence in SECRET_RUN_SEQUENCES))
    best = [0.0] + [math.inf] * size

    def relax(end, bits):
        if bits < best[end]:
            best[end] = bits

    latest = {}  # the first three characters of a repeat -> the latest places they appeared
    # the long repeat found last ends at copy_end, and repeats what is `copy_back` before it
    copy_end = copy_back = 0
    for start in range(size):
        here = best[start]
        relax(start + 1, here + char_bits)
        # runs
        for sequence, index in _RUN_PLACES.get(secret[start], ()):
            for step in (1, -1):
                length = 1
                while (
                    start + length < size
                    and 0 <= index + step * length < len(sequence)
                    and secret[start + length] == sequence[index + step * length]
                ):
                    length += 1
                for end_length in range(SECRET_MIN_PATTERN, length + 1):
                    relax(start + end_length, here + run_bits + math.log2(end_length))
        # words
        for length in _WORD_LENGTHS:
            word = secret[start : start + length]
            if len(word) == length and word.lower() in SECRET_WORDS:
                relax(start + length, here + word_bits + (1 if word != word.lower() else 0))
        # repeats of what came before
        longest = 0
        if start < copy_end:  # inside the long repeat found before, which goes on from here
            while copy_end < size and secret[copy_end] == secret[copy_end - copy_back]:
                copy_end += 1
            longest = copy_end - start
        key = secret[start : start + SECRET_MIN_PATTERN]
        if len(key) == SECRET_MIN_PATTERN:
            places = latest.setdefault(key, [])
            for place in reversed(places):  # the latest first; an earlier one must do better
                if longest >= SECRET_MAX_REPEAT:
                    break
                if longest and (start + longest >= size or secret[place + longest] != secret[start + longest]):
                    continue
                length = SECRET_MIN_PATTERN
                while length < SECRET_MAX_REPEAT and start + length < size and secret[place + length] == secret[start + length]:
                    length += 1
                if length == SECRET_MAX_REPEAT:  # a long one: followed to its end once, then carried
                    while start + length < size and secret[place + length] == secret[start + length]:
                        length += 1
                    copy_end, copy_back = start + length, start - place
                longest = max(longest, length)
            places.append(start)
            if len(places) > SECRET_REPEAT_CANDIDATES:
                del places[0]
        if longest >= SECRET_MIN_PATTERN:
            where = here + math.log2(start)
            for length in range(SECRET_MIN_PATTERN, min(longest, SECRET_MAX_REPEAT) + 1):
                relax(start + length, where + math.log2(length))
            if longest > SECRET_MAX_REPEAT:
                relax(start + longest, where + math.log2(longest))
    return best[size]


def published_secrets(here):
    """The secrets of :data:`PUBLISHED_SECRETS` and of the repository's ini and example files."""
    found = set(PUBLISHED_SECRETS)
    for name in SECRET_SOURCES:
        try:
            with open(os.path.join(here, name), encoding="utf-8") as source:
                found.update(SECRET_LINE_RE.findall(source.read()))
        except OSError:
            continue
    return found


@dataclass(frozen=True)
class ServerSettings:
    """Where the server runner listens, how long it drains on a stop, and where its Python
    threads run (``cinema_api.runtime.affinity``)."""

    host: str
    port: int
    shutdown_timeout: float
    cpu_affinity: object = "auto"  # "auto", "off" or a CPU number


#: The server runner's own settings: ``[server:main]`` keys, overridden as every other setting.
SERVER_OVERRIDES = ("HOST", "PORT", "SHUTDOWN_TIMEOUT", "CPU_AFFINITY")


def load_server_settings(here, host, port, shutdown_timeout, environ=None, dotenv=None, cpu_affinity="auto"):
    """``[server:main]``'s host, port, shutdown timeout and CPU affinity, after ``HOST``, ``PORT``,
    ``SHUTDOWN_TIMEOUT`` and ``CPU_AFFINITY`` (OS environment > ``.env`` > ini). Variables given on
    the pserve command line cannot override an ini file's own ``[DEFAULT]`` values, so the runner
    reads these here."""
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(here) if dotenv is None else dotenv

    def value(name, ini):
        return environ.get(name) or dotenv.get(name) or ini

    try:
        port = int(value("PORT", port))
        if not 0 <= port <= 65535:
            raise ValueError
    except (TypeError, ValueError):
        raise SettingsError("PORT must be an integer between 0 and 65535") from None
    try:
        shutdown_timeout = float(value("SHUTDOWN_TIMEOUT", shutdown_timeout))
        if shutdown_timeout < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise SettingsError("SHUTDOWN_TIMEOUT must be a number of seconds") from None
    affinity = str(value("CPU_AFFINITY", cpu_affinity)).strip().lower()
    if affinity not in ("auto", "off"):
        if not (affinity.isascii() and affinity.isdigit()):  # a CPU number: digits, no sign
            raise SettingsError("CPU_AFFINITY must be auto, off or the number of a CPU")
        affinity = int(affinity)
    return ServerSettings(value("HOST", host), port, shutdown_timeout, affinity)
